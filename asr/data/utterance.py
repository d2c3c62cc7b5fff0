"""What a data directory describes: utterances, each with its audio entry, transcript and
speaker, and optionally the segment of a recording it is cut from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordingSegment:
    """One utterance cut from a recording: ``segments`` holds ``<utt> <reco> <start> <end>``
    in seconds; ``end == -1`` means the end of the recording (accepted by Kaldi's
    ``extract-segments``, rejected by its ``validate_data_dir.sh``)."""

    recording: str
    start: float
    end: float


@dataclass(frozen=True)
class Utterance:
    """One utterance of a data directory."""

    utt_id: str
    # The wav.scp entry of the audio: a path, ``file.ark:offset`` or a command ending in ``|``.
    # With a segment, it is the entry of the whole recording.
    wav: str
    text: str
    speaker: str
    segment: RecordingSegment | None = None
