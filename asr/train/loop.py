"""The CTC trainer: updates with gradient accumulation, bf16 autocast, weight noise and
clipping over data-parallel ranks; epochs with dev evaluation, checkpoints (exact resume, also
mid-epoch), a clean stop on SIGINT/SIGTERM, early stopping and export of the best model.

Layout of an experiment directory (written by rank 0 only)::

    exp/NAME/config.yaml            resolved config of the run
    exp/NAME/tokens.txt             output units
    exp/NAME/train.log              one line per event (written by ``asr train``)
    exp/NAME/tb/                    TensorBoard scalars
    exp/NAME/checkpoints/           epoch-N.pt, step-S.pt, best.pt, last (asr.train.checkpoint)
    exp/NAME/final/                 the exported model directory (best weights)
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from asr.config import ExperimentConfig, save_config
from asr.errors import AsrError
from asr.features import CmvnStats, SpeakerTable
from asr.model import build_model, count_parameters, graves_weight_count
from asr.progress import Progress, ProgressWriter
from asr.text import Tokenizer
from asr.train import ddp
from asr.train import resume as resuming
from asr.train.build import make_augmentation, make_frontend, make_optimizer, wrap_model
from asr.train.checkpoint import (
    Checkpoints,
)
from asr.train.data import AnyBatch, AnyExample, WaveExample
from asr.train.evaluate import evaluate
from asr.train.export_model import export_final
from asr.train.interrupt import StopRequest, TrainingInterrupted
from asr.train.lazy import LazyExample
from asr.train.losses import ctc_losses, infinite_count
from asr.train.noise import WeightNoise
from asr.train.oom import OomPolicy, OutOfMemory, split_batch
from asr.train.pipeline import TrainingData
from asr.train.reader import BatchReader, Unreadable
from asr.train.sampler import BucketBatchSampler
from asr.train.schedule import make_plateau, set_lr, step_lr
from asr.train.stats import EpochStats, EpochTotals, StepResult, format_eta
from asr.utils import resolve_device

log = logging.getLogger("asr.train")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Trains ``config.model`` on ``train_set``: feature :class:`~asr.data.dataset.Example` s,
    or :class:`~asr.train.data.WaveExample` s whose features are computed on the device."""

    def __init__(
        self,
        config: ExperimentConfig,
        exp_dir: str | Path,
        tokenizer: Tokenizer,
        train_set: Sequence[AnyExample],
        dev_set: Sequence[AnyExample],
        progress: bool = True,
        dist: ddp.DistInfo | None = None,
        unreadable: Sequence[Unreadable] = (),
    ) -> None:
        if not train_set:
            raise ValueError("no training utterances left after filtering")
        if config.train.accum_grad < 1:
            raise AsrError(f"train.accum_grad: {config.train.accum_grad} must be 1 or more")
        if config.train.average_last < 0:
            raise AsrError(f"train.average_last: {config.train.average_last} must be 0 (off) or more")
        self.config = config
        self.tc = tc = config.train
        self.exp_dir = Path(exp_dir)
        self.ckpt_dir = self.exp_dir / "checkpoints"
        self.checkpoints = Checkpoints(self.ckpt_dir, max(tc.keep_last, tc.average_last))
        self.tokenizer = tokenizer
        self.train_set = list(train_set)
        self.dev_set = list(dev_set)
        self.progress = progress
        self.dist = dist or ddp.DistInfo()
        self.device = ddp.rank_device(resolve_device(tc.device), self.dist)
        if self.device.type == "cpu" and tc.num_threads > 0:
            torch.set_num_threads(tc.num_threads)
        elif self.device.type == "cpu" and tc.num_workers > 0:
            # Math threads spinning on the cores the data loader workers need slow every
            # update several-fold (asr benchmark loader on a busy machine): leave them theirs.
            threads = max(1, torch.get_num_threads() - tc.num_workers)
            torch.set_num_threads(threads)
            log.info("%d math thread(s) beside %d data loader worker(s) (train.num_threads: 0)", threads, tc.num_workers)
        seed_everything(tc.seed)
        self.model = build_model(config.model, config.features, len(tokenizer)).to(self.device)
        if self.dist.enabled:
            seed_everything(ddp.rank_seed(tc.seed, self.dist))
        self.optimizer = make_optimizer(self.model, tc)
        self.scheduler = make_plateau(self.optimizer, tc)
        on_the_fly = isinstance(self.train_set[0], (WaveExample, LazyExample))
        self.frontend = make_frontend(config, on_the_fly, self.device)
        # cmvn: speaker with features from the audio: each speaker's statistics (set at start).
        self.speaker_cmvn: SpeakerTable | None = None
        self.augment, self.wave_augment = make_augmentation(config, on_the_fly)
        self.net, self._ddp = wrap_model(self.model, self.device, self.dist.enabled, tc.compile)
        self.noise = WeightNoise(self.model, tc.weight_noise, tc.seed)
        self.data = TrainingData(config, self.train_set, self.dev_set, self.wave_augment, self.dist,
                                 self.exp_dir, unreadable, pin_memory=self.device.type == "cuda")
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # this rank's batches of the current epoch already trained on
        self.global_step = 0  # optimizer updates
        self.best_dev_loss = math.inf  # dev loss of the best epoch
        self.best_dev_wer = math.inf  # and its dev WER
        self.best_epoch = 0
        self.history: list[dict] = []
        self.infinite_losses = 0
        self.totals = EpochTotals()
        self.step_callbacks: list[Callable[[Trainer, StepResult], None]] = []
        self.stop = StopRequest()
        self.oom = OomPolicy(tc.max_oom_batches, self.dist.enabled)
        self.progress_file = ProgressWriter(self.exp_dir, enabled=self.dist.is_main)

    # -- state -------------------------------------------------------------------------------

    @property
    def sampler(self) -> BucketBatchSampler:
        return self.data.sampler

    @property
    def reader(self) -> BatchReader:
        return self.data.reader

    def _feature_rows(self, examples: Sequence[AnyExample]) -> Iterator[tuple[str, torch.Tensor]]:
        """``(utt_id, (frames, dim))`` unperturbed features of ``examples`` on the CPU, as the
        front end makes them (before any speaker CMVN); the unreadable ones agreed across ranks
        at the end."""
        for batch in self.data.unperturbed_batches(examples):
            feats, feat_lengths = self._features(batch.to(self.device))
            for utt_id, row, length in zip(batch.utt_ids, feats.cpu(), feat_lengths.tolist(), strict=True):
                yield utt_id, row[:length]
        self.data.check_unreadable()

    def _compute_cmvn(self) -> None:
        stats = CmvnStats(self.model.feat_dim)
        sample = self.data.cmvn_sample()
        for _, row in self._feature_rows([self.train_set[i] for i in sample]):
            stats.add(row)
        mean, std = stats.mean_std()
        self.model.normalizer.set_stats(mean.to(self.device), std.to(self.device))
        used, total = len(sample), len(self.train_set)
        log.info("global CMVN from %d frames of %s utterances", stats.count,
                 f"{used} of {total}" if used < total else total)

    def _compute_speaker_cmvn(self) -> None:
        """Per-speaker statistics of the unperturbed features of every training and dev
        utterance (Kaldi's ``compute-cmvn-stats --spk2utt``), computed at every start: they
        are a function of the data, not of the training state."""
        examples = [*self.train_set, *self.dev_set]
        table = SpeakerTable({e.utt_id: e.speaker for e in examples})
        self.speaker_cmvn = None  # the front-end's own features
        for utt_id, row in self._feature_rows(examples):
            table.add(utt_id, row)
        table.finish()
        self.speaker_cmvn = table
        log.info("speaker CMVN from %d frames of %d speakers (%d utterances)", table.num_frames,
                 table.num_speakers, len(examples))

    def state_dict(self) -> dict:
        """The full training state (:func:`asr.train.resume.training_state`; every rank)."""
        return resuming.training_state(self)

    def load_state_dict(self, state: dict) -> None:
        resuming.restore_state(self, state)

    def resume(self) -> bool:
        """Restore the newest checkpoint of the run; False when there is none."""
        return resuming.resume_latest(self)

    def save_checkpoint(self, mid_epoch: bool = False) -> Path | None:
        """Write the full training state (rank 0; every rank must call it)."""
        return resuming.save_checkpoint(self, mid_epoch)

    def init_weights(self, path: str | Path) -> None:
        """Start from the weights in ``path``; the optimizer starts afresh."""
        resuming.init_weights(self, path)

    # -- one update --------------------------------------------------------------------------

    def _features(self, batch: AnyBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, time, dim)`` features and lengths of a batch already on the device."""
        if self.frontend is not None:  # waveforms: the configured front-end
            with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
                feats, lengths = self.frontend(batch.inputs, batch.input_lengths)
                if self.speaker_cmvn is not None:
                    feats = self.speaker_cmvn.normalize(feats, lengths, batch.utt_ids)
                return feats, lengths
        return batch.inputs, batch.input_lengths  # features already

    def _frames(self, batch: AnyBatch) -> int:
        """Input feature frames of a host-side batch (counted without a device sync)."""
        if self.frontend is not None:
            return int(self.frontend.num_frames(batch.input_lengths).sum())
        return int(batch.input_lengths.sum())

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.tc.precision == "bf16")

    def _forward_backward(self, cpu_batch: AnyBatch, norm: float, sync: bool) -> tuple[float, int] | None:
        """Loss and gradients of one batch; returns (summed loss, frames), or None when the
        loss is not finite and the batch is left out (single process only)."""
        frames = self._frames(cpu_batch)
        batch = cpu_batch.to(self.device)
        feats, lengths = self._features(batch)
        no_sync = self._ddp.no_sync() if self._ddp is not None and not sync else contextlib.nullcontext()
        with no_sync:
            with self._autocast():
                if self.augment is not None:
                    log_probs, out_lengths = self.net(feats, lengths, augment=self.augment)
                else:
                    log_probs, out_lengths = self.net(feats, lengths)
            losses = ctc_losses(log_probs, out_lengths, batch)
            loss = losses.sum()
            # Both numbers in one host sync.
            loss_value, infinite = torch.stack([loss.detach().float(), infinite_count(losses, batch.target_lengths).float()]).tolist()
            if infinite:
                self.infinite_losses += int(infinite)
                log.warning(
                    "update %d: %d utterance(s) with no valid CTC alignment (loss zeroed; %d so far)",
                    self.global_step, int(infinite), self.infinite_losses,
                )
            if not math.isfinite(loss_value) and not self.dist.enabled:
                # Under DDP every rank must run backward; the non-finite gradient norm then
                # skips the update on all ranks alike.
                log.warning("update %d: non-finite loss, batch skipped (%s)", self.global_step, ", ".join(batch.utt_ids[:3]))
                return None
            (loss / norm).backward()
        return loss_value, frames

    def train_step(self, batches: Sequence[AnyBatch], utterances: int, progress: float) -> StepResult:
        """One optimizer update over ``batches`` (this rank's share, accumulated).

        The summed loss is divided by ``utterances / world_size`` with ``utterances`` counted
        over all ranks: DDP averages the ranks' gradients, so the update equals one made on the
        union of all ranks' batches with the loss averaged per utterance. With weight noise the
        forward and backward passes see noisy weights and the clean ones are updated.
        ``progress`` in [0, 1] drives the cosine schedule.
        """
        norm = utterances / self.dist.world_size
        pieces = 1  # after a CUDA out-of-memory error each batch is retried in more pieces
        while True:
            result = StepResult(updated=False)
            self.optimizer.zero_grad(set_to_none=True)
            parts = [part for batch in batches for part in split_batch(batch, pieces)]
            try:
                with self.noise.applied(self.global_step):
                    for index, batch in enumerate(parts):
                        done = self._forward_backward(batch, norm, sync=index == len(parts) - 1)
                        if done is None:
                            result.skipped += 1
                            continue
                        result.loss += done[0]
                        result.frames += done[1]
                        result.utterances += len(batch.utt_ids)
                break
            except OutOfMemory as exc:
                error = str(exc)  # not the exception: its traceback holds the batch's tensors
            # Gradients of a failed try are partial: drop them before retrying.
            self.optimizer.zero_grad(set_to_none=True)
            pieces = self.oom.next_pieces(list(batches), pieces, self.global_step, error)
            if pieces == 0:
                return StepResult(updated=False, skipped=len(batches))
        if result.utterances == 0:
            return result
        max_norm = self.tc.clip_grad_norm if self.tc.clip_grad_norm > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        if not math.isfinite(grad_norm):
            result.skipped += 1
            log.warning("update %d: non-finite gradient norm, update skipped", self.global_step)
            return result
        set_lr(self.optimizer, step_lr(self.tc, self.global_step, progress))
        self.optimizer.step()
        self.global_step += 1
        result.updated = True
        result.grad_norm = grad_norm
        return result

    # -- epochs ------------------------------------------------------------------------------

    def train_epoch(self, tb=None, limit: int | None = None) -> tuple[float, float, int]:
        """Train on this rank's batches of epoch ``self.epoch`` from ``self.step_in_epoch`` on
        (at most ``limit`` updates). Returns the epoch's loss per utterance, frames per second
        of this call and the number of skipped batches or updates."""
        from tqdm import tqdm

        self.model.train()
        batch_count = self.data.local_batches(self.epoch)
        frames = 0
        start = time.perf_counter()
        last_log = (start, 0)
        bar = tqdm(
            total=batch_count, initial=self.step_in_epoch, desc=f"epoch {self.epoch + 1}",
            disable=not (self.progress and self.dist.is_main), leave=False, unit="batch",
        )
        for first, count, batches in self.data.updates(self.epoch, self.step_in_epoch, limit):
            utterances = self.data.update_utterances(self.epoch, first, count)
            progress = (self.epoch + first / batch_count) / max(self.tc.epochs, 1)
            result = self.train_step(batches, utterances, progress) if batches else StepResult(updated=False, skipped=count)
            self.step_in_epoch = first + count
            self.totals.add(result)
            bar.update(count)
            self._show_progress(batch_count, time.perf_counter() - start)
            if result.updated:
                frames += result.frames
                now = time.perf_counter()
                if self.progress:
                    bar.set_postfix(loss=f"{self.totals.loss / max(self.totals.utterances, 1):.3f}",
                                    fps=f"{frames / (now - start):.0f}")
                if tb is not None and (self.global_step - 1) % max(self.tc.log_every_steps, 1) == 0:
                    fps = (frames - last_log[1]) / max(now - last_log[0], 1e-9) * self.dist.world_size
                    last_log = (now, frames)
                    tb.add_scalar("train/loss", result.loss / max(result.utterances, 1), self.global_step)
                    tb.add_scalar("train/grad_norm", result.grad_norm, self.global_step)
                    tb.add_scalar("train/lr", self.optimizer.param_groups[0]["lr"], self.global_step)
                    tb.add_scalar("train/frames_per_s", fps, self.global_step)
            for callback in self.step_callbacks:
                callback(self, result)
            if self._stop_requested():
                bar.close()
                self._interrupted(self.save_checkpoint(mid_epoch=True))
            every = self.tc.checkpoint_every_steps
            if every > 0 and result.updated and self.global_step % every == 0 and self.step_in_epoch < batch_count:
                self.save_checkpoint(mid_epoch=True)
        bar.close()
        self.data.check_unreadable()
        elapsed = time.perf_counter() - start
        return self.totals.loss / max(self.totals.utterances, 1), frames / max(elapsed, 1e-9), self.totals.skipped

    def _show_progress(self, batches: int, elapsed: float, done: bool = False) -> None:
        """Keep ``EXP/progress.json`` current for ``asr follow`` (rank 0, about once a second)."""
        loss = self.totals.loss / max(self.totals.utterances, 1)
        epoch = min(self.epoch + 1, self.tc.epochs) if not done else self.epoch
        self.progress_file.update(
            Progress(epoch, self.tc.epochs, self.step_in_epoch, batches, loss, elapsed, done=done), force=done,
        )

    def evaluate(self, examples: Sequence[AnyExample], across_ranks: bool = True) -> tuple[float, float, float]:
        """Dev loss per utterance, greedy WER and CER (percent); see :func:`evaluate`. With
        ``across_ranks`` False this rank decodes every utterance alone."""
        return evaluate(
            self.model, examples, self._features, self.tokenizer, self.device,
            self.tc.max_frames_per_batch, self.tc.max_utts_per_batch, self.tc.precision,
            self.dist if across_ranks else None, self.data.read,
        )

    # -- stopping ----------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """Stop after the current update: save a checkpoint, raise :class:`TrainingInterrupted`."""
        self.stop.request(signum)

    def _stop_requested(self) -> bool:
        return ddp.any_rank(self.stop.requested, self.dist, self.device)

    def _interrupted(self, path: Path | None) -> None:
        where = f"epoch {self.epoch + 1}, batch {self.step_in_epoch}" if self.step_in_epoch else f"end of epoch {self.epoch}"
        saved = f"checkpoint saved to {path}" if path else "checkpoint saved by rank 0"
        log.warning("%s: stopped at %s (update %d); %s", self.stop.name, where, self.global_step, saved)
        raise TrainingInterrupted(
            f"{self.exp_dir}: stopped by {self.stop.name} at {where}; {saved}; run the same command "
            "again to resume"
        )

    def _should_stop(self) -> bool:
        patience = self.tc.early_stop_patience
        return patience > 0 and self.epoch - self.best_epoch >= patience and self.best_epoch > 0

    # -- the run -----------------------------------------------------------------------------

    def _describe(self) -> None:
        mc = self.config.model
        graves = graves_weight_count(mc, self.model.feat_dim, len(self.tokenizer))
        extra = f"; {graves:,} as Graves et al. (2013) count them" if graves and mc.cell == "lstm" else ""
        log.info(
            "model: %d parameters%s (%d x %s %s LSTM, %d cells%s, %s front-end x%d%s), %d tokens; "
            "device %s%s; %d train / %d dev utterances",
            count_parameters(self.model), extra, mc.num_layers,
            "bidirectional" if mc.bidirectional else "unidirectional",
            "peephole" if mc.cell == "peephole" else "cuDNN/nn",
            mc.hidden_size, f", projection {mc.proj_size}" if mc.proj_size else "",
            mc.frontend, mc.frame_stack, ", layer norm" if mc.layer_norm else "",
            len(self.tokenizer), self.device,
            f" x {self.dist.world_size} ranks" if self.dist.enabled else "",
            len(self.train_set), len(self.dev_set),
        )

    def fit(self, resume: bool = True) -> Path:
        """Train until ``epochs`` or early stopping; export and return the model directory."""
        try:
            return self._fit(resume)
        finally:  # exported, interrupted or failed: a follower (asr follow) can stop
            self._show_progress(0, 0.0, done=True)

    def _fit(self, resume: bool) -> Path:
        main = self.dist.is_main
        with self.stop.handlers():  # from the start: a signal during set-up stops after one update
            if main:
                self.exp_dir.mkdir(parents=True, exist_ok=True)
                save_config(self.config, self.exp_dir / "config.yaml")
                self.tokenizer.save(self.exp_dir / "tokens.txt")
            if not (resume and self.resume()):
                if self.tc.init_from:
                    self.init_weights(self.tc.init_from)
                elif self.config.features.cmvn == "global":
                    self._compute_cmvn()
            if self.config.features.cmvn == "speaker" and self.frontend is not None:
                self._compute_speaker_cmvn()
            self._describe()
            tb = None
            if main:
                from torch.utils.tensorboard import SummaryWriter

                tb = SummaryWriter(str(self.exp_dir / "tb"))
            try:
                while self.epoch < self.tc.epochs:
                    if self._should_stop():
                        log.info("early stopping: no dev improvement for %d epochs", self.tc.early_stop_patience)
                        break
                    self._run_epoch(tb)
                    if self._stop_requested():
                        self._interrupted(self.checkpoints.latest() if main else None)
            finally:
                if tb is not None:
                    tb.close()
            # Still inside the handlers: a signal now lets the export finish.
            return self.export() if main else self.exp_dir / "final"

    def _run_epoch(self, tb) -> None:
        started = time.perf_counter()
        train_loss, fps, skipped = self.train_epoch(tb)
        if self.dev_set:
            dev_loss, dev_wer, dev_cer = self.evaluate(self.dev_set)
            self.data.check_unreadable()
        else:
            dev_loss, dev_wer, dev_cer = train_loss, math.nan, math.nan
        self.epoch += 1
        self.step_in_epoch = 0
        self.totals = EpochTotals()
        lr = self.optimizer.param_groups[0]["lr"]
        if self.tc.lr_schedule == "plateau":
            self.scheduler.step(dev_loss)
        fps *= self.dist.world_size
        stats = EpochStats(self.epoch, train_loss, dev_loss, dev_wer, dev_cer, lr, time.perf_counter() - started, fps, skipped)
        self.history.append(stats.__dict__)
        if self.tc.select_best == "dev_wer" and self.dev_set:  # ties go to the lower loss
            improved = (dev_wer, dev_loss) < (self.best_dev_wer, self.best_dev_loss)
        else:
            improved = dev_loss < self.best_dev_loss
        if improved:
            self.best_dev_loss, self.best_dev_wer, self.best_epoch = dev_loss, dev_wer, self.epoch
            if self.dist.is_main:
                self.checkpoints.save_best(self.model.state_dict())
        self.save_checkpoint()
        if tb is not None:
            for key in ("train_loss", "dev_loss", "dev_wer", "dev_cer", "lr", "frames_per_s"):
                if not math.isnan(getattr(stats, key)):
                    tb.add_scalar(f"epoch/{key}", getattr(stats, key), self.epoch)
        er = self.tokenizer.error_rate_name
        dev = (f"dev loss {dev_loss:.4f}, dev {er} {dev_wer:.2f}%, dev CER {dev_cer:.2f}%"
               if self.dev_set else "no dev set")
        log.info(
            "epoch %d: train loss %.4f, %s, lr %.2e, %.0f frames/s, %.1f s%s, ETA %s to epoch %d",
            self.epoch, train_loss, dev, lr, fps, stats.seconds, " (best)" if improved else "",
            format_eta(self.history, self.tc.epochs), self.tc.epochs,
        )

    def export(self) -> Path:
        """Write ``exp/final`` (:func:`asr.train.export_model.export_final`)."""
        return export_final(self)
