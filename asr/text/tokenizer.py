"""Tokenizers for CTC output units. Token 0 is the CTC blank.

``char``: one token per character, ``<space>`` between words (open vocabulary).
``word``: one token per word of the training transcripts (closed vocabulary, for tasks such
as yes/no or digits where every word is seen in training, as Kaldi's word-level recipes do).
``phone``: one token per phone. Either the transcripts already hold space-separated phones
(TIMIT's ``.PHN``) or words are mapped to phones through a pronunciation lexicon
(:mod:`asr.text.lexicon`); with ``word_boundary`` a ``<space>`` token separates words, which
the lexicon decoder uses as its word boundary. Decoded text is the phones, space separated,
so phone error rates are word error rates over phones (``asr score``).
``bpe``: sentencepiece BPE pieces (:mod:`asr.text.bpe`), trained on the training transcripts.

The token list is stored as Kaldi's ``tokens.txt`` (``<symbol> <id>`` per line), a BPE model
as ``bpe.model`` beside it; the unit is recorded in the model's config (``tokenizer.type``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from asr.errors import ConfigError, ModelError
from asr.text.bpe import BPE_MODEL, WORD_START, load_processor, read_model, train_bpe
from asr.text.lexicon import Lexicon, LexiconError, strip_stress
from asr.utils import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from asr.config import TokenizerConfig

BLANK = "<blank>"
SPACE = "<space>"
UNK = "<unk>"

Unit = Literal["char", "word", "phone", "bpe"]
UNITS = ("char", "word", "phone", "bpe")


class Tokenizer:
    """Maps text to token ids and back. Unknown characters (words, phones) map to ``<unk>``.

    ``lexicon`` (phone only) maps words to phones; ``keep_stress`` keeps stress digits of
    phones read from the text; ``bpe_model`` (bpe only) is the serialized sentencepiece model.
    """

    def __init__(self, tokens: Sequence[str], unit: Unit = "char", *,
                 lexicon: Lexicon | None = None, keep_stress: bool = True,
                 bpe_model: bytes | None = None, source: str = "tokens") -> None:
        if unit not in UNITS:
            raise ValueError(f"unknown tokenizer unit {unit!r} (expected one of {', '.join(UNITS)})")
        if len(tokens) < 3 or tokens[0] != BLANK or UNK not in tokens:
            raise ValueError(f"token list must start with {BLANK} and contain {UNK}")
        if unit == "char" and SPACE not in tokens:
            raise ValueError(f"a character token list must contain {SPACE}")
        if lexicon is not None and unit != "phone":
            raise ValueError("a lexicon is only used by phone units")
        self.unit: Unit = unit
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("token list has duplicates")
        self.unk_id = self.index[UNK]
        self.space_id = self.index.get(SPACE)
        self.lexicon = lexicon
        self.keep_stress = keep_stress
        self.bpe_model = bpe_model
        self._sp = None
        if unit == "bpe":
            if bpe_model is None:
                raise ValueError("bpe units need the sentencepiece model")
            self._sp = load_processor(bpe_model, source)
            pieces = [BLANK, *(self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size()))]
            if pieces != self.tokens:
                raise ValueError(f"the token list does not match the BPE model ({BPE_MODEL})")

    @classmethod
    def build(cls, texts: Iterable[str], unit: Unit = "char", *, lexicon: Lexicon | None = None,
              keep_stress: bool = True, word_boundary: bool = False,
              bpe_vocab_size: int = 500) -> Tokenizer:
        """Collect every unit of ``texts``, sorted so the ids are reproducible (BPE: train a
        sentencepiece model of ``bpe_vocab_size`` pieces on them)."""
        if unit == "bpe":
            model = train_bpe(texts, bpe_vocab_size)
            processor = load_processor(model, "BPE model")
            pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
            return cls([BLANK, *pieces], "bpe", bpe_model=model)
        if unit == "phone":
            specials = [BLANK, UNK, SPACE] if word_boundary else [BLANK, UNK]
            units: set[str] = set()
            for text in texts:
                for word in text.split():
                    if lexicon is None:
                        units.add(word if keep_stress else strip_stress(word))
                    else:  # words without a pronunciation are reported by check()
                        units.update(lexicon.get(word) or [])
            return cls([*specials, *sorted(units - set(specials))], "phone", lexicon=lexicon,
                       keep_stress=keep_stress)
        units = set()
        for text in texts:
            units.update(text.replace(" ", "") if unit == "char" else text.split())
        specials = [BLANK, UNK, SPACE] if unit == "char" else [BLANK, UNK]
        return cls([*specials, *sorted(units - set(specials))], unit)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def spells_words(self) -> bool:
        """False for a phone model with a lexicon: its greedy output is phones, not the words
        of the transcript, so it is scored against the transcript's phones (a phone error rate)."""
        return not (self.unit == "phone" and self.lexicon is not None)

    @property
    def error_rate_name(self) -> str:
        """What a greedy WER of this model's output measures: ``WER``, or ``PER`` in phones."""
        return "WER" if self.spells_words else "PER"

    def _phone_words(self, text: str, utt_id: str | None = None) -> list[list[str]]:
        """A transcript as phones grouped by word: through the lexicon, or (no lexicon) each
        space-separated phone of the text on its own."""
        if self.lexicon is None:
            return [[p if self.keep_stress else strip_stress(p)] for p in text.split()]
        words = []
        for word in text.split():
            phones = self.lexicon.get(word)
            if phones is None:
                where = f"utterance {utt_id}" if utt_id else f"transcript {text[:60]!r}"
                raise LexiconError(f"{where}: word {word!r} is not in the lexicon "
                                   f"{self.lexicon.where()}; add its pronunciation or drop "
                                   "the utterance")
            words.append(phones)
        return words

    def encode(self, text: str, utt_id: str | None = None) -> list[int]:
        """Token ids of ``text``; ``utt_id`` names the utterance in errors."""
        if self.unit == "word":
            return [self.index.get(word, self.unk_id) for word in text.split()]
        if self.unit == "bpe":
            return [i + 1 for i in self._sp.encode(text, out_type=int)]
        if self.unit == "phone":
            ids = []
            for word_index, phones in enumerate(self._phone_words(text, utt_id)):
                if word_index and self.space_id is not None and self.lexicon is not None:
                    ids.append(self.space_id)
                ids.extend(self.index.get(p, self.unk_id) for p in phones)
            return ids
        ids: list[int] = []
        for word_index, word in enumerate(text.split()):
            if word_index:
                ids.append(self.space_id)
            ids.extend(self.index.get(char, self.unk_id) for char in word)
        return ids

    def check(self, utterances: Iterable, source: str) -> None:
        """Raise a one-line error naming the first utterance (``.utt_id``, ``.text``) of
        ``source`` that cannot be encoded: a phone model's word missing from the lexicon, or
        (phones in the text) a phone that is not one of the units."""
        if self.unit != "phone":
            return
        if self.lexicon is None:
            for utt in utterances:
                for phone in utt.text.split():
                    phone = phone if self.keep_stress else strip_stress(phone)
                    if phone not in self.index:
                        raise LexiconError(f"{source}: utterance {utt.utt_id}: phone {phone!r} is "
                                           "not one of the model's units; add it to "
                                           "tokenizer.units or correct the transcript")
            return
        bad: list[tuple[str, str]] = []
        for utt in utterances:
            missing = self.lexicon.missing(utt.text.split())
            bad.extend((utt.utt_id, word) for word in missing)
        if bad:
            words = sorted({w for _, w in bad})
            more = f" ({len(words)} words missing in all: {' '.join(words[:10])}" + (
                " ...)" if len(words) > 10 else ")")
            raise LexiconError(f"{source}: utterance {bad[0][0]}: word {bad[0][1]!r} is not in "
                               f"the lexicon {self.lexicon.where()}{more}; add their "
                               "pronunciations or drop those utterances")

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [self.tokens[i] for i in ids if i != 0]
        if self.unit == "word":
            return " ".join(pieces)
        if self.unit == "phone":
            return " ".join(p for p in pieces if p != SPACE)
        if self.unit == "bpe":
            return " ".join("".join(pieces).replace(WORD_START, " ").split())
        return " ".join("".join(" " if p == SPACE else p for p in pieces).split())

    def word_groups(self, ids: Sequence[int]) -> list[list[int]]:
        """Positions in ``ids`` (blanks already removed) grouped into words, in order. Phone
        models without a word boundary give one group per phone."""
        if self.unit == "word" or (self.unit == "phone" and self.space_id is None):
            return [[i] for i in range(len(ids))]
        groups: list[list[int]] = [[]]
        for position, token in enumerate(ids):
            if self.unit == "bpe":
                if self.tokens[token].startswith(WORD_START) and groups[-1]:
                    groups.append([])
                groups[-1].append(position)
            elif token == self.space_id:
                groups.append([])
            else:
                groups[-1].append(position)
        return [g for g in groups if g]

    def save(self, path: str | Path) -> None:
        """``tokens.txt`` at ``path``; a BPE tokenizer also writes ``bpe.model`` beside it."""
        path = Path(path)
        if self.bpe_model is not None:
            model = self.bpe_model
            atomic_write(path.with_name(BPE_MODEL), lambda handle: handle.write(model))
        atomic_write_text(path, "".join(f"{t} {i}\n" for i, t in enumerate(self.tokens)))

    @classmethod
    def load(cls, path: str | Path, unit: Unit = "char", *, lexicon: Lexicon | None = None,
             keep_stress: bool = True) -> Tokenizer:
        """Read ``tokens.txt`` (and, for BPE, ``bpe.model`` beside it). Phone models read
        from a model directory need no lexicon: it only maps training words to phones."""
        path = Path(path)
        tokens: list[str] = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: cannot read token list ({exc})") from None
        for lineno, line in enumerate(lines, 1):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) != len(tokens):
                raise ModelError(f"{path}:{lineno}: expected '<symbol> {len(tokens)}', got {line!r}")
            tokens.append(parts[0])
        model_path = path.with_name(BPE_MODEL)
        bpe_model = read_model(model_path) if unit == "bpe" else None
        try:
            return cls(tokens, unit, lexicon=lexicon if unit == "phone" else None,
                       keep_stress=keep_stress, bpe_model=bpe_model, source=str(model_path))
        except ValueError as exc:
            raise ModelError(f"{path}: {exc}") from None


