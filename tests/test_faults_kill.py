"""``asr train`` killed with SIGKILL at random points (inside a checkpoint write, between
updates) and stopped with SIGTERM, then resumed by running the same command again: it
completes, never reads a half-written checkpoint, and ends with the same weights, bit for bit,
as a run that was never interrupted (CPU, one thread)."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
import torch
from faults_utils import make_data_dir, spawn, train_args

from asr.train.checkpoint import SLOW_WRITE_ENV, load_file

# Every update is checkpointed, so that kills land mid-epoch and resumes start mid-epoch.
EXTRA = ("train.checkpoint_every_steps=1", "train.keep_last=2")
# The audio read and speed-perturbed per batch by two DataLoader worker processes.
WORKERS = ("train.features_on_the_fly=true", "train.num_workers=2", "augment.speed_perturb=true")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("kill")
    return make_data_dir(root / "train", 16), make_data_dir(root / "dev", 4, prefix="spk2")


def _args(corpus: tuple[Path, Path], exp: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return train_args(corpus[0], exp, corpus[1], *EXTRA, *extra)


def _wait(proc, seconds: float = 120) -> int:
    try:
        return proc.wait(timeout=seconds)
    except Exception:
        proc.kill()
        raise


def _temp_files(exp: Path) -> list[Path]:
    return list((exp / "checkpoints").glob(".*.tmp")) if (exp / "checkpoints").is_dir() else []


def _resumes(exp: Path) -> int:
    log = exp / "train.log"
    return log.read_text(errors="replace").count("resumed from") if log.exists() else 0


def _kill_in_checkpoint_write(corpus, exp: Path, nth: int, log: Path, extra=()) -> dict:
    """Start (or resume) a run whose checkpoint writes pause 0.3 s with the temporary file
    present; SIGKILL it inside its ``nth`` write."""
    proc = spawn(_args(corpus, exp, extra), {SLOW_WRITE_ENV: "0.3"}, log)
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        names = {p.name for p in _temp_files(exp)}
        if names - seen:
            seen |= names
            if len(seen) >= nth:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.01)
    code = _wait(proc)
    return {"point": "in checkpoint write", "code": code, "temp": sorted(seen)[-1:] if seen else []}


def _signal_after_resume(corpus, exp: Path, sig: int, delay: float, log: Path, extra=()) -> dict:
    """Resume the run; ``delay`` seconds after it has loaded its checkpoint, send ``sig``. The
    checkpoint writes are slowed a little so that the run lasts long enough to be hit."""
    resumed = _resumes(exp)
    proc = spawn(_args(corpus, exp, extra), {SLOW_WRITE_ENV: "0.05"}, log)
    deadline = time.monotonic() + 120
    while proc.poll() is None and _resumes(exp) == resumed and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    in_write = bool(_temp_files(exp))
    if proc.poll() is None:
        proc.send_signal(sig)
    code = _wait(proc)
    point = "in checkpoint write" if in_write else "between updates"
    return {"point": point, "code": code, "signal": signal.Signals(sig).name}


def _final_state(exp: Path) -> tuple[dict, list]:
    weights = torch.load(exp / "final" / "model.pt", map_location="cpu", weights_only=True)
    history = load_file(exp / "checkpoints" / "epoch-3.pt")["history"]
    return weights, [(h["epoch"], h["train_loss"], h["dev_loss"], h["dev_wer"]) for h in history]


def _check_all_checkpoints_load(exp: Path) -> None:
    for path in (exp / "checkpoints").glob("*.pt"):
        assert isinstance(load_file(path), dict), path  # never a partial file under a real name


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> tuple[dict, list]:
    exp = tmp_path_factory.mktemp("reference") / "exp"
    assert _wait(spawn(_args(corpus, exp), log=exp.parent / "out.log")) == 0
    return _final_state(exp)


@pytest.fixture(scope="module")
def reference_workers(corpus, tmp_path_factory) -> tuple[dict, list]:
    exp = tmp_path_factory.mktemp("reference_workers") / "exp"
    assert _wait(spawn(_args(corpus, exp, WORKERS), log=exp.parent / "out.log")) == 0
    return _final_state(exp)


def _run_chain(corpus, reference, tmp_path: Path, seed: int, kills: int, extra=()) -> list[dict]:
    rng = random.Random(seed)
    exp = tmp_path / "exp"
    log = tmp_path / "out.log"
    events = [_kill_in_checkpoint_write(corpus, exp, rng.randint(2, 8), log, extra)]
    assert events[0]["code"] == -signal.SIGKILL and events[0]["temp"], events
    _check_all_checkpoints_load(exp)
    for _ in range(kills - 1):
        events.append(_signal_after_resume(corpus, exp, signal.SIGKILL, rng.uniform(0.0, 0.6), log, extra))
        assert events[-1]["code"] in (-signal.SIGKILL, 0), events
        _check_all_checkpoints_load(exp)
    stop = signal.SIGTERM if seed % 2 else signal.SIGINT  # a scheduler's pre-emption, or Ctrl-C
    events.append(_signal_after_resume(corpus, exp, stop, rng.uniform(0.0, 0.3), log, extra))
    if events[-1]["code"] == 130:  # a checkpoint was saved and the run stopped cleanly
        assert f"{stop.name}: stopped at" in (exp / "train.log").read_text()
    elif events[-1]["code"] == -stop:  # the signal came as the process exited, after training
        assert (exp / "final" / "model.pt").is_file(), events
    else:
        assert events[-1]["code"] == 0, events
    final = spawn(_args(corpus, exp, extra), log=log)
    assert _wait(final) == 0, (log.read_text()[-3000:], events)
    assert not _temp_files(exp)  # what the killed writes left was removed on resume
    weights, history = _final_state(exp)
    ref_weights, ref_history = reference
    assert history == ref_history
    assert weights.keys() == ref_weights.keys()
    for key, value in weights.items():
        assert torch.equal(value, ref_weights[key]), key  # bit for bit
    return events


def test_sigkill_and_sigterm_then_resume_match_an_uninterrupted_run(corpus, reference, tmp_path):
    events = _run_chain(corpus, reference, tmp_path, seed=1, kills=2)
    assert sum(e["code"] == -signal.SIGKILL for e in events) >= 1


def test_sigkill_with_loader_workers_then_resume_matches_an_uninterrupted_run(corpus, reference_workers, tmp_path):
    """The same with the audio read and perturbed in DataLoader workers: a resumed run's
    batches are the uninterrupted run's (perturbations seeded per batch, not per worker)."""
    events = _run_chain(corpus, reference_workers, tmp_path, seed=3, kills=2, extra=WORKERS)
    assert sum(e["code"] == -signal.SIGKILL for e in events) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 7))
def test_many_random_kills_then_resume(corpus, reference, tmp_path, seed):
    _run_chain(corpus, reference, tmp_path, seed=seed, kills=5)
