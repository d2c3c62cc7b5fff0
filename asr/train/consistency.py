"""Start-up agreement of data-parallel ranks on their data, so that DDP cannot drift.

Every rank loads the data dirs itself. If one node reads another copy of a data dir (a stale
local copy, a missing utterance), another config, or a file it cannot read, its list of
batches differs from the others': the ranks would then train on different data, or wait
forever in an all-reduce that another rank never reaches. :func:`agree_on_data` runs once on
every rank after loading, before the trainer is built:

1. every rank's unreadable utterances are gathered and their union is dropped on every rank
   (and listed in ``report``, hence in ``EXP_DIR/bad_utts``), so that a file unreadable on
   one node only does not desynchronise the batch lists;
2. each rank's training and dev sets are summarised (:class:`DataSummary`: utterance count,
   a hash of the sorted utterance ids, total frames, a hash of the labels) and compared; any
   difference stops every rank with one :class:`~asr.errors.DataDirError` line naming both
   ranks.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from asr.data.dataset import SkipReport
from asr.errors import DataDirError
from asr.train import ddp
from asr.train.data import AnyExample, num_frames

log = logging.getLogger(__name__)

E = TypeVar("E")
Unreadable = tuple[str, str]  # (utt_id, error), as in SkipReport.unreadable


@dataclass(frozen=True)
class DataSummary:
    """What every rank must agree on about one data set."""

    utterances: int
    ids: str  # sha1 of the sorted utterance ids, 12 hex digits
    frames: int  # feature frames of all utterances
    labels: str = ""  # sha1 of the token ids in utterance id order (transcripts, tokenizer)

    def describe(self, what: str) -> str:
        """e.g. ``849 training utterances (ids a1b2c3d4e5f6, 812345 frames, labels 0f1e2d3c4b5a)``."""
        return (f"{self.utterances} {what} utterances (ids {self.ids}, {self.frames} frames, "
                f"labels {self.labels})")


def summarize(examples: Iterable[AnyExample]) -> DataSummary:
    """The :class:`DataSummary` of loaded examples (anything with ``.utt_id`` and ``.tokens``
    that :func:`asr.train.data.num_frames` accepts)."""
    labels: list[tuple[str, bytes]] = []
    frames = 0
    for example in examples:
        labels.append((example.utt_id, example.tokens.numpy().tobytes()))
        frames += num_frames(example)
    labels.sort()
    id_hash = hashlib.sha1("\n".join(utt_id for utt_id, _ in labels).encode())
    label_hash = hashlib.sha1()
    for _, tokens in labels:
        label_hash.update(len(tokens).to_bytes(8, "little") + tokens)
    return DataSummary(len(labels), id_hash.hexdigest()[:12], frames, label_hash.hexdigest()[:12])


def summary_mismatch(summaries: Sequence[DataSummary], what: str = "training",
                     where: str | Sequence[str] = "the data dir") -> str | None:
    """None when every rank's summary (in rank order) equals rank 0's; else one line naming the
    first rank that differs, both summaries and what to check. ``where`` is the data dir, or
    each rank's path for it (named when they differ)."""
    paths = [where] * len(summaries) if isinstance(where, str) else list(where)
    reference = summaries[0]
    for rank, summary in enumerate(summaries[1:], start=1):
        if summary != reference:
            read = f" (rank {rank} read {paths[rank]})" if paths[rank] != paths[0] else ""
            return (
                f"rank {rank} has {summary.describe(what)}, rank 0 has {reference.describe(what)}: "
                f"every rank must read the same data dir; check that {paths[0]}{read} holds the "
                "same files on every node (a shared file system, not per-node copies) and that "
                "every node runs the same code and config"
            )
    return None


def union_of_unreadable(per_rank: Sequence[Sequence[Unreadable]]) -> list[Unreadable]:
    """Every rank's unreadable utterances (in rank order), each id once with the first error
    seen; an error that the first rank reporting it is not rank 0 is prefixed ``rank R:``."""
    seen: dict[str, str] = {}
    for rank, unreadable in enumerate(per_rank):
        for utt_id, error in unreadable:
            if utt_id not in seen:
                seen[utt_id] = error if rank == 0 else f"rank {rank}: {error}"
    return list(seen.items())


def ranks_only(per_rank: Sequence[Sequence[Unreadable]]) -> dict[str, list[int]]:
    """Utterance ids unreadable on some ranks but not all, with the ranks that failed them."""
    failed: dict[str, list[int]] = {}
    for rank, unreadable in enumerate(per_rank):
        for utt_id in dict(unreadable):
            failed.setdefault(utt_id, []).append(rank)
    return {utt: ranks for utt, ranks in failed.items() if len(ranks) < len(per_rank)}


def drop_utterances(examples: Sequence[E], utt_ids: Collection[str]) -> list[E]:
    """``examples`` without those whose ``utt_id`` is in ``utt_ids`` (order kept)."""
    drop = set(utt_ids)
    return [e for e in examples if e.utt_id not in drop]  # type: ignore[attr-defined]


def _gather(obj: Any, dist: ddp.DistInfo) -> list[Any]:
    """:func:`ddp.all_gather`, with a backend failure (a rank that died while loading its data)
    turned into one line."""
    try:
        return ddp.all_gather(obj, dist)
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataDirError(
            f"rank {dist.rank}: the ranks could not compare their data ({first}); another rank "
            "probably stopped while loading it: see that rank's error in the job's log"
        ) from None


def agree_on_data(train_set: list[E], dev_set: list[E], report: SkipReport, dist: ddp.DistInfo,
                  train_where: str, dev_where: str | None = None) -> tuple[list[E], list[E]]:
    """Make every rank train on the same data (see the module docstring); call on every rank
    after loading. Returns the training and dev sets without the utterances any rank could not
    read; ``report.unreadable`` becomes that union. Raises :class:`DataDirError` on every rank
    when the ranks' sets still differ. A single process returns its sets as they are."""
    if not dist.enabled:
        return train_set, dev_set
    per_rank = _gather(list(report.unreadable), dist)
    union = union_of_unreadable(per_rank)
    partial = ranks_only(per_rank)
    if partial:
        train_set = drop_utterances(train_set, partial)
        dev_set = drop_utterances(dev_set, partial)
        report.unreadable[:] = union
        if dist.is_main:
            named = ", ".join(f"{utt} (rank {'/'.join(map(str, ranks))})" for utt, ranks in list(partial.items())[:5])
            log.warning("%d utterance(s) unreadable on some ranks only, dropped on every rank so that "
                        "their batches agree: %s%s; check those files on those ranks' nodes",
                        len(partial), named, ", ..." if len(partial) > 5 else "")
    mine = (summarize(train_set), train_where, summarize(dev_set), dev_where or "")
    ranks = _gather(mine, dist)
    problem = summary_mismatch([r[0] for r in ranks], "training", [r[1] for r in ranks])
    if problem is None:
        problem = summary_mismatch([r[2] for r in ranks], "dev", [r[3] for r in ranks])
    if problem is not None:
        raise DataDirError(problem)
    return train_set, dev_set
