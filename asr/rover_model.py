"""A combination model: several complete systems (each a model with its own decoder) installed
and run as one model, their words combined by ROVER voting (:mod:`asr.rover`) or their n-best
lists by rescoring (:mod:`asr.rescore`, run by :mod:`asr.rescore_model`).

The directory is system 1's model directory (so every tool that reads one model still reads
it) plus::

    rover.yaml     combine: rover (or rescore); systems: [".", "system-2", "system-3", ...];
                   for rescore also lm_weight, word_score, nbest and lm (a file of the directory)
    system-2/      each further system: a complete model directory with its decoding.yaml,
    system-3/      lexicon and LM

The systems may differ in units (phones, characters), features and decoders: each transcribes
the audio with its own search, and :class:`RoverRecognizer` votes over their words, a tie going
to the system listed first. A combined word keeps the time and confidence the earliest system
that chose it gave it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import yaml

from asr.audio import resample
from asr.errors import AsrError, ModelError
from asr.modeldir import is_model_dir
from asr.rover import combine_positions
from asr.transcript import Result
from asr.utils import atomic_write_text

ROVER_FILE = "rover.yaml"
COMBINATIONS = ("rover", "rescore")
RESCORE_LM = "rescore_lm.arpa"


def is_rover(path: str | Path) -> bool:
    """Whether ``path`` is a combination model (ROVER or n-best rescoring)."""
    return (Path(path) / ROVER_FILE).is_file()


def read_spec(path: str | Path) -> dict:
    """The checked ``rover.yaml`` of the combination model at ``path``."""
    file = Path(path) / ROVER_FILE
    try:
        spec = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(f"{file}: unreadable ({exc})".replace("\n", " ")) from None
    if not isinstance(spec, dict) or spec.get("combine") not in COMBINATIONS:
        raise ModelError(f"{file}: expected 'combine: rover' or 'combine: rescore'; remake it "
                         "with `asr models rover` or `asr models rescore`")
    if spec["combine"] == "rescore":
        for key in ("lm_weight", "word_score", "nbest"):
            value = spec.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    key == "nbest" and (not isinstance(value, int) or value < 1)):
                raise ModelError(f"{file}: {key} must be a number{' of 1 or more' if key == 'nbest' else ''}, "
                                 f"not {value!r}; remake it with `asr models rescore`")
        lm = spec.get("lm")
        if lm is not None and (not isinstance(lm, str) or Path(lm).name != lm
                               or not (Path(path) / lm).is_file()):
            raise ModelError(f"{file}: its LM {lm!r} is not a file of {path}; remake it with "
                             "`asr models rescore`")
    return spec


def combination_kind(path: str | Path) -> str:
    """``rover`` or ``rescore``."""
    return read_spec(path)["combine"]


def rover_systems(path: str | Path) -> list[Path]:
    """The model directories of the systems of the combination model at ``path``, best first."""
    path = Path(path)
    file = path / ROVER_FILE
    spec = read_spec(path)
    systems = spec.get("systems")
    if not isinstance(systems, list) or len(systems) < 2 or systems[0] != ".":
        raise ModelError(f"{file}: expected 'systems:', a list of two or more directories "
                         "starting with '.'; remake it with `asr models rover`")
    dirs = []
    for index, name in enumerate(systems, 1):
        if not isinstance(name, str) or (name != "." and Path(name).name != name):
            raise ModelError(f"{file}: system {index}: {name!r} must be a subdirectory name")
        system = path / name
        if not is_model_dir(system):
            raise ModelError(f"{system}: system {index} of {file} is not a model directory "
                             "(needs model.pt, config.yaml, tokens.txt)")
        dirs.append(system)
    return dirs


def make_rover(output: str | Path, model_dirs: Sequence[str | Path], *, combine: str = "rover",
               options: Mapping[str, float | int] | None = None, lm: str | Path | None = None) -> Path:
    """Write the combination model of ``model_dirs`` (model directories, best first) to
    ``output``: the first one's files, each further one in ``system-N/``, then ``rover.yaml``.
    ``combine``: ``rover`` (three or more systems) or ``rescore`` (two or more; ``options``:
    lm_weight, word_score, nbest; ``lm``: an ARPA file, copied in as ``rescore_lm.arpa``)."""
    output = Path(output)
    sources = [Path(d) for d in model_dirs]
    if combine not in COMBINATIONS:
        raise ModelError(f"unknown combination {combine!r} (expected one of {', '.join(COMBINATIONS)})")
    if combine == "rover" and len(sources) < 3:
        raise ModelError("a ROVER model needs three or more systems (with two, the first "
                         "always wins the vote)")
    if len(sources) < 2:
        raise ModelError("n-best rescoring needs two or more systems")
    if lm is not None:
        from asr.lm import read_arpa  # the rescoring reads the LM itself: ARPA only

        read_arpa(lm)  # a missing or corrupt file: one line naming it
    for source in sources:
        if not is_model_dir(source):
            raise ModelError(f"{source}: not a model directory (needs model.pt, config.yaml, tokens.txt)")
        if is_rover(source):
            raise ModelError(f"{source}: is a combination model already; list its systems instead")
    if output.exists() and any(output.iterdir()):
        raise ModelError(f"{output}: exists and is not empty; choose a new directory")
    output.mkdir(parents=True, exist_ok=True)
    _copy_files(sources[0], output)
    names = ["."]
    for index, source in enumerate(sources[1:], 2):
        name = f"system-{index}"
        (output / name).mkdir()
        _copy_files(source, output / name)
        names.append(name)
    spec: dict = {"combine": combine, "systems": names, "from": [str(s) for s in sources]}
    if combine == "rescore":
        spec |= {k: v for k, v in (options or {}).items()}
        if lm is not None:
            shutil.copyfile(lm, output / RESCORE_LM)
            spec["lm"] = RESCORE_LM
    # Written last: a directory without it is an incomplete copy, not a wrong model.
    atomic_write_text(output / ROVER_FILE, yaml.safe_dump(spec, sort_keys=False))
    return output


def _copy_files(source: Path, target: Path) -> None:
    """The files of a model directory (an ensemble's member files among them)."""
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)