def _lexicon(config: TokenizerConfig) -> Lexicon | None:
    if config.type != "phone" or not config.lexicon:
        return None
    return Lexicon.read(config.lexicon, keep_stress=config.keep_stress)


def read_units(path: str | Path) -> list[str]:
    """A unit list: one unit per line (further fields, such as Kaldi ids, are ignored)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the unit list of tokenizer.units ({exc})") from None
    units = [line.split()[0] for line in lines if line.strip()]
    if not units:
        raise ConfigError(f"{path}: the unit list of tokenizer.units is empty")
    return units


def build_tokenizer(config: TokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    """The tokenizer of ``config`` (``tokenizer.*``) built from the training transcripts, or
    over the fixed unit list ``tokenizer.units`` (a paper's phone set, say)."""
    if config.units and config.type != "bpe":
        boundary = config.type == "char" or (config.type == "phone" and config.word_boundary)
        specials = [BLANK, UNK, SPACE] if boundary else [BLANK, UNK]
        units = [u for u in dict.fromkeys(read_units(config.units)) if u not in specials]
        return Tokenizer([*specials, *units], config.type, lexicon=_lexicon(config),
                         keep_stress=config.keep_stress)
    return Tokenizer.build(texts, config.type, lexicon=_lexicon(config),
                           keep_stress=config.keep_stress, word_boundary=config.word_boundary,
                           bpe_vocab_size=config.bpe_vocab_size)


def load_tokenizer(path: str | Path, config: TokenizerConfig) -> Tokenizer:
    """``tokens.txt`` (and ``bpe.model``) with the lexicon of ``config``, so that a resumed
    phone model encodes new transcripts as it did before."""
    return Tokenizer.load(path, config.type, lexicon=_lexicon(config),
                          keep_stress=config.keep_stress)
