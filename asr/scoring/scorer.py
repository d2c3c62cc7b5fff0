"""``score()``: references and hypotheses keyed by utterance id in, a :class:`ScoreReport` out."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from asr.scoring.counts import ErrorCounts
from asr.scoring.details import WordDetails
from asr.scoring.edit_distance import align_pairs
from asr.scoring.normalize import NORMALIZATIONS, normalize_words
from asr.scoring.readers import ScoringError
from asr.scoring.report import ScoreReport
from asr.scoring.units import encode_chars, encode_words


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: scoring builds millions of short-lived lists
    that hold no cycles, and the collector's repeated full passes over them cost more than the
    scoring itself."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _word_counts(refs: list[list[str]], hyps: list[list[str]], keep_ops: bool):
    ref_units, hyp_units, vocab = encode_words(refs, hyps)
    alignments = align_pairs(
        ref_units.ids, ref_units.offsets, hyp_units.ids, hyp_units.offsets, keep_ops=keep_ops
    )
    return alignments, ref_units, hyp_units, vocab


def _char_counts(refs: list[list[str]], hyps: list[list[str]]) -> ErrorCounts:
    ref_units = encode_chars(refs)
    hyp_units = encode_chars(hyps)
    alignments = align_pairs(
        ref_units.ids, ref_units.offsets, hyp_units.ids, hyp_units.offsets, keep_ops=False
    )
    return ErrorCounts.from_op_counts(alignments.counts)


def word_errors(refs: list[str], hyps: list[str], normalize: str = "none") -> ErrorCounts:
    """Word edit counts summed over utterance pairs (``refs[i]`` against ``hyps[i]``)."""
    if len(refs) != len(hyps):
        raise ValueError("refs and hyps must have the same length")
    with gc_paused():
        r = [normalize_words(t, normalize) for t in refs]
        h = [normalize_words(t, normalize) for t in hyps]
        return ErrorCounts.from_op_counts(_word_counts(r, h, keep_ops=False)[0].counts)


def char_errors(refs: list[str], hyps: list[str], normalize: str = "none") -> ErrorCounts:
    """Character edit counts; words are joined by a single space, which counts as a character."""
    if len(refs) != len(hyps):
        raise ValueError("refs and hyps must have the same length")
    with gc_paused():
        return _char_counts(
            [normalize_words(t, normalize) for t in refs],
            [normalize_words(t, normalize) for t in hyps],
        )


def score(
    refs: dict[str, str],
    hyps: dict[str, str],
    utt2spk: dict[str, str] | None = None,
    ignore_extra: bool = False,
    normalize: str = "none",
) -> ScoreReport:
    """Score hypotheses against references keyed by utterance id.

    Utterances are taken in the order of ``refs``. A reference without a hypothesis is scored
    as all deletions and listed in ``missing``; a hypothesis without a reference is an error
    unless ``ignore_extra`` (then it is listed in ``extra_ignored``). With ``utt2spk``, word
    counts are also summed per speaker (an utterance absent from it is its own speaker).
    ``normalize`` is ``"none"`` or ``"basic"`` (see :mod:`asr.scoring.normalize`).
    """
    if normalize not in NORMALIZATIONS:
        raise ScoringError(f"unknown normalisation '{normalize}'; choose from {', '.join(NORMALIZATIONS)}")
    with gc_paused():
        return _score(refs, hyps, utt2spk, ignore_extra, normalize)


def _score(
    refs: dict[str, str],
    hyps: dict[str, str],
    utt2spk: dict[str, str] | None,
    ignore_extra: bool,
    normalize: str,
) -> ScoreReport:
    extra = [u for u in hyps if u not in refs]
    if extra and not ignore_extra:
        raise ScoringError(
            f"{len(extra)} hypothesis utterance(s) have no reference, first '{extra[0]}' "
            "(pass --ignore-extra to drop them)"
        )
    ids = list(refs)
    missing = [u for u in ids if u not in hyps]
    ref_words = [normalize_words(refs[u], normalize) for u in ids]
    hyp_words = [normalize_words(hyps.get(u, ""), normalize) for u in ids]
    alignments, ref_units, hyp_units, vocab = _word_counts(ref_words, hyp_words, keep_ops=True)
    speakers = [utt2spk.get(u, u) for u in ids] if utt2spk else list(ids)
    details = WordDetails(ids, speakers, alignments, ref_units, hyp_units, vocab)
    report = ScoreReport(
        ErrorCounts.from_op_counts(alignments.counts),
        _char_counts(ref_words, hyp_words),
        missing=missing,
        normalize=normalize,
        extra_ignored=extra,
        details=details,
    )
    if utt2spk:
        # Group utterance rows by speaker with one stable sort instead of a Python loop.
        names, group = np.unique(np.asarray(speakers, dtype=object), return_inverse=True)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(names) + 1))
        for k, spk in enumerate(names.tolist()):
            rows = order[bounds[k] : bounds[k + 1]]
            report.per_speaker[spk] = ErrorCounts.from_op_counts(alignments.counts[rows])
    return report
