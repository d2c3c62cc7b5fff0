"""The LSTM of Graves, Mohamed & Hinton (2013), with peephole connections, in plain torch.

Per direction, with ``x`` the input, ``h`` the output and ``c`` the cell state::

    i = sigmoid(W_xi x + W_hi h[t-1] + w_ci * c[t-1] + b_i)
    f = sigmoid(W_xf x + W_hf h[t-1] + w_cf * c[t-1] + b_f)
    c = f * c[t-1] + i * tanh(W_xc x + W_hc h[t-1] + b_c)
    o = sigmoid(W_xo x + W_ho h[t-1] + w_co * c + b_o)
    h = o * tanh(c)

One bias per gate and three diagonal peephole vectors: ``4H (in + H) + 4H + 3H`` weights per
direction, which is how the paper counts its networks' weights. cuDNN has no peepholes, so this
runs one time step at a time (both directions in the same step); it is slower than ``nn.LSTM``
(the training benchmark measures by how much).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from asr.model.subsampling import length_mask


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``(batch, time, dim)`` within its own length; padding stays put."""
    time = x.shape[1]
    steps = torch.arange(time, device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class PeepholeLSTM(nn.Module):
    """One (bi)directional peephole LSTM layer over padded batches.

    ``(batch, time, input_size)`` and lengths ``(batch,)`` -> ``(batch, time, D * hidden_size)``
    with zeros past each length; ``D`` is 2 when bidirectional. The backward direction reads
    each utterance reversed within its length, so padding never reaches a real frame.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.directions = 2 if bidirectional else 1
        d, h = self.directions, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(d, 4 * h, input_size))
        self.weight_hh = nn.Parameter(torch.empty(d, 4 * h, h))
        self.bias = nn.Parameter(torch.empty(d, 4 * h))
        self.peephole = nn.Parameter(torch.empty(d, 3, h))  # input, forget, output gates
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        return self.directions * self.hidden_size

    def reset_parameters(self) -> None:
        # The same interval nn.LSTM uses.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        inputs = [x]
        if self.directions == 2:
            inputs.append(reverse_padded(x, lengths))
        stacked = torch.stack(inputs)  # (D, batch, time, input)
        # Input contributions of every time step in one matmul: (D, batch, time, 4H).
        proj = torch.einsum("dbti,dgi->dbtg", stacked, self.weight_ih) + self.bias[:, None, None, :]
        hidden = self._recurrence(proj)  # (D, batch, time, H)
        outputs = [hidden[0]]
        if self.directions == 2:
            outputs.append(reverse_padded(hidden[1], lengths))
        mask = length_mask(lengths.to(x.device), x.shape[1]).unsqueeze(-1)
        return torch.cat(outputs, dim=-1) * mask

    def _recurrence(self, proj: torch.Tensor) -> torch.Tensor:
        """``(D, batch, time, 4H)`` input contributions -> ``(D, batch, time, H)`` outputs.

        States past an utterance's end keep evolving on padding, but only after every real
        frame of that utterance (both directions start at its first real frame), so they never
        reach a returned value.
        """
        directions, batch, time, _ = proj.shape
        h = proj.new_zeros(directions, batch, self.hidden_size)
        c = proj.new_zeros(directions, batch, self.hidden_size)
        w_hh = self.weight_hh.transpose(1, 2).to(proj.dtype)  # (D, H, 4H)
        peep = self.peephole.to(proj.dtype)
        p_i, p_f, p_o = peep[:, 0, None, :], peep[:, 1, None, :], peep[:, 2, None, :]
        outputs = []
        for t in range(time):
            gates = proj[:, :, t] + torch.bmm(h, w_hh)
            i, f, g, o = gates.chunk(4, dim=-1)
            i = torch.sigmoid(i + p_i * c)
            f = torch.sigmoid(f + p_f * c)
            c = f * c + i * torch.tanh(g)
            o = torch.sigmoid(o + p_o * c)
            h = o * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=2)
