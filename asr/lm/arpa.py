"""Back-off n-gram language models in the ARPA format: reading, querying, writing.

Probabilities in an ARPA file are log10; :class:`NgramLM` keeps them so and answers both single
queries (:meth:`NgramLM.log10_prob`) and whole next-word distributions over the vocabulary
(:meth:`NgramLM.next_log10`, one numpy vector per context, cached) which the beam search adds
to its candidate scores without a Python loop over words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from asr.lm.errors import LMError

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
LN10 = math.log(10.0)
# log10 probability written for <s>: it is a context only, never predicted (SRILM's convention).
NEVER = -99.0

_COUNT_LINE = re.compile(r"^ngram\s+(\d+)\s*=\s*(\d+)$")
_SECTION = re.compile(r"^\\(\d+)-grams:$")


class NgramLM:
    """A back-off n-gram model over a word list.

    ``probs[n-1]`` maps an n-gram (tuple of word ids) to its log10 probability; ``bows`` maps an
    n-gram that is a context to its log10 back-off weight (absent means 0).
    """

    def __init__(self, vocab: Sequence[str], probs: list[dict[tuple[int, ...], float]],
                 bows: dict[tuple[int, ...], float], source: str = "<memory>") -> None:
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.probs = probs
        self.bows = bows
        self.order = len(probs)
        self.source = source
        self.bos = self.index.get(BOS)
        self.eos = self.index.get(EOS)
        self.unk = self.index.get(UNK)
        if self.eos is None:
            raise LMError(f"{source}: the model has no {EOS} unigram; is it an ARPA LM?")
        self._unigrams = np.full(len(self.vocab), NEVER, dtype=np.float64)
        for (w,), p in probs[0].items():
            self._unigrams[w] = p
        # Explicit successors of each context, as arrays, for whole-distribution queries.
        self._successors: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        grouped: dict[tuple[int, ...], tuple[list[int], list[float]]] = {}
        for table in probs[1:]:
            for gram, p in table.items():
                ids, ps = grouped.setdefault(gram[:-1], ([], []))
                ids.append(gram[-1])
                ps.append(p)
        for ctx, (ids, ps) in grouped.items():
            self._successors[ctx] = (np.asarray(ids, dtype=np.int64), np.asarray(ps))
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    def ids(self, words: Iterable[str]) -> list[int]:
        """Word ids; unknown words map to ``<unk>`` (an error when the model has none)."""
        out = []
        for word in words:
            i = self.index.get(word, self.unk)
            if i is None:
                raise LMError(f"{self.source}: word {word!r} is not in the LM and it has no {UNK}")
            out.append(i)
        return out

    def trim(self, context: Sequence[int]) -> tuple[int, ...]:
        """The part of ``context`` the model can use: its last ``order - 1`` ids."""
        return tuple(context[max(0, len(context) - self.order + 1):]) if self.order > 1 else ()

    def log10_prob(self, context: Sequence[int], word: int) -> float:
        """log10 P(word | context), backing off through shorter contexts."""
        ctx = self.trim(context)
        penalty = 0.0
        for k in range(len(ctx), -1, -1):
            sub = ctx[len(ctx) - k:]
            p = self.probs[k].get((*sub, word))
            if p is not None:
                return penalty + p
            penalty += self.bows.get(sub, 0.0) if k else 0.0
        return penalty + float(self._unigrams[word])

    def next_log10(self, context: Sequence[int]) -> np.ndarray:
        """log10 P(w | context) for every word id ``w``: a ``(len(vocab),)`` array (cached;
        do not modify it)."""
        ctx = self.trim(context)
        cached = self._cache.get(ctx)
        if cached is not None:
            return cached
        dist = self._unigrams.copy()
        # From the shortest context up: back off everywhere, then overwrite the words this
        # context has seen explicitly.
        for k in range(1, len(ctx) + 1):
            sub = ctx[len(ctx) - k:]
            if sub not in self.bows and sub not in self._successors:
                break  # a longer context containing an unseen suffix cannot be in the model
            dist += self.bows.get(sub, 0.0)
            succ = self._successors.get(sub)
            if succ is not None:
                dist[succ[0]] = succ[1]
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[ctx] = dist
        return dist

    def sentence_log10(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """log10 probability of a sentence (``<s>`` context first, ``</s>`` predicted last)."""
        ids = self.ids(words)
        context: list[int] = [self.bos] if bos and self.bos is not None else []
        total = 0.0
        for w in [*ids, self.eos] if eos else ids:
            total += self.log10_prob(context, w)
            context.append(w)
        return total


def read_arpa(path: str | Path) -> NgramLM:
    """Read an ARPA file; malformed input raises :class:`LMError` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LMError(f"{path}: language model not found") from None
    except UnicodeDecodeError:
        raise LMError(f"{path}: not a UTF-8 text ARPA file (a KenLM binary? give the .arpa, or use "
                      "the lexicon decoder, which reads binaries)") from None
    except OSError as exc:
        raise LMError(f"{path}: cannot read ({exc})") from None
    lines = text.splitlines()
    lineno = 0
    while lineno < len(lines) and lines[lineno].strip() != "\\data\\":
        lineno += 1
    if lineno == len(lines):
        raise LMError(f"{path}: no \\data\\ header; not an ARPA language model")
    counts: dict[int, int] = {}
    lineno += 1
    while lineno < len(lines) and lines[lineno].strip():
        match = _COUNT_LINE.match(lines[lineno].strip())
        if not match:
            raise LMError(f"{path}:{lineno + 1}: expected 'ngram N=COUNT', got {lines[lineno]!r}")
        counts[int(match.group(1))] = int(match.group(2))
        lineno += 1
    order = max(counts, default=0)
    if order < 1 or sorted(counts) != list(range(1, order + 1)):
        raise LMError(f"{path}: the \\data\\ section must list ngram 1..N counts, got {sorted(counts)}")
    vocab: list[str] = []
    index: dict[str, int] = {}
    probs: list[dict[tuple[int, ...], float]] = [{} for _ in range(order)]
    bows: dict[tuple[int, ...], float] = {}
    n = 0
    for at in range(lineno, len(lines)):
        line = lines[at].strip()
        if not line:
            continue
        if line == "\\end\\":
            break
        section = _SECTION.match(line)
        if section:
            n = int(section.group(1))
            if n not in counts:
                raise LMError(f"{path}:{at + 1}: section {line} not announced in \\data\\")
            continue
        if n == 0:
            raise LMError(f"{path}:{at + 1}: n-gram line before any \\N-grams: section")
        fields = line.split()
        if len(fields) not in (n + 1, n + 2):
            raise LMError(f"{path}:{at + 1}: a {n}-gram line needs {n + 1} or {n + 2} fields, "
                          f"got {len(fields)}")
        try:
            logp = float(fields[0])
            bow = float(fields[n + 1]) if len(fields) == n + 2 else 0.0
        except ValueError:
            raise LMError(f"{path}:{at + 1}: probabilities must be numbers: {line!r}") from None
        words = fields[1 : n + 1]
        if n == 1:
            if words[0] in index:
                raise LMError(f"{path}:{at + 1}: unigram {words[0]!r} listed twice")
            index[words[0]] = len(vocab)
            vocab.append(words[0])
        try:
            gram = tuple(index[w] for w in words)
        except KeyError as exc:
            raise LMError(f"{path}:{at + 1}: word {exc.args[0]!r} has no unigram") from None
        probs[n - 1][gram] = logp
        if bow:
            bows[gram] = bow
    else:
        raise LMError(f"{path}: missing \\end\\ (truncated file?)")
    for k in range(1, order + 1):
        if len(probs[k - 1]) != counts[k]:
            raise LMError(f"{path}: \\data\\ announces {counts[k]} {k}-grams, the file has "
                          f"{len(probs[k - 1])}")
    return NgramLM(vocab, probs, bows, str(path))


def format_arpa(lm: NgramLM) -> str:
    """The model as ARPA text (n-grams in id order within each section)."""
    out = ["\\data\\"]
    out += [f"ngram {k + 1}={len(table)}" for k, table in enumerate(lm.probs)]
    for k, table in enumerate(lm.probs):
        out += ["", f"\\{k + 1}-grams:"]
        for gram in sorted(table):
            words = " ".join(lm.vocab[i] for i in gram)
            line = f"{table[gram]:.7g}\t{words}"
            if k + 1 < lm.order and gram in lm.bows:
                line += f"\t{lm.bows[gram]:.7g}"
            out.append(line)
    out += ["", "\\end\\", ""]
    return "\n".join(out)
