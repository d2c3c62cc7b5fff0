"""CTC prefix beam search, vectorised over utterances, beams and candidate tokens.

Each prefix ``y`` in the beam carries two log-probabilities over the frames so far: ``pb``, of
the alignments of ``y`` that end in a blank, and ``pnb``, of those that end in ``y``'s last
token. For a frame with log-posteriors ``lp``:

- staying: ``pb' = logaddexp(pb, pnb) + lp[blank]``, ``pnb' = pnb + lp[last]`` (a repeat);
- extending with ``c``: ``pnb'(y + c) = logaddexp(pb, pnb) + lp[c]``, or ``pb + lp[c]`` when
  ``c`` equals the last token (repeats must be separated by a blank);
- an extension that rebuilds a prefix already in the beam (``y + c`` where ``y + c`` is kept)
  is merged into that prefix's ``pnb``.

The whole ``(utterances, beam, candidates)`` block is one set of numpy operations per frame;
Python runs per frame, never per token or beam. Prefixes are identified by a 64-bit rolling
hash (collisions: about one in 2**64 per pair), and their tokens are kept as back-pointers in a
history array. Pruning: per frame, only the ``token_topk`` most likely tokens with
log-probability at least ``token_min_logp`` (plus the frame's best) may extend a prefix;
beams more than ``beam_threshold`` below the best are dropped. A shallow-fusion scorer
(:mod:`asr.decode.fusion`) adds ``alpha * ln P_lm + beta`` to the ranking score.

Beam width 1 gives the greedy (best path) result whenever every frame's best token has a
posterior above 1/sqrt(2): the best extension then outweighs the summed mass of staying.
"""

from __future__ import annotations

import numpy as np
import torch

from asr.decode.base import Decoder, DecoderError, Hypothesis
from asr.decode.fusion import Fusion

_EMPTY = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MUL = np.uint64(0x100000001B3)
_ONE = np.uint64(1)
NEG_INF = -np.inf
SCORE_RANGE = float(2**24)


def _child_hash(parent: np.ndarray, token: np.ndarray) -> np.ndarray:
    """splitmix64 of (parent, token); the low bit is forced on so that 0 marks a free slot."""
    z = parent * _MUL + token.astype(np.uint64) + _ONE
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z | _ONE


class _History:
    """Tokens of all prefixes as back-pointers: entry ``i`` is token ``tok[i]`` emitted at
    frame ``frame[i]`` after the prefix ending at entry ``parent[i]`` (-1: the empty prefix)."""

    def __init__(self, capacity: int = 4096) -> None:
        self.tok = np.empty(capacity, dtype=np.int64)
        self.parent = np.empty(capacity, dtype=np.int64)
        self.frame = np.empty(capacity, dtype=np.int64)
        self.size = 0

    def append(self, tok: np.ndarray, parent: np.ndarray, frame: int) -> np.ndarray:
        n = len(tok)
        if self.size + n > len(self.tok):
            grow = max(len(self.tok), n)
            for name in ("tok", "parent", "frame"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.empty(grow, dtype=old.dtype)]))
        idx = np.arange(self.size, self.size + n)
        self.tok[idx] = tok
        self.parent[idx] = parent
        self.frame[idx] = frame
        self.size += n
        return idx

    def path(self, ptr: int) -> tuple[list[int], list[int]]:
        tokens: list[int] = []
        frames: list[int] = []
        while ptr >= 0:
            tokens.append(int(self.tok[ptr]))
            frames.append(int(self.frame[ptr]))
            ptr = int(self.parent[ptr])
        return tokens[::-1], frames[::-1]


