"""Split a data directory into N parts for parallel jobs, as Kaldi's ``utils/split_data.sh``.

By default every speaker's utterances stay in one part (per-speaker CMVN and adaptation need
them together); parts are contiguous runs of speakers in C-locale order with utterance counts
as even as that allows. ``per_utt`` splits utterances evenly regardless of speaker. The parts
are ``DIR/splitN/1 .. DIR/splitN/N`` (``splitNutt`` with ``per_utt``), written as a whole.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from asr.data.datafiles import DataFiles, replace_dir
from asr.data.files import utt2spk_to_spk2utt
from asr.errors import DataDirError


def balanced_cuts(counts: list[int], parts: int) -> list[int]:
    """Cut points splitting ``counts`` (in order) into ``parts`` non-empty contiguous runs
    whose sums are as close as possible to ``sum / parts``: returns ``parts + 1`` indices."""
    n = len(counts)
    if parts < 1 or parts > n:
        raise ValueError(f"cannot cut {n} items into {parts} non-empty parts")
    prefix = [0]
    for count in counts:
        prefix.append(prefix[-1] + count)
    total = prefix[-1]
    cuts = [0]
    for k in range(1, parts):
        target = total * k / parts
        lo, hi = cuts[-1] + 1, n - (parts - k)  # leave at least one item per part
        best = min(range(lo, hi + 1), key=lambda j: (abs(prefix[j] - target), j))
        cuts.append(best)
    cuts.append(n)
    return cuts


def split_utterances(data: DataFiles, parts: int, per_utt: bool = False) -> list[list[str]]:
    """The utterance ids of each part, every id in exactly one part."""
    if parts < 1:
        raise DataDirError(f"number of parts must be at least 1, got {parts}")
    if per_utt:
        utts = data.utterances
        if parts > len(utts):
            raise DataDirError(
                f"{data.source}: cannot split {len(utts)} utterance(s) into {parts} parts; "
                "use fewer jobs"
            )
        cuts = balanced_cuts([1] * len(utts), parts)
        return [utts[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    spk2utt = utt2spk_to_spk2utt(data.utt2spk)
    if parts > len(spk2utt):
        raise DataDirError(
            f"{data.source}: cannot split {len(spk2utt)} speaker(s) into {parts} parts by "
            "speaker; use fewer jobs or split per utterance (--per-utt)"
        )
    speakers = list(spk2utt)
    cuts = balanced_cuts([len(spk2utt[s]) for s in speakers], parts)
    return [
        sorted(u for s in speakers[a:b] for u in spk2utt[s])
        for a, b in zip(cuts, cuts[1:], strict=False)
    ]


def split_data_dir(path: str | Path, parts: int, per_utt: bool = False) -> list[Path]:
    """Write ``path/splitN[utt]/{1..N}`` and return the part directories."""
    path = Path(path)
    data = DataFiles.load(path)
    groups = split_utterances(data, parts, per_utt)
    target = path / f"split{parts}{'utt' if per_utt else ''}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=path))
    try:
        for index, utts in enumerate(groups, 1):
            part = tmp / str(index)
            part.mkdir()
            data.select(utts).write_files(part)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [target / str(i) for i in range(1, parts + 1)]
