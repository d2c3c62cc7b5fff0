"""Training data loader: peak memory and updates/s, audio read from disk by workers vs in RAM.

Fabricates corpora of ``--sizes`` utterances (default 1,000 and 10,000; 1-4 s each of tones
and low noise, random letter transcripts, 16 kHz mono FLAC in a Kaldi data dir with
``utt2dur``; cached in ``--work-dir``, the smaller corpora reusing the larger's files) and runs
``--updates`` training updates on each, every run in a fresh subprocess so that its peak memory
is its own: the lazy path (metadata from ``utt2dur``, audio read per batch by ``--workers``
DataLoader processes: ``train.features_on_the_fly: true``) and the in-RAM path
(``train.preload: true``, no workers: every waveform decoded at start-up). Both train the same
model (2 x 128 biLSTM on 80 Kaldi fbanks computed on the fly, speed perturbation on) on the same
batches (same seed and ``--max-frames``), through ``Trainer.train_epoch`` (a new epoch starts
when one ends, as in a real run).

The parent samples the memory of the run every 0.1 s: the PSS (``/proc/PID/smaps_rollup``) of
the run's process plus all its descendants (the workers), so that pages the workers share with
it count once; RSS from ``/proc/PID/status`` where ``smaps_rollup`` is missing (said in the
table). The table gives the peak, the seconds the loop waited for batches
(``TrainingData.wait_s``), updates/s of the update loop, the start-up seconds (data loading,
model set-up) and the CPU seconds of the update loop in the main process and in the workers,
then the two targets: the largest corpus's lazy peak within 100 MB of the
smallest's, and the lazy path's updates/s at least 0.9x the in-RAM path's at each size.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SAMPLE_RATE = 16000
CHARSET = "abcdefghij"  # transcripts: words of these letters
FORMAT_VERSION = 1  # of the cached audio; bump when the fabrication changes
MEMORY_TARGET_MB = 100.0
SPEED_TARGET = 0.9
DEFAULT_WORK_DIR = Path(tempfile.gettempdir()) / "asr-benchmark-loader"
# The model and front end of every run (then --set overrides).
DEFAULT_SETTINGS = [
    "features.type=fbank",
    "features.n_mels=80",
    "model.num_layers=2",
    "model.hidden_size=128",
    "model.dropout=0.0",
    "train.optimizer=adam",
    "train.max_utts_per_batch=64",
    "train.features_on_the_fly=true",
    "augment.speed_perturb=true",
    "train.early_stop_patience=0",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="1000,10000",
                        help="comma-separated corpus sizes in utterances (default 1000,10000)")
    parser.add_argument("--updates", type=int, default=100,
                        help="training updates per run (default 100)")
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader workers of the lazy path (default 2)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads of each run (0: torch's default)")
    parser.add_argument("--max-frames", type=int, default=8000,
                        help="train.max_frames_per_batch of every run (default 8000)")
    parser.add_argument("--cmvn", default="utterance", choices=("utterance", "global"),
                        help="features.cmvn; global estimates the statistics at start-up "
                        "(train.cmvn_max_utts utterances) before the timed updates (default "
                        "utterance)")
    parser.add_argument("--paths", default="lazy,in-RAM",
                        help="comma-separated rows per size: lazy, in-RAM (default both)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override one config value of every run")
    parser.add_argument("--seed", type=int, default=0, help="corpus and training seed")
    parser.add_argument("--work-dir", default=str(DEFAULT_WORK_DIR),
                        help=f"where the corpora are cached and the runs write (default "
                        f"{DEFAULT_WORK_DIR})")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda[:N] or auto")


# -- corpus ------------------------------------------------------------------------------------


def _utterance(seed: int, index: int) -> tuple[str, str, int, str]:
    """(utt_id, speaker, samples, transcript) of utterance ``index``, from ``(seed, index)``."""
    import numpy as np

    rng = np.random.default_rng((seed, index))
    seconds = float(rng.uniform(1.0, 4.0))
    samples = int(round(seconds * SAMPLE_RATE))
    letters = max(1, int(round(3.0 * seconds)))  # ~3 letters a second: CTC has 100 frames
    words: list[str] = []
    while sum(len(w) for w in words) < letters:
        words.append("".join(rng.choice(list(CHARSET), size=int(rng.integers(2, 6)))))
    speaker = f"spk{index % 20:02d}"
    return f"{speaker}-utt{index:06d}", speaker, samples, " ".join(words)


def _audio(seed: int, index: int, samples: int):
    """Float32 samples: a few tones that change every 0.25 s, plus low noise."""
    import numpy as np

    rng = np.random.default_rng((seed, index, 1))
    t = np.arange(samples) / SAMPLE_RATE
    wave = np.zeros(samples)
    step = SAMPLE_RATE // 4
    for start in range(0, samples, step):
        piece = slice(start, start + step)
        for freq in rng.uniform(150.0, 3000.0, size=3):
            wave[piece] += 0.1 * np.sin(2 * np.pi * freq * t[piece])
    wave += 0.01 * rng.standard_normal(samples)
    return wave.astype(np.float32)


def _write_audio(job: tuple[int, int, str]) -> None:
    import soundfile as sf

    seed, index, folder = job
    _, _, samples, _ = _utterance(seed, index)
    path = Path(folder) / f"{index:06d}.flac"
    partial = path.with_suffix(".part")
    sf.write(partial, _audio(seed, index, samples), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(partial, path)


def _ensure_audio(work_dir: Path, seed: int, count: int) -> Path:
    """``work_dir/audio-seedS/`` holding at least ``count`` files (made when missing)."""
    import multiprocessing

    folder = work_dir / f"audio-seed{seed}"
    manifest = folder / "manifest.json"
    expected = {"version": FORMAT_VERSION, "seed": seed, "sample_rate": SAMPLE_RATE}
    have = 0
    if manifest.is_file():
        stored = json.loads(manifest.read_text())
        if {k: stored.get(k) for k in expected} == expected:
            have = int(stored.get("count", 0))
        else:
            shutil.rmtree(folder)
    if have >= count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    jobs = [(seed, i, str(folder)) for i in range(have, count)]
    processes = max(1, min(len(os.sched_getaffinity(0)), 8))
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        for _ in pool.imap_unordered(_write_audio, jobs, chunksize=64):
            pass
    manifest.write_text(json.dumps({**expected, "count": count}) + "\n")
    print(f"wrote {len(jobs)} FLAC files to {folder} in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    return folder


def make_corpus(work_dir: Path, seed: int, count: int, audio: Path) -> tuple[Path, float]:
    """The data dir of the first ``count`` utterances (wav.scp, text, utt2spk, spk2utt,
    utt2dur) and its hours of audio."""
    from asr.data import Utterance, write_data_dir
    from asr.data.tables import format_float, write_kaldi_map

    path = work_dir / f"data-seed{seed}-{count}"
    utts = []
    durations = {}
    for index in range(count):
        utt_id, speaker, samples, text = _utterance(seed, index)
        utts.append(Utterance(utt_id, str(audio / f"{index:06d}.flac"), text, speaker))
        durations[utt_id] = samples / SAMPLE_RATE
    hours = sum(durations.values()) / 3600
    stamp = path / "manifest.json"
    wanted = {"version": FORMAT_VERSION, "seed": seed, "count": count, "audio": str(audio)}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return path, hours
    write_data_dir(path, utts)
    write_kaldi_map(path / "utt2dur", {u: format_float(round(s, 6)) for u, s in durations.items()})
    stamp.write_text(json.dumps(wanted) + "\n")
    return path, hours


# -- one run, in its own process ------------------------------------------------------------------


@dataclass
class RunSpec:
    data: str
    path: str  # "lazy" or "in-RAM"
    workers: int
    threads: int
    updates: int
    device: str
    overrides: list[str]
    exp_dir: str
    result: str


def _data_wait_s(trainer) -> float:
    """Seconds the trainer's loop waited for batches (its data pipeline's ``wait_s``)."""
    return float(trainer.data.wait_s)


def _epoch_batches(trainer) -> int:
    """This rank's batches in the trainer's current epoch."""
    data = getattr(trainer, "data", None)
    if data is not None and hasattr(data, "local_batches"):
        return int(data.local_batches(trainer.epoch))
    return len(trainer.sampler.batches(trainer.epoch))


def _child(spec: RunSpec) -> int:
    started = time.perf_counter()
    import resource

    import torch

    from asr.config import load_config
    from asr.data import read_data_dir
    from asr.text import Tokenizer
    from asr.train import Trainer
    from asr.train.data import load_waveforms
    from asr.train.lazy import load_lazy

    lazy = spec.path == "lazy"
    overrides = [*spec.overrides, f"train.device={spec.device}",
                 f"train.num_threads={spec.threads}",
                 f"train.preload={'false' if lazy else 'true'}",
                 f"train.num_workers={spec.workers if lazy else 0}"]
    config = load_config(None, overrides)
    if spec.threads > 0:
        torch.set_num_threads(spec.threads)
    data = read_data_dir(spec.data)
    tokenizer = Tokenizer.build([u.text for u in data.utterances], "char")
    load = load_lazy if lazy else load_waveforms
    examples, report = load(data, config.features, tokenizer, config.model.frame_stack)
    trainer = Trainer(config, spec.exp_dir, tokenizer, examples, [], progress=False)
    if config.features.cmvn == "global":
        trainer._compute_cmvn()
    startup = time.perf_counter() - started
    attempted = 0
    epochs = 0
    cpu_start = time.process_time()
    children_start = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_start = resource.getrusage(resource.RUSAGE_SELF)
    loop_start = time.perf_counter()
    while attempted < spec.updates:
        before = trainer.step_in_epoch
        trainer.train_epoch(limit=spec.updates - attempted)
        done = trainer.step_in_epoch - before
        if done <= 0:
            break  # no batches to train on
        attempted += done
        if trainer.step_in_epoch >= _epoch_batches(trainer):
            trainer.epoch += 1  # the next epoch, as Trainer.fit goes on
            trainer.step_in_epoch = 0
            epochs += 1
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    seconds = time.perf_counter() - loop_start
    cpu = time.process_time() - cpu_start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, once joined
    own = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "updates": trainer.global_step,
        "attempted": attempted,
        "skipped": trainer.totals.skipped,
        "epochs_started": epochs + (1 if trainer.step_in_epoch else 0),
        "loop_s": seconds,
        "data_wait_s": _data_wait_s(trainer),
        "loop_cpu_s": cpu,
        "loop_user_s": own.ru_utime - self_start.ru_utime,
        "loop_sys_s": own.ru_stime - self_start.ru_stime,
        "loop_minor_faults": own.ru_minflt - self_start.ru_minflt,
        "workers_cpu_s": (children.ru_utime + children.ru_stime)
        - (children_start.ru_utime + children_start.ru_stime),
        "startup_s": startup,
        "utterances": len(examples),
        "skipped_at_load": report.total,
        "main_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "device": str(trainer.device),
    }
    Path(spec.result).write_text(json.dumps(result) + "\n")
    return 0


# -- memory of a process tree ----------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    tree = _children_map()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(tree.get(current, []))
    return out


def smaps_available() -> bool:
    return Path(f"/proc/{os.getpid()}/smaps_rollup").is_file()


def process_kb(pid: int, use_pss: bool) -> int:
    """Pss (from smaps_rollup) or VmRSS (from status) of one process in kB; 0 when it is gone."""
    path, key = (f"/proc/{pid}/smaps_rollup", b"Pss:") if use_pss else (f"/proc/{pid}/status", b"VmRSS:")
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


class MemorySampler(threading.Thread):
    """Samples the memory of a process tree every ``interval`` seconds; keeps the peaks."""

    def __init__(self, pid: int, use_pss: bool, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.use_pss, self.interval = pid, use_pss, interval
        self.peak_kb = 0
        self.peak_main_kb = 0
        self.peak_processes = 0
        self.samples = 0
        self._done = threading.Event()

    def sample(self) -> None:
        pids = descendants(self.pid)
        sizes = [process_kb(p, self.use_pss) for p in pids]
        self.peak_kb = max(self.peak_kb, sum(sizes))
        self.peak_main_kb = max(self.peak_main_kb, sizes[0])
        self.peak_processes = max(self.peak_processes, sum(1 for s in sizes if s))
        self.samples += 1

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


# -- the table -------------------------------------------------------------------------------------


@dataclass
class Row:
    path: str
    utterances: int
    hours: float
    workers: int
    peak_mb: float
    peak_main_mb: float
    processes: int
    data_wait_s: float
    updates_per_s: float
    updates: int
    startup_s: float
    loop_s: float
    main_cpu_s: float
    workers_cpu_s: float


def _measure(spec: RunSpec, use_pss: bool) -> tuple[dict, MemorySampler]:
    command = [sys.executable, "-m", "asr.benchmarks.loader", "--child", json.dumps(asdict(spec))]
    # The same interpreter and working directory: the child imports the same asr package.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    sampler = MemorySampler(proc.pid, use_pss)
    sampler.start()
    output, _ = proc.communicate()
    sampler.stop()
    if proc.returncode != 0 or not Path(spec.result).is_file():
        from asr.errors import AsrError

        tail = "\n".join(output.strip().splitlines()[-15:])
        raise AsrError(f"the {spec.path} run on {spec.data} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(Path(spec.result).read_text()), sampler


def _table(rows: list[Row], memory_name: str) -> list[str]:
    lines = [f"| path | utterances | hours | workers | peak {memory_name} (MB) | main process "
             f"{memory_name} (MB) | data wait (s) | updates/s | updates | start-up (s) | main CPU (s) | "
             "workers CPU (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.path} | {r.utterances:,} | {r.hours:.2f} | {r.workers} | "
                     f"{r.peak_mb:,.0f} | {r.peak_main_mb:,.0f} | {r.data_wait_s:.2f} | "
                     f"{r.updates_per_s:.2f} | {r.updates} | {r.startup_s:.1f} | {r.main_cpu_s:.1f} | "
                     f"{r.workers_cpu_s:.1f} |")
    return lines


def _verdicts(rows: list[Row], sizes: list[int]) -> list[str]:
    def find(path: str, size: int) -> Row | None:
        return next((r for r in rows if r.path == path and r.utterances == size), None)

    def short(n: int) -> str:
        return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)

    lines = []
    small, large = min(sizes), max(sizes)
    if small != large:
        for path in ("lazy", "in-RAM"):
            a, b = find(path, small), find(path, large)
            if a and b:
                growth = b.peak_mb - a.peak_mb
                target = ""
                if path == "lazy":
                    ok = "met" if growth <= MEMORY_TARGET_MB else "MISSED"
                    target = f" (target ≤ {MEMORY_TARGET_MB:.0f} MB: {ok})"
                lines.append(f"{short(large)} − {short(small)} peak memory ({path}): "
                             f"{growth:+,.0f} MB{target}")
    for size in sizes:
        a, b = find("lazy", size), find("in-RAM", size)
        if a and b and b.updates_per_s > 0:
            ratio = a.updates_per_s / b.updates_per_s
            ok = "met" if ratio >= SPEED_TARGET else "MISSED"
            lines.append(f"lazy/in-RAM updates/s at {short(size)}: {ratio:.2f}× "
                         f"(target ≥ {SPEED_TARGET}×: {ok})")
    return lines


def run(args: argparse.Namespace) -> int:
    from asr.benchmarks import source_commit
    from asr.benchmarks.suite.machine import cpu_model
    from asr.config import load_config
    from asr.errors import AsrError

    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        raise AsrError(f"--sizes: {args.sizes!r} is not a comma-separated list of counts") from None
    if not sizes or min(sizes) < 1:
        raise AsrError(f"--sizes: {args.sizes!r}: give one or more positive counts")
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    for p in paths:
        if p not in ("lazy", "in-RAM"):
            raise AsrError(f"--paths: unknown row {p!r}; use lazy, in-RAM")
    if args.updates < 1 or args.workers < 0:
        raise AsrError("--updates must be 1 or more and --workers 0 or more")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise AsrError(f"--device {args.device}: CUDA is not usable here")
    overrides = [*DEFAULT_SETTINGS, f"train.max_frames_per_batch={args.max_frames}",
                 f"features.cmvn={args.cmvn}", f"train.seed={args.seed}", *args.overrides]
    config = load_config(None, overrides)  # a bad --set stops here, with one line
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    audio = _ensure_audio(work_dir, args.seed, max(sizes))
    corpora = {n: make_corpus(work_dir, args.seed, n, audio) for n in sizes}
    use_pss = smaps_available()
    memory_name = "PSS" if use_pss else "RSS"
    rows: list[Row] = []
    details = []
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="runs-") as tmp:
        for size in sizes:
            data, hours = corpora[size]
            for path in paths:
                label = f"{path}-{size}"
                workers = args.workers if path == "lazy" else 0
                spec = RunSpec(str(data), path, workers, args.threads, args.updates, args.device,
                               overrides, str(Path(tmp) / label), str(Path(tmp) / f"{label}.json"))
                print(f"running {path} on {size:,} utterances ...", file=sys.stderr, flush=True)
                result, sampler = _measure(spec, use_pss)
                details.append({"path": path, "size": size, **result,
                                "peak_kb": sampler.peak_kb, "samples": sampler.samples})
                rows.append(Row(path, size, hours, workers, sampler.peak_kb / 1024,
                                sampler.peak_main_kb / 1024, sampler.peak_processes,
                                result["data_wait_s"], result["updates"] / result["loop_s"],
                                result["updates"], result["startup_s"], result["loop_s"],
                                result["loop_cpu_s"], result["workers_cpu_s"]))
    (work_dir / "last_results.json").write_text(json.dumps(details, indent=2) + "\n")
    mc = config.model
    device = details[0]["device"] if details else args.device
    threads = details[0]["torch_threads"] if details else args.threads
    where = ("/proc/PID/smaps_rollup Pss" if use_pss else
             "/proc/PID/status VmRSS (no smaps_rollup on this kernel: RSS counts shared pages "
             "once per process)")
    lines = [
        f"# Loader benchmark, {datetime.date.today().isoformat()}, commit {source_commit()}",
        f"CPU: {cpu_model()} ({os.cpu_count()} cores); device {device}, {threads} torch "
        f"threads; Python {platform.python_version()}",
        f"{args.updates} updates per run: {mc.num_layers} x {mc.hidden_size} "
        f"{'bi' if mc.bidirectional else 'uni'}LSTM, {config.features.n_mels} {config.features.type} "
        f"on the fly, speed perturbation {'on' if config.augment.speed_perturb else 'off'}, "
        f"{config.train.max_frames_per_batch} frames per batch, CMVN {config.features.cmvn}, "
        f"seed {args.seed}; lazy: audio read from FLAC by {args.workers} DataLoader worker(s); "
        "in-RAM: train.preload (all audio decoded at start-up, one background thread)",
        f"memory: peak over samples every 0.1 s of the sum over the run's process and its "
        f"workers of {where}; main process: its own peak; CPU: seconds of the update loop "
        "(user + system) of the main process and of its workers",
        "",
        *_table(rows, memory_name),
        "",
        *_verdicts(rows, sizes),
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        from asr.utils import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--child":
        return _child(RunSpec(**json.loads(argv[1])))
    print("usage: asr benchmark loader ... (--child SPEC is for its own runs)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