class PrefixBeamDecoder(Decoder):
    """CTC prefix beam search with optional n-gram shallow fusion.

    ``beam_size``: prefixes kept per frame. ``token_topk``: at most this many tokens may extend
    a prefix per frame (None: all). ``token_min_logp``: tokens below this frame log-posterior
    cannot extend a prefix, except the frame's best (``-inf``: no threshold).
    ``beam_threshold``: drop beams this far (natural log) below the best (None: keep all).
    """

    name = "beam"

    def __init__(self, beam_size: int = 16, nbest: int = 1, token_topk: int | None = None,
                 token_min_logp: float = -5.0, beam_threshold: float | None = None,
                 fusion: Fusion | None = None, blank: int = 0) -> None:
        if beam_size < 1 or nbest < 1:
            raise DecoderError(f"beam size {beam_size} / n-best {nbest}: both must be 1 or more")
        if nbest > beam_size:
            raise DecoderError(f"--nbest {nbest} is larger than --beam-size {beam_size}; "
                               "the search keeps only beam-size hypotheses")
        if token_topk is not None and token_topk < 1:
            raise DecoderError(f"token top-k {token_topk}: give 1 or more, or none")
        self.beam_size = beam_size
        self.nbest = nbest
        self.token_topk = token_topk
        self.token_min_logp = token_min_logp
        self.beam_threshold = beam_threshold
        self.fusion = fusion
        self.blank = blank

    @torch.no_grad()
    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """``(batch, time, vocab)`` log-posteriors and ``(batch,)`` lengths -> n-best lists."""
        lp_all = log_probs.detach().cpu().numpy().astype(np.float64)
        lens = lengths.detach().cpu().numpy().astype(np.int64)
        # Longest first: the utterances still running at frame t are always rows [0, n).
        order = np.argsort(-lens, kind="stable")
        lp_all = lp_all[order]
        lens = lens[order]
        results = self._search(lp_all, lens)
        out: list[list[Hypothesis]] = [[] for _ in order]
        for row, original in enumerate(order.tolist()):
            out[original] = results[row]
        return out

    def _candidates(self, lp: np.ndarray, lens: np.ndarray, t0: int) -> list[tuple[np.ndarray, ...]]:
        """The tokens that may extend prefixes in frames ``t0, t0 + 1, ...`` of ``lp``, a
        ``(n, frames, vocab)`` block: per frame, the flat arrays (utterance row, token,
        log-posterior), ordered by row. One pass over the block instead of one per frame."""
        n, frames, vocab = lp.shape
        masked = lp.copy()
        masked[:, :, self.blank] = NEG_INF
        keep = np.ones(masked.shape, dtype=bool)
        keep[:, :, self.blank] = False
        if self.token_topk is not None and self.token_topk < vocab - 1:
            top = np.argpartition(-masked, self.token_topk - 1, axis=2)[:, :, : self.token_topk]
            keep[:] = False
            np.put_along_axis(keep, top, True, axis=2)
        if self.token_min_logp > NEG_INF:
            # Pruned: below the threshold, unless the frame's best (pyctcdecode's rule).
            best = lp.argmax(axis=2)[:, :, None] == np.arange(vocab)
            keep &= (masked >= self.token_min_logp) | best
        keep &= (t0 + np.arange(frames))[None, :, None] < lens[:, None, None]
        tt, rr, vv = np.nonzero(keep.transpose(1, 0, 2))  # ordered by frame, then row
        values = lp[rr, tt, vv]
        bounds = np.searchsorted(tt, np.arange(frames + 1))
        return [(rr[i:j], vv[i:j], values[i:j]) for i, j in zip(bounds[:-1], bounds[1:], strict=True)]

    def _search(self, lp_all: np.ndarray, lens: np.ndarray) -> list[list[Hypothesis]]:
        """The search over utterances sorted by decreasing length.

        The beams of all utterances live in flat arrays (one entry per live prefix, grouped by
        utterance ``row`` in increasing order), so the work per frame follows the number of
        live prefixes and candidate tokens, not ``utterances x beam_size x vocab``.
        """
        n_utts = lp_all.shape[0]
        fusion = self.fusion
        beams = _Beams.start(n_utts, fusion.start if fusion is not None else 0)
        history = _History()
        done: list[_Beams] = []
        max_len = int(lens.max()) if n_utts else 0
        block = max(1, (1 << 22) // max(1, n_utts * lp_all.shape[2]))  # frames per candidate pass
        candidates: list[tuple[np.ndarray, ...]] = []
        for t in range(max_len):
            n = int(np.count_nonzero(lens > t))
            live = int(np.searchsorted(beams.row, n))
            if live < len(beams):  # utterances that ended: their beams are final
                done.append(beams.take(slice(live, None)))
                beams = beams.take(slice(0, live))
            if t % block == 0:
                candidates = self._candidates(lp_all[:n, t : t + block], lens[:n], t)
            beams = self._step(beams, lp_all[:n, t, :], t, history, candidates[t % block])
        done.append(beams)
        final = _Beams.concat(done)
        am = np.logaddexp(final.pb, final.pnb)
        lm = final.lmacc + (fusion.final(final.lms) if fusion is not None else 0.0)
        total = am + lm
        order = np.lexsort((-total, final.row))
        results: list[list[Hypothesis]] = [[] for _ in range(n_utts)]
        for i in order.tolist():
            hyps = results[int(final.row[i])]
            if len(hyps) < self.nbest and np.isfinite(total[i]):
                tokens, frames = history.path(int(final.ptr[i]))
                hyps.append(Hypothesis(tokens, float(total[i]), float(am[i]), float(lm[i]), frames))
        return results

    def _step(self, beams: _Beams, lpt: np.ndarray, t: int, history: _History,
              candidates: tuple[np.ndarray, ...]) -> _Beams:
        """One frame: ``lpt`` holds the ``(n, vocab)`` log-posteriors of the live utterances,
        ``candidates`` the (row, token, log-posterior) arrays of the tokens that may extend."""
        n = lpt.shape[0]
        fusion = self.fusion
        r = beams.row
        total = np.logaddexp(beams.pb, beams.pnb)
        stay_b = total + lpt[r, self.blank]
        stay_nb = np.where(beams.last >= 0, beams.pnb + lpt[r, np.maximum(beams.last, 0)], NEG_INF)
        cr, ctok, clp = candidates
        if not len(cr):  # no token may extend a prefix: every beam stays as it is
            beams.pb, beams.pnb = stay_b, stay_nb
            return beams
        # Every (beam, candidate of its utterance) pair, as flat arrays.
        per_row = np.bincount(cr, minlength=n)
        row_first = np.cumsum(per_row) - per_row
        per_beam = per_row[r]
        pair_beam = np.repeat(np.arange(len(r)), per_beam)
        pair_first = np.cumsum(per_beam) - per_beam
        pair_cand = row_first[r[pair_beam]] + np.arange(len(pair_beam)) - pair_first[pair_beam]
        pair_tok = ctok[pair_cand]
        src = np.where(pair_tok == beams.last[pair_beam], beams.pb[pair_beam], total[pair_beam])
        ext_am = src + clp[pair_cand]
        ext_lm = beams.lmacc[pair_beam]
        if fusion is not None:
            ext_lm = ext_lm + fusion.table[beams.lms[pair_beam], pair_tok]
        # An extension of beam p by c that rebuilds beam j (j = p + c) merges into j. Only
        # beams whose last token is a candidate of their utterance this frame can be rebuilt.
        cand_pos = np.full((n, lpt.shape[1]), -1, dtype=np.int64)
        cand_pos[cr, ctok] = np.arange(len(cr)) - row_first[cr]
        pos_j = np.where(beams.last >= 0, cand_pos[r, np.maximum(beams.last, 0)], -1)
        jj = np.nonzero((pos_j >= 0) & (beams.phash != 0))[0]
        if len(jj):
            # Find each j's parent by its hash; the row is mixed in because utterances share
            # prefixes (the empty one, common first letters).
            salt = _child_hash(np.full(n, _EMPTY), np.arange(n))
            keys = beams.hsh ^ salt[r]
            by_key = np.argsort(keys)
            sorted_keys = keys[by_key]
            wanted = beams.phash[jj] ^ salt[r[jj]]
            by_wanted = np.argsort(wanted)  # sorted needles make searchsorted 3-4x faster
            pos = np.empty(len(wanted), dtype=np.int64)
            pos[by_wanted] = np.searchsorted(sorted_keys, wanted[by_wanted])
            pos = np.minimum(pos, len(keys) - 1)
            pp = by_key[pos]
            found = (sorted_keys[pos] == wanted) & (r[pp] == r[jj]) & (beams.hsh[pp] == beams.phash[jj])
            jj, pp = jj[found], pp[found]
            pair = pair_first[pp] + pos_j[jj]
            stay_nb[jj] = np.logaddexp(stay_nb[jj], ext_am[pair])
            ext_am[pair] = NEG_INF
        # Keep the beam_size best of stays and extensions per utterance, best first.
        n_stay = len(r)
        score = np.concatenate([np.logaddexp(stay_b, stay_nb) + beams.lmacc, ext_am + ext_lm])
        rows = np.concatenate([r, r[pair_beam]])
        # One float sort by (utterance, -score): far cheaper than a two-key lexsort. Scores
        # below -SCORE_RANGE count as equal; they are never among the kept ones in practice.
        order = np.argsort(rows * SCORE_RANGE - np.clip(score, 1.0 - SCORE_RANGE, 0.0))
        sorted_rows = rows[order]
        first = np.searchsorted(sorted_rows, np.arange(n))
        rank = np.arange(len(order)) - first[sorted_rows]
        sorted_score = score[order]
        keep = (rank < self.beam_size) & np.isfinite(sorted_score)
        if self.beam_threshold is not None:
            keep &= sorted_score >= sorted_score[first][sorted_rows] - self.beam_threshold
        sel = order[keep]
        is_ext = sel >= n_stay
        src_beam = np.where(is_ext, pair_beam[np.where(is_ext, sel - n_stay, 0)], sel)
        e = sel[is_ext] - n_stay
        out = beams.take(src_beam)
        out.pb = np.where(is_ext, NEG_INF, stay_b[np.where(is_ext, 0, sel)])
        out.pnb[~is_ext] = stay_nb[sel[~is_ext]]
        out.pnb[is_ext] = ext_am[e]
        c = pair_tok[e]
        out.phash[is_ext] = out.hsh[is_ext]
        out.hsh[is_ext] = _child_hash(out.hsh[is_ext], c)
        out.last[is_ext] = c
        out.lmacc[is_ext] = ext_lm[e]
        out.ptr[is_ext] = history.append(c, out.ptr[is_ext], t)
        if fusion is not None:
            out.lms[is_ext] = fusion.advance(out.lms[is_ext], c)
        return out


class _Beams:
    """Live prefixes of all utterances as flat arrays, grouped by ``row`` (increasing)."""

    FIELDS = ("row", "pb", "pnb", "hsh", "phash", "last", "ptr", "lms", "lmacc")

    def __init__(self, **arrays: np.ndarray) -> None:
        for name in self.FIELDS:
            setattr(self, name, arrays[name])

    @classmethod
    def start(cls, n_utts: int, lm_state: int) -> _Beams:
        """One empty prefix per utterance: all its alignments so far end in a blank."""
        return cls(row=np.arange(n_utts), pb=np.zeros(n_utts), pnb=np.full(n_utts, NEG_INF),
                   hsh=np.full(n_utts, _EMPTY, dtype=np.uint64),
                   phash=np.zeros(n_utts, dtype=np.uint64), last=np.full(n_utts, -1),
                   ptr=np.full(n_utts, -1), lms=np.full(n_utts, lm_state),
                   lmacc=np.zeros(n_utts))

    @classmethod
    def concat(cls, parts: list[_Beams]) -> _Beams:
        return cls(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in cls.FIELDS})

    def take(self, index: np.ndarray | slice) -> _Beams:
        return _Beams(**{f: getattr(self, f)[index] for f in self.FIELDS})

    def __len__(self) -> int:
        return len(self.row)
