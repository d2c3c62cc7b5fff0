"""CTC training of the acoustic model: bucketed batches, clipping, dev evaluation, checkpoints
every epoch plus the best on dev loss, exact resume, early stopping, export of the best model.

Layout of an experiment directory::

    exp/NAME/config.yaml            resolved config of the run
    exp/NAME/tokens.txt             output units
    exp/NAME/train.log              one line per event
    exp/NAME/tb/                    TensorBoard scalars
    exp/NAME/checkpoints/epoch-N.pt full training state after epoch N (last ``keep_last``)
    exp/NAME/checkpoints/best.pt    weights with the lowest dev loss so far
    exp/NAME/final/                 the exported model directory (best weights)
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from asr.config import ExperimentConfig, save_config
from asr.data.batching import Batch, bucket_batches, collate
from asr.data.dataset import Example
from asr.decode import greedy_decode
from asr.features import CmvnStats
from asr.model import AcousticModel, build_model, count_parameters
from asr.modeldir import save_model_dir, save_state_dict
from asr.score import char_errors, word_errors
from asr.text import Tokenizer
from asr.utils import resolve_device

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^epoch-(\d+)\.pt$")


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    dev_loss: float
    dev_wer: float
    dev_cer: float
    lr: float
    seconds: float
    frames_per_s: float
    skipped_batches: int


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def ctc_loss(model: AcousticModel, batch: Batch) -> tuple[torch.Tensor, int]:
    """Summed CTC loss of a batch and the number of utterances whose loss was infinite
    (no valid alignment); those are zeroed rather than allowed to poison the gradients."""
    log_probs, out_lengths = model(batch.feats, batch.feat_lengths)
    losses = F.ctc_loss(
        log_probs.transpose(0, 1),
        batch.targets,
        out_lengths,
        batch.target_lengths,
        blank=0,
        reduction="none",
        zero_infinity=True,
    )
    # zero_infinity turns impossible alignments into exact zeros; a real loss is never 0.
    infinite = int(((losses == 0) & (batch.target_lengths > 0)).sum())
    return losses.sum(), infinite


class Trainer:
    def __init__(
        self,
        config: ExperimentConfig,
        exp_dir: str | Path,
        tokenizer: Tokenizer,
        train_set: list[Example],
        dev_set: list[Example],
        progress: bool = True,
    ) -> None:
        if not train_set:
            raise ValueError("no training utterances left after filtering")
        self.config = config
        self.tc = config.train
        self.exp_dir = Path(exp_dir)
        self.ckpt_dir = self.exp_dir / "checkpoints"
        self.tokenizer = tokenizer
        self.train_set = train_set
        self.dev_set = dev_set
        self.progress = progress
        self.device = resolve_device(self.tc.device)
        if self.device.type == "cpu" and self.tc.num_threads > 0:
            torch.set_num_threads(self.tc.num_threads)
        seed_everything(self.tc.seed)
        self.model = build_model(config.model, config.features, len(tokenizer)).to(self.device)
        self.optimizer = self._make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=self.tc.lr_decay_factor, patience=self.tc.lr_decay_patience
        )
        self.epoch = 0
        self.global_step = 0
        self.best_dev_loss = math.inf
        self.best_epoch = 0
        self.history: list[dict] = []
        self.infinite_losses = 0

    def _make_optimizer(self) -> torch.optim.Optimizer:
        params = self.model.parameters()
        if self.tc.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.tc.lr, momentum=self.tc.momentum, weight_decay=self.tc.weight_decay)
        if self.tc.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.tc.lr, weight_decay=self.tc.weight_decay)
        return torch.optim.Adam(params, lr=self.tc.lr, weight_decay=self.tc.weight_decay)

    # -- state -------------------------------------------------------------------------------

    def _compute_cmvn(self) -> None:
        stats = CmvnStats(self.model.feat_dim)
        for example in self.train_set:
            stats.add(example.feats)
        mean, std = stats.mean_std()
        self.model.normalizer.set_stats(mean.to(self.device), std.to(self.device))
        log.info("global CMVN from %d frames of %d utterances", stats.count, len(self.train_set))

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best_dev_loss": self.best_dev_loss,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "infinite_losses": self.infinite_losses,
            "rng_torch": torch.get_rng_state(),
            "rng_numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
            "rng_python": torch.tensor(list(random.getstate()[1]), dtype=torch.int64),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state.get("global_step", 0))
        self.best_dev_loss = float(state["best_dev_loss"])
        self.best_epoch = int(state["best_epoch"])
        self.history = list(state["history"])
        self.infinite_losses = int(state["infinite_losses"])
        torch.set_rng_state(state["rng_torch"])
        np_state = np.random.get_state()
        np.random.set_state((np_state[0], state["rng_numpy"].numpy().astype(np.uint32), *np_state[2:]))
        py_state = random.getstate()
        random.setstate((py_state[0], tuple(int(x) for x in state["rng_python"].tolist()), py_state[2]))

    def latest_checkpoint(self) -> Path | None:
        found = []
        for path in self.ckpt_dir.glob("epoch-*.pt"):
            match = CHECKPOINT_RE.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return max(found)[1] if found else None

    def save_checkpoint(self) -> None:
        save_state_dict(self.state_dict(), self.ckpt_dir / f"epoch-{self.epoch}.pt")
        for path in self.ckpt_dir.glob("epoch-*.pt"):
            match = CHECKPOINT_RE.match(path.name)
            if match and int(match.group(1)) <= self.epoch - self.tc.keep_last:
                path.unlink(missing_ok=True)

    def resume(self) -> bool:
        path = self.latest_checkpoint()
        if path is None:
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.load_state_dict(state)
        log.info("resumed from %s (epoch %d, best dev loss %.4f at epoch %d)", path, self.epoch, self.best_dev_loss, self.best_epoch)
        return True

    # -- loops -------------------------------------------------------------------------------

    def _batches(self, examples: list[Example], shuffle: bool, seed: int) -> list[list[int]]:
        lengths = [e.feats.shape[0] for e in examples]
        return bucket_batches(lengths, self.tc.max_frames_per_batch, self.tc.max_utts_per_batch, shuffle, seed)

    def _set_step_lr(self, progress: float) -> None:
        """Per-update learning rate: linear warm-up, then cosine decay over the whole run
        (``progress`` in [0, 1]) or, for ``plateau``, whatever the plateau scheduler set."""
        warmup = min(1.0, (self.global_step + 1) / self.tc.warmup_steps) if self.tc.warmup_steps else 1.0
        if self.tc.lr_schedule == "cosine":
            floor = self.tc.final_lr_ratio
            lr = self.tc.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
        elif self.global_step < self.tc.warmup_steps:
            lr = self.tc.lr
        else:
            return
        for group in self.optimizer.param_groups:
            group["lr"] = lr * warmup

    def train_epoch(self, tb=None) -> tuple[float, float, int]:
        from tqdm import tqdm

        self.model.train()
        batches = self._batches(self.train_set, shuffle=True, seed=self.tc.seed + self.epoch)
        total_loss = 0.0
        total_utts = 0
        frames = 0
        skipped = 0
        start = time.perf_counter()
        bar = tqdm(batches, desc=f"epoch {self.epoch + 1}", disable=not self.progress, leave=False)
        for step, indices in enumerate(bar):
            batch = collate([self.train_set[i] for i in indices]).to(self.device)
            loss, infinite = ctc_loss(self.model, batch)
            if infinite:
                self.infinite_losses += infinite
                log.warning("batch %d: %d utterance(s) with no valid CTC alignment (loss zeroed; %d so far)", step, infinite, self.infinite_losses)
            if not torch.isfinite(loss):
                skipped += 1
                log.warning("batch %d: non-finite loss, skipped (%s)", step, ", ".join(batch.utt_ids[:3]))
                continue
            self.optimizer.zero_grad(set_to_none=True)
            (loss / len(indices)).backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tc.clip_grad_norm)
            if not torch.isfinite(grad_norm):
                skipped += 1
                log.warning("batch %d: non-finite gradient norm, update skipped", step)
                continue
            self._set_step_lr((self.epoch + step / len(batches)) / max(self.tc.epochs, 1))
            self.optimizer.step()
            self.global_step += 1
            total_loss += loss.item()
            total_utts += len(indices)
            frames += int(batch.feat_lengths.sum())
            if self.progress:
                bar.set_postfix(loss=f"{total_loss / max(total_utts, 1):.3f}", fps=f"{frames / (time.perf_counter() - start):.0f}")
            if tb is not None and step % 50 == 0:
                tb.add_scalar("train/loss", loss.item() / len(indices), self.global_step)
                tb.add_scalar("train/grad_norm", float(grad_norm), self.global_step)
                tb.add_scalar("train/lr", self.optimizer.param_groups[0]["lr"], self.global_step)
        elapsed = time.perf_counter() - start
        return total_loss / max(total_utts, 1), frames / max(elapsed, 1e-9), skipped

    @torch.no_grad()
    def evaluate(self, examples: list[Example]) -> tuple[float, float, float]:
        """Dev loss per utterance, greedy WER and CER (percent)."""
        self.model.eval()
        total_loss = 0.0
        refs: list[str] = []
        hyps: list[str] = []
        for indices in self._batches(examples, shuffle=False, seed=0):
            batch = collate([examples[i] for i in indices]).to(self.device)
            log_probs, out_lengths = self.model(batch.feats, batch.feat_lengths)
            losses = F.ctc_loss(log_probs.transpose(0, 1), batch.targets, out_lengths, batch.target_lengths, blank=0, reduction="none", zero_infinity=True)
            total_loss += float(losses.sum())
            for i, hyp in zip(indices, greedy_decode(log_probs, out_lengths), strict=True):
                refs.append(examples[i].text)
                hyps.append(self.tokenizer.decode(hyp.tokens))
        n = max(len(examples), 1)
        return total_loss / n, word_errors(refs, hyps).rate, char_errors(refs, hyps).rate

    def fit(self, resume: bool = True) -> Path:
        """Train until ``epochs`` or early stopping; export and return the best model directory."""
        from torch.utils.tensorboard import SummaryWriter

        self.exp_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.exp_dir / "config.yaml")
        self.tokenizer.save(self.exp_dir / "tokens.txt")
        if not (resume and self.resume()):
            if self.config.features.cmvn == "global":
                self._compute_cmvn()
        log.info(
            "model: %d parameters (%d x %s LSTM, %d cells, frame stack %d), %d tokens; device %s; "
            "%d train / %d dev utterances",
            count_parameters(self.model), self.config.model.num_layers,
            "bidirectional" if self.config.model.bidirectional else "unidirectional",
            self.config.model.hidden_size, self.config.model.frame_stack, len(self.tokenizer),
            self.device, len(self.train_set), len(self.dev_set),
        )
        tb = SummaryWriter(str(self.exp_dir / "tb"))
        try:
            while self.epoch < self.tc.epochs:
                if self._should_stop():
                    log.info("early stopping: no dev improvement for %d epochs", self.tc.early_stop_patience)
                    break
                started = time.perf_counter()
                train_loss, fps, skipped = self.train_epoch(tb)
                dev_loss, dev_wer, dev_cer = self.evaluate(self.dev_set) if self.dev_set else (train_loss, math.nan, math.nan)
                self.epoch += 1
                lr = self.optimizer.param_groups[0]["lr"]
                if self.tc.lr_schedule == "plateau":
                    self.scheduler.step(dev_loss)
                stats = EpochStats(self.epoch, train_loss, dev_loss, dev_wer, dev_cer, lr, time.perf_counter() - started, fps, skipped)
                self.history.append(stats.__dict__)
                improved = dev_loss < self.best_dev_loss
                if improved:
                    self.best_dev_loss, self.best_epoch = dev_loss, self.epoch
                    save_state_dict({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, self.ckpt_dir / "best.pt")
                self.save_checkpoint()
                for key in ("train_loss", "dev_loss", "dev_wer", "dev_cer", "lr", "frames_per_s"):
                    if not math.isnan(getattr(stats, key)):
                        tb.add_scalar(f"epoch/{key}", getattr(stats, key), self.epoch)
                dev = (
                    f"dev loss {dev_loss:.4f}, dev WER {dev_wer:.2f}%, dev CER {dev_cer:.2f}%"
                    if self.dev_set
                    else "no dev set"
                )
                log.info(
                    "epoch %d: train loss %.4f, %s, lr %.2e, %.0f frames/s, %.1f s%s",
                    self.epoch, train_loss, dev, lr, fps, stats.seconds, " (best)" if improved else "",
                )
        finally:
            tb.close()
        return self.export()

    def _should_stop(self) -> bool:
        patience = self.tc.early_stop_patience
        return patience > 0 and self.epoch - self.best_epoch >= patience and self.best_epoch > 0

    def export(self) -> Path:
        best = self.ckpt_dir / "best.pt"
        if best.exists():
            self.model.load_state_dict(torch.load(best, map_location=self.device, weights_only=True))
        out = save_model_dir(self.exp_dir / "final", self.model, self.config, self.tokenizer)
        log.info("exported model (epoch %d, dev loss %.4f) to %s", self.best_epoch, self.best_dev_loss, out)
        return out
