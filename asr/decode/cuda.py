"""GPU beam search: ``torchaudio.models.decoder.cuda_ctc_decoder`` (lexicon-free, no LM).

The whole batch is searched on the GPU in one call; frames whose blank posterior exceeds
``blank_skip_threshold`` are skipped. Needs CUDA and a torchaudio built with it.
"""

from __future__ import annotations

import math

import torch

from asr.decode.base import Decoder, DecoderError, Hypothesis
from asr.text.tokenizer import Tokenizer


def cuda_usable() -> bool:
    return torch.cuda.is_available()


class CudaBeamDecoder(Decoder):
    """CTC prefix beam search on the GPU. ``blank_skip_threshold`` is a probability."""

    name = "cuda"

    def __init__(self, tokenizer: Tokenizer, beam_size: int = 16, nbest: int = 1,
                 blank_skip_threshold: float = 0.95, device: torch.device | str = "cuda") -> None:
        if not cuda_usable():
            raise DecoderError("the cuda decoder needs a CUDA GPU and none is usable here; "
                               "use --decoder beam (the same search on the CPU)")
        if nbest > beam_size:
            raise DecoderError(f"--nbest {nbest} is larger than --beam-size {beam_size}")
        try:
            from torchaudio.models.decoder import cuda_ctc_decoder
        except ImportError as exc:
            raise DecoderError(f"this torchaudio has no CUDA CTC decoder ({exc}); "
                               "use --decoder beam") from None
        self.device = torch.device(device)
        self.nbest = nbest
        # The decoder wants the blank first; the toolkit's tokenizers always put it there.
        if tokenizer.tokens[0] != "<blank>":
            raise DecoderError("the cuda decoder needs the blank as token 0")
        self._decoder = cuda_ctc_decoder(list(tokenizer.tokens), nbest=nbest, beam_size=beam_size,
                                         blank_skip_threshold=blank_skip_threshold)

    @torch.no_grad()
    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        emissions = log_probs.detach().to(self.device, torch.float32).contiguous()
        results = self._decoder(emissions, lengths.to(self.device, torch.int32))
        out = []
        for utt in results:
            hyps = []
            for h in utt:
                tokens = [int(t) for t in h.tokens if int(t) != 0]
                score = float(h.score)
                hyps.append(Hypothesis(tokens, score, score if math.isfinite(score) else 0.0))
            out.append(hyps)
        return out
