"""Dev-set evaluation: CTC loss per utterance and greedy WER/CER, split over data-parallel
ranks when there are several."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from asr.decode import greedy_decode
from asr.model import AcousticModel
from asr.score import char_errors, word_errors
from asr.text import Tokenizer
from asr.train import ddp
from asr.train.data import AnyBatch, AnyExample, make_batch, num_frames
from asr.train.losses import ctc_losses
from asr.train.sampler import BucketBatchSampler

Features = Callable[[AnyBatch], tuple[torch.Tensor, torch.Tensor]]
# The padded batch of some examples (None when none could be read): asr.train.reader.
ReadExamples = Callable[[Sequence[AnyExample]], AnyBatch | None]


@torch.no_grad()
def evaluate(
    model: AcousticModel,
    examples: Sequence[AnyExample],
    features: Features,
    tokenizer: Tokenizer,
    device: torch.device,
    max_frames: int,
    max_utts: int,
    precision: str = "fp32",
    dist: ddp.DistInfo | None = None,
    read: ReadExamples | None = None,
) -> tuple[float, float, float]:
    """Dev loss per utterance, greedy WER and CER (percent) of ``model`` on ``examples``
    (a phone model with a lexicon: phone and phone-symbol character error rates).

    ``features`` turns a batch on the device into ``(batch, time, dim)`` features and lengths;
    ``read`` makes the batches (default: padding what the examples hold); an utterance it
    leaves out (unreadable audio) is not scored.
    Under DDP each rank decodes every ``world_size``-th utterance and every rank gets the
    totals, so that all ranks take the same decisions (schedule, best epoch, early stop).
    """
    dist = dist or ddp.DistInfo()
    model.eval()
    total_loss = 0.0
    refs: list[str] = []
    hyps: list[str] = []
    mine = list(examples)[dist.rank :: dist.world_size]
    order = BucketBatchSampler([num_frames(e) for e in mine], max_frames, max_utts, shuffle=False)
    for indices in order.global_batches(0):
        chosen = [mine[i] for i in indices]
        host = make_batch(chosen) if read is None else read(chosen)
        if host is None:
            continue
        batch = host.to(device)
        by_id = {e.utt_id: e for e in chosen}
        feats, lengths = features(batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            log_probs, out_lengths = model(feats, lengths)
        total_loss += float(ctc_losses(log_probs, out_lengths, batch).sum())
        for utt_id, hyp in zip(batch.utt_ids, greedy_decode(log_probs, out_lengths), strict=True):
            example = by_id[utt_id]
            # A phone model is scored in its own units: words would count every phone as an
            # insertion (a dev "WER" above 200 %).
            refs.append(example.text if tokenizer.spells_words
                        else tokenizer.decode(example.tokens.tolist()))
            hyps.append(tokenizer.decode(hyp.tokens))
    if dist.enabled:
        parts = ddp.all_gather((total_loss, refs, hyps), dist)
        total_loss = sum(p[0] for p in parts)
        refs = [r for p in parts for r in p[1]]
        hyps = [h for p in parts for h in p[2]]
    n = max(len(examples), 1)
    return total_loss / n, word_errors(refs, hyps).rate, char_errors(refs, hyps).rate
