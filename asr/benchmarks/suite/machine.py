"""Machine facts for a benchmark report: CPU, GPU, library versions, date and commit.

The torch side (versions, CUDA) is probed in a child process (``python -m
asr.benchmarks.suite.machine``), so that the report's own process never holds a CUDA context
while the steps run, and a torch that cannot even be imported is a fact, not a crash.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from asr.benchmarks import source_commit

PACKAGES = ("numpy", "librosa", "jiwer", "soundfile", "flashlight-text", "pyctcdecode")


def _run(command: list[str], timeout: float = 20.0) -> str:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def cpu_model() -> str:
    """The CPU's model name as lscpu prints it (else /proc/cpuinfo, else the platform's)."""
    for line in _run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def torch_facts() -> dict:
    """torch, torchaudio and CUDA as this interpreter sees them (imports torch)."""
    import torch

    facts: dict = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
                   "cudnn": None, "cuda_usable": False, "gpu": None}
    try:
        import torchaudio

        facts["torchaudio"] = torchaudio.__version__
    except ImportError as exc:
        facts["torchaudio"] = f"not importable ({exc})"
    if torch.version.cuda is None:
        facts["cuda_reason"] = "this torch is built without CUDA"
    elif not torch.cuda.is_available():
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES") == ""
        facts["cuda_reason"] = ("CUDA_VISIBLE_DEVICES is empty" if hidden else
                                "torch.cuda.is_available() is False")
    else:
        props = torch.cuda.get_device_properties(0)
        facts |= {"cuda_usable": True, "cudnn": torch.backends.cudnn.version(),
                  "gpu": props.name, "gpu_count": torch.cuda.device_count(),
                  "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                  "gpu_capability": f"{props.major}.{props.minor}"}
    return facts


def probe(timeout: float = 120.0) -> dict:
    """:func:`torch_facts` from a child interpreter; ``{"error": line}`` when it fails."""
    try:
        proc = subprocess.run([sys.executable, "-m", "asr.benchmarks.suite.machine"],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"probing torch took over {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return {"error": err[-1] if err else f"exit code {proc.returncode}"}
    return json.loads(lines[-1])


def _torch_from_metadata() -> dict:
    """torch's facts without importing it: versions from the installed distributions."""
    torch = _version("torch")
    cuda = torch.split("+cu", 1)[1] if torch and "+cu" in torch else None
    return {"torch": torch, "torchaudio": _version("torchaudio"),
            "torch_cuda": f"{cuda[:-1]}.{cuda[-1]}" if cuda else None, "cuda_usable": False,
            "cuda_reason": "not probed (--device cpu)"}


def machine_facts(probe_cuda: bool = True) -> dict:
    """Everything the report's header lists; torch's part from :func:`probe`, or without
    ``probe_cuda`` from the installed versions alone (a CPU-only run need not start torch)."""
    facts: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": source_commit(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
    }
    smi = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    facts["nvidia_driver"] = smi.splitlines()[0] if smi else None
    torch_side = probe() if probe_cuda else _torch_from_metadata()
    if "error" in torch_side:
        facts |= {"torch": None, "cuda_usable": False,
                  "cuda_reason": f"torch is not importable: {torch_side['error']}"}
    else:
        facts |= torch_side
    return facts


if __name__ == "__main__":
    print(json.dumps(torch_facts()))
