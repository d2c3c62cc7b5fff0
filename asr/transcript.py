"""What transcription returns: a :class:`Result` with the text, its words (times and
confidences), its segments (stretches of speech between pauses: subtitle cues) and, when asked
for, n-best alternatives. Plain data without torch, below the recognizer
(:mod:`asr.inference`) and the long-form stitcher (:mod:`asr.longform`) that both build it, and
the writers (:mod:`asr.writers`) that read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

SEGMENT_PAUSE = 1.0  # a silence this long (seconds) between words starts a new segment
SEGMENT_MAX = 15.0  # seconds; a longer stretch of speech is split at its widest pause


@dataclass
class Word:
    """One recognised word; times in seconds from the start of the audio."""

    word: str
    start: float  # seconds
    end: float
    confidence: float  # mean best-path posterior of the word's tokens


@dataclass
class Alternative:
    """One entry of an n-best list; scores are natural logs (see asr.decode.Hypothesis)."""

    text: str
    score: float
    am_score: float
    lm_score: float


@dataclass
class Segment:
    """A stretch of speech between pauses (a subtitle cue): times in seconds."""

    start: float
    end: float
    text: str


@dataclass
class Result:
    """What :meth:`Recognizer.transcribe` returns: the transcript, its segments (stretches of
    speech between pauses) and its words with times and confidences."""

    text: str
    duration: float  # seconds of audio
    words: list[Word] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)  # n-best, when asked for
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.segments:
            self.segments = make_segments(self.text, self.words, self.duration)

    def to_dict(self) -> dict:
        data = asdict(self)
        if not self.alternatives:
            del data["alternatives"]
        return data


def make_segments(text: str, words: list[Word], duration: float,
                  pause: float = SEGMENT_PAUSE, longest: float = SEGMENT_MAX) -> list[Segment]:
    """Group ``words`` into segments: a new one after a silence of ``pause`` seconds, and a
    stretch longer than ``longest`` seconds split at its widest gap. Without word times, the
    whole ``text`` is one segment spanning the audio."""
    if not words:
        return [Segment(0.0, round(duration, 3), text)] if text else []
    groups: list[list[Word]] = [[words[0]]]
    for prev, word in zip(words, words[1:], strict=False):
        if word.start - prev.end >= pause:
            groups.append([word])
        else:
            groups[-1].append(word)
    out: list[list[Word]] = []
    for group in groups:
        out.extend(_split_long(group, longest))
    return [Segment(g[0].start, g[-1].end, " ".join(w.word for w in g)) for g in out]


def _split_long(group: list[Word], longest: float) -> list[list[Word]]:
    if len(group) < 2 or group[-1].end - group[0].start <= longest:
        return [group]
    gaps = [group[i + 1].start - group[i].end for i in range(len(group) - 1)]
    # The widest gap in the middle half keeps both halves from becoming slivers.
    lo, hi = len(gaps) // 4, max(len(gaps) // 4 + 1, (3 * len(gaps)) // 4)
    cut = lo + int(np.argmax(gaps[lo:hi])) + 1
    return _split_long(group[:cut], longest) + _split_long(group[cut:], longest)
