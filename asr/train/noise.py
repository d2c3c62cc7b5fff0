"""Gaussian weight noise (Graves, Mohamed & Hinton 2013, second training phase).

For the forward and backward passes of each update the weights are ``w + n`` with
``n ~ N(0, std^2)`` drawn afresh; the clean weights ``w`` are put back before the optimizer
step, so the update is ``w - lr * grad(loss)(w + n)``. The noise of update ``s`` comes from a
generator seeded with ``(seed, s)``: identical on every data-parallel rank and after a resume,
without touching the global random state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightNoise:
    def __init__(self, model: nn.Module, std: float, seed: int = 0) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.std = std
        self.seed = seed

    def generator(self, step: int, device: torch.device) -> torch.Generator:
        return torch.Generator(device=device).manual_seed((self.seed * 1_000_003 + step) % 2**63)

    @contextmanager
    def applied(self, step: int) -> Iterator[None]:
        """Noisy weights inside the block, the exact clean weights after it."""
        if self.std <= 0 or not self.params:
            yield
            return
        generator = self.generator(step, self.params[0].device)
        clean = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for param in self.params:
                noise = torch.randn(
                    param.shape, generator=generator, device=param.device, dtype=param.dtype
                )
                param.add_(noise, alpha=self.std)
        try:
            yield
        finally:
            with torch.no_grad():
                for param, saved in zip(self.params, clean, strict=True):
                    param.copy_(saved)