def combine_results(results: Sequence[Result]) -> Result:
    """One utterance's results of the systems (best first) combined by ROVER. Word times and
    confidences come from the system each word was taken from; if one of those has no word
    times, the combined result has none."""
    hyps = [r.text.split() for r in results]
    positions = combine_positions(hyps)
    text = " ".join(hyps[s][j] for s, j in positions)
    timed = all(len(results[s].words) == len(hyps[s]) for s, _ in positions)
    words = [results[s].words[j] for s, j in positions] if timed else []
    return Result(text, results[0].duration, words)


class RoverRecognizer:
    """The systems of a ROVER model, each a :class:`~asr.inference.Recognizer` with its own
    decoder, transcribing as one (the interface of a Recognizer that ``transcribe`` uses)."""

    def __init__(self, systems: Sequence, path: Path) -> None:
        self.systems = list(systems)
        self.path = path
        first = self.systems[0]
        self.loaded = first.loaded
        self.device = first.device
        self.tokenizer = first.tokenizer
        self.sample_rate = first.sample_rate
        self.decoding = first.decoding
        self.decoder = first.decoder

    def __repr__(self) -> str:
        return f"ROVER of {len(self.systems)} systems ({self.path})"

    def _own_search(self, decoder) -> None:
        if decoder is not None:
            raise AsrError(f"{self.path} is a ROVER model: each of its systems decodes with its "
                           "own search; drop the search options, or give one system "
                           f"(--model {self.path / 'system-2'}, ...)")

    @property
    def uses_speaker_cmvn(self) -> bool:
        return any(system.uses_speaker_cmvn for system in self.systems)

    def _at_rate(self, system, signals: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        """``signals`` (at system 1's sample rate) at ``system``'s."""
        if system.sample_rate == self.sample_rate:
            return signals
        return [resample(s, self.sample_rate, system.sample_rate) for s in signals]

    def adapt(self, signals: Sequence[np.ndarray] | None) -> None:
        """Each system's :meth:`~asr.inference.Recognizer.adapt` (signals at system 1's rate)."""
        for system in self.systems:
            system.adapt(None if signals is None else self._at_rate(system, signals))

    def adapt_files(self, paths: Sequence[str | Path]) -> None:
        for system in self.systems:
            system.adapt_files(paths)

    def transcribe_signals(self, signals: list[np.ndarray], decoder=None) -> list[Result]:
        """Float32 waveforms at system 1's sample rate (resampled for any system of another)."""
        self._own_search(decoder)
        outputs = []
        for system in self.systems:
            outputs.append(system.transcribe_signals(self._at_rate(system, signals)))
        return [combine_results(list(per_utt)) for per_utt in zip(*outputs, strict=True)]

    def transcribe(self, audio, sample_rate: int | None = None, *, decoder=None,
                   progress: Callable[[float], None] | None = None, **options) -> Result:
        self._own_search(decoder)
        results = [system.transcribe(audio, sample_rate, progress=progress if i == 0 else None, **options)
                   for i, system in enumerate(self.systems)]
        return combine_results(results)

    def transcribe_files(self, paths: Iterable[str | Path], *, decoder=None,
                         progress: Callable[[float], None] | None = None, **options,
                         ) -> Iterator[tuple[str, Result | AsrError]]:
        self._own_search(decoder)
        paths = [str(p) for p in paths]
        streams = [system.transcribe_files(paths, progress=progress if i == 0 else None, **options)
                   for i, system in enumerate(self.systems)]
        for items in zip(*streams, strict=True):
            path = items[0][0]
            failed = next((r for _, r in items if isinstance(r, AsrError)), None)
            yield path, failed if failed is not None else combine_results([r for _, r in items])
