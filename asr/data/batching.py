"""Length-bucketed dynamic batches and padding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from asr.data.dataset import Example


@dataclass
class Batch:
    """A padded training batch, of one input kind: features ``(batch, time, dim)`` or
    waveforms ``(batch, samples)``. The trainer's featurizer (the configured front-end for
    waveforms, identity for features) turns ``inputs`` into the model's features."""

    utt_ids: list[str]
    inputs: torch.Tensor  # (batch, time, dim) features or (batch, samples) audio, zero padded
    input_lengths: torch.Tensor  # (batch,) int64: frames or samples
    targets: torch.Tensor  # (sum of label lengths,) int64, concatenated
    target_lengths: torch.Tensor  # (batch,) int64

    # The inputs under the names of their kind.
    feats = property(lambda self: self.inputs)
    feat_lengths = property(lambda self: self.input_lengths)
    waves = property(lambda self: self.inputs)
    wave_lengths = property(lambda self: self.input_lengths)

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.utt_ids,
            self.inputs.to(device, non_blocking=True),
            self.input_lengths.to(device),
            self.targets.to(device),
            self.target_lengths.to(device),
        )

    def pin_memory(self) -> Batch:
        """Page-locked inputs, for asynchronous copies to a GPU."""
        return Batch(self.utt_ids, self.inputs.pin_memory(), self.input_lengths, self.targets, self.target_lengths)

    def rows(self, start: int, stop: int) -> Batch:
        """Utterances ``start:stop``, padding trimmed to the longest kept."""
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.target_lengths.cumsum(0)])
        lengths = self.input_lengths[start:stop]
        return Batch(self.utt_ids[start:stop], self.inputs[start:stop, : int(lengths.max())], lengths,
                     self.targets[int(offsets[start]) : int(offsets[stop])], self.target_lengths[start:stop])


def bucket_batches(
    lengths: Sequence[int],
    max_frames: int,
    max_utts: int,
    shuffle: bool = False,
    seed: int = 0,
) -> list[list[int]]:
    """Group indices of similar length so that ``batch_size * longest <= max_frames``.

    Utterances are sorted by length (ties by index, so the grouping is deterministic); the order
    of the batches is shuffled with ``seed`` when ``shuffle``. A single utterance longer than
    ``max_frames`` still gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[index]  # sorted ascending: the newest is the longest
        if current and ((len(current) + 1) * longest > max_frames or len(current) >= max_utts):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    if shuffle:
        generator = torch.Generator().manual_seed(seed)
        permutation = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in permutation]
    return batches


def collate(examples: Sequence[Example]) -> Batch:
    lengths = torch.tensor([e.feats.shape[0] for e in examples], dtype=torch.long)
    dim = examples[0].feats.shape[1]
    feats = torch.zeros(len(examples), int(lengths.max()), dim)
    for i, example in enumerate(examples):
        feats[i, : example.feats.shape[0]] = example.feats
    return Batch(
        [e.utt_id for e in examples],
        feats,
        lengths,
        torch.cat([e.tokens for e in examples]),
        torch.tensor([len(e.tokens) for e in examples], dtype=torch.long),
    )
