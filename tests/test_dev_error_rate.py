"""The dev error rate of training: a phone model with a lexicon is scored in phones."""

from __future__ import annotations

import torch

from asr.data.dataset import Example
from asr.text import Tokenizer
from asr.text.lexicon import Lexicon
from asr.train.evaluate import evaluate


class OneHotModel(torch.nn.Module):
    """Emits, for every utterance, the given token ids separated by blanks (one per frame)."""

    def __init__(self, outputs: list[list[int]], vocab: int) -> None:
        super().__init__()
        self.outputs, self.vocab = outputs, vocab

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        batch, time, _ = feats.shape
        log_probs = torch.full((batch, time, self.vocab), -30.0)
        log_probs[:, :, 0] = 0.0
        for b, ids in enumerate(self.outputs):
            for k, token in enumerate(ids):
                log_probs[b, 2 * k, 0], log_probs[b, 2 * k, token] = -30.0, 0.0
        return log_probs, lengths


def _examples(tokenizer: Tokenizer, texts: list[str]) -> list[Example]:
    return [Example(f"u{i}", torch.zeros(40, 2), torch.tensor(tokenizer.encode(text)), text, "s", 0.4)
            for i, text in enumerate(texts)]


def test_phone_model_dev_error_rate_is_a_phone_error_rate() -> None:
    lexicon = Lexicon({"YES": ["Y", "EH", "S"], "NO": ["N", "OW"]})
    tokenizer = Tokenizer.build(["YES NO"], "phone", lexicon=lexicon, word_boundary=True)
    assert not tokenizer.spells_words and tokenizer.error_rate_name == "PER"
    examples = _examples(tokenizer, ["YES NO"])
    # One phone wrong (OW -> EH) of the five: PER 20 %, where words would give 5 phones
    # against 2 words (250 %).
    wrong = tokenizer.encode("YES NO")
    wrong[-1] = tokenizer.index["EH"]
    model = OneHotModel([wrong], len(tokenizer))
    _, per, _ = evaluate(model, examples, lambda b: (b.feats, b.feat_lengths), tokenizer,
                         torch.device("cpu"), 10_000, 8)
    assert abs(per - 20.0) < 1e-9


def test_character_model_dev_error_rate_is_a_word_error_rate() -> None:
    tokenizer = Tokenizer.build(["YES NO"], "char")
    assert tokenizer.spells_words and tokenizer.error_rate_name == "WER"
    examples = _examples(tokenizer, ["YES NO"])
    model = OneHotModel([tokenizer.encode("YES ON")], len(tokenizer))
    _, wer, _ = evaluate(model, examples, lambda b: (b.feats, b.feat_lengths), tokenizer,
                         torch.device("cpu"), 10_000, 8)
    assert abs(wer - 50.0) < 1e-9
