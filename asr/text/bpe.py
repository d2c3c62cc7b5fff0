"""Byte-pair-encoding units: a sentencepiece model trained on the training transcripts.

The serialized model (``bpe.model``) is kept next to ``tokens.txt`` so that a model directory
restores the same segmentation. sentencepiece's own ``<unk>`` is its id 0 and no BOS/EOS are
used, so the CTC token id is the sentencepiece id + 1 (0 stays the blank, 1 is ``<unk>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path

from asr.errors import AsrError, ModelError

BPE_MODEL = "bpe.model"
WORD_START = "\u2581"  # sentencepiece's marker of a piece that begins a word


class BpeError(AsrError):
    """The BPE model cannot be trained or loaded."""


def _spm():
    try:
        import sentencepiece
    except ImportError as exc:  # pragma: no cover - sentencepiece is a dependency
        raise BpeError(f"BPE units need sentencepiece ({exc}); pip install sentencepiece") from None
    return sentencepiece


def train_bpe(texts: Iterable[str], vocab_size: int, seed_source: str = "training text") -> bytes:
    """Train a BPE model of ``vocab_size`` pieces (``<unk>`` included) on ``texts``; the
    serialized model. Deterministic for the same texts."""
    spm = _spm()
    sentences = [t for t in texts if t.strip()]
    if not sentences:
        raise BpeError(f"{seed_source}: no text to train the BPE model on")
    model = BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=model, model_type="bpe",
            vocab_size=vocab_size, character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1,
            pad_id=-1, num_threads=1, minloglevel=2, input_sentence_size=0,
            shuffle_input_sentence=False, max_sentence_length=1 << 16)
    except RuntimeError as exc:
        message = str(exc).splitlines()[0]
        if "smaller than required_chars" in message:
            needed = re.search(r"(\d+) vs (\d+)", message)
            at_least = f" to at least {needed.group(2)}" if needed else ""
            raise BpeError(f"{seed_source}: tokenizer.bpe_vocab_size={vocab_size} cannot hold "
                           f"every character of the text and <unk>; raise it{at_least}") from None
        if "Vocabulary size" in message:
            raise BpeError(f"{seed_source}: too little text for tokenizer.bpe_vocab_size="
                           f"{vocab_size} ({message}); lower tokenizer.bpe_vocab_size") from None
        raise BpeError(f"{seed_source}: sentencepiece failed ({message})") from None
    return model.getvalue()


def load_processor(model: bytes, source: str):
    """A sentencepiece processor from serialized bytes; ``source`` names them in errors."""
    spm = _spm()
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(model)
    except (RuntimeError, OSError) as exc:
        raise ModelError(f"{source}: not a sentencepiece model ({str(exc).splitlines()[0]})") from None
    return processor


def read_model(path: str | Path) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: BPE model missing; a bpe model directory holds the "
                         f"{BPE_MODEL} written at training time next to tokens.txt") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the BPE model ({exc})") from None
