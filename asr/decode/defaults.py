"""A model directory's own decoder: ``decoding.yaml`` beside ``model.pt``, and the lexicon and LM
it names, copied into the directory.

    decoder: lexicon          # a name of asr.decode.DECODERS
    beam_size: 64
    lexicon: lexicon.txt      # file names inside the model directory
    lm: lm.arpa               # ARPA, or a KenLM binary for the lexicon decoder
    lm_unit: word
    lm_weight: 0.75
    word_score: 5.0
    tuned_on: data/dev        # provenance, shown by `asr models list`
    tuned_wer: 5.89

``transcribe``, ``asr decode`` and ``asr.load_model`` use it unless their options say otherwise;
without the file a model decodes greedily. :func:`attach_decoding` writes it (``asr models
set-decoder``), checking that the decoder builds for the model's tokens, so a lexicon that does
not cover the model's units is refused there and again whenever the model is loaded.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from asr.decode.base import DecoderError
from asr.decode.registry import DECODERS, build_decoder
from asr.utils import atomic_write_text

DECODING_FILE = "decoding.yaml"


@dataclass
class DecodingDefaults:
    """How a model decodes when nothing else is asked. ``lexicon`` and ``lm`` are file names
    relative to the model directory."""

    decoder: str = "greedy"
    beam_size: int = 16
    lexicon: str | None = None
    lm: str | None = None
    lm_unit: str = "word"
    lm_weight: float = 0.5
    word_score: float = 0.0
    tuned_on: str | None = None
    tuned_wer: float | None = None

    def files(self, model_dir: Path) -> dict[str, Path]:
        """The lexicon and LM as paths, by option name."""
        return {name: model_dir / value for name in ("lexicon", "lm")
                if (value := getattr(self, name)) is not None}

    def describe(self) -> str:
        """One line for ``asr models list``: ``lexicon + lm.arpa, beam 64, LM weight 0.75, ...``."""
        if self.decoder == "greedy":
            return "greedy"
        parts = [self.decoder + (f" + {self.lm}" if self.lm else "")]
        parts.append(f"beam {self.beam_size}")
        if self.lm or self.word_score:
            parts.append(f"LM weight {self.lm_weight:g}, word score {self.word_score:g}")
        if self.tuned_on:
            wer = f" ({self.tuned_wer:.2f} % WER)" if self.tuned_wer is not None else ""
            parts.append(f"tuned on {self.tuned_on}{wer}")
        return ", ".join(parts)


FIELDS = {f.name: f for f in dataclasses.fields(DecodingDefaults)}


def _checked(path: Path, data: object) -> DecodingDefaults:
    if not isinstance(data, dict):
        raise DecoderError(f"{path}: expected a mapping of decoding options")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise DecoderError(f"{path}: unknown option {unknown[0]!r} (known: {', '.join(FIELDS)})")
    values = DecodingDefaults(**data)
    if values.decoder not in DECODERS:
        raise DecoderError(f"{path}: decoder {values.decoder!r} is not one of {', '.join(DECODERS)}")
    for name, kind in (("beam_size", int), ("lm_weight", float), ("word_score", float)):
        value = getattr(values, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise DecoderError(f"{path}: {name} must be a number, not {value!r}")
    if values.beam_size < 1:
        raise DecoderError(f"{path}: beam_size must be at least 1")
    return values


def read_decoding(model_dir: str | Path) -> DecodingDefaults | None:
    """The decoding defaults of ``model_dir``, or None when it has no ``decoding.yaml``. A file
    it names that is missing is an error naming that file."""
    model_dir = Path(model_dir)
    path = model_dir / DECODING_FILE
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise DecoderError(f"{path}: unreadable ({exc})".replace("\n", " ")) from None
    values = _checked(path, data)
    for name, file in values.files(model_dir).items():
        if not file.is_file():
            raise DecoderError(f"{file}: the {name} named by {path} is missing; reinstall the "
                               "model or remove decoding.yaml to decode greedily")
    return values


def choose_search(model_dir: str | Path, values: DecodingDefaults | None, *,
                  decoder: str | None = None, lm: str | Path | None = None,
                  lexicon: str | Path | None = None, **overrides) -> DecodingDefaults:
    """The search that a command runs: the model's ``values`` where its options are silent.

    ``--decoder`` naming another search than the model's starts from the plain defaults
    (greedy, beam 16, LM weight 0.5, word score 0) without the model's files, so that options
    give exactly what they ask; ``--lm`` / ``--lexicon`` replace the model's files; the other
    ``overrides`` (beam_size, lm_weight, word_score, lm_unit; None: not given) replace its values.
    The returned lexicon and LM are absolute paths."""
    model_dir = Path(model_dir)
    base = values if values is not None else DecodingDefaults()
    if decoder is not None and decoder != base.decoder:
        base = DecodingDefaults(decoder=decoder)
    files = {name: str(path.resolve()) for name, path in base.files(model_dir).items()}
    files |= {name: str(value) for name, value in (("lm", lm), ("lexicon", lexicon))
              if value is not None}
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown search option {unknown[0]!r}")
    return dataclasses.replace(base, lm=files.get("lm"), lexicon=files.get("lexicon"), **given)


def build_default_decoder(model_dir: str | Path, values: DecodingDefaults, tokenizer, **options):
    """The decoder that ``values`` describe for a model with ``tokenizer`` (None for greedy
    search); ``options`` go to :func:`asr.decode.build_decoder` (nbest, beam_threshold, ...). A
    corrupt lexicon or LM is an error naming its file."""
    if values.decoder == "greedy":
        return None
    files = values.files(Path(model_dir))
    return build_decoder(values.decoder, tokenizer, beam_size=values.beam_size, lm=files.get("lm"),
                         lm_unit=values.lm_unit, lexicon=files.get("lexicon"),
                         lm_weight=values.lm_weight, word_score=values.word_score, **options)


def attach_decoding(model_dir: str | Path, values: DecodingDefaults, lexicon: str | Path | None,
                    lm: str | Path | None, tokenizer) -> DecodingDefaults:
    """Check that the decoder of ``values`` with ``lexicon`` and ``lm`` builds for
    ``tokenizer``, then copy the files into ``model_dir`` (as ``lexicon.txt`` and
    ``lm.<suffix>``) and write ``decoding.yaml``. A refused decoder leaves the directory as it
    was. Returns the values as written (file names relative to the model directory)."""
    model_dir = Path(model_dir)
    values = _checked(model_dir / DECODING_FILE,
                      dataclasses.asdict(dataclasses.replace(values, lexicon=None, lm=None)))
    sources: dict[str, Path] = {}
    for name, source in (("lexicon", lexicon), ("lm", lm)):
        if source is not None:
            sources[name] = Path(source).resolve()
            if not sources[name].is_file():
                raise DecoderError(f"{source}: {name} not found")
    checked = dataclasses.replace(values, **{k: str(v) for k, v in sources.items()})
    build_default_decoder(model_dir, checked, tokenizer)  # refuses what does not fit the model
    targets = {"lexicon": "lexicon.txt", "lm": "lm" + (sources["lm"].suffix if "lm" in sources
                                                       and sources["lm"].suffix else ".arpa")}
    for name, source in sources.items():
        target = model_dir / targets[name]
        if source != target.resolve():
            shutil.copyfile(source, model_dir / f".{targets[name]}.tmp")
            (model_dir / f".{targets[name]}.tmp").replace(target)
    values = dataclasses.replace(values, **{name: targets[name] for name in sources})
    text = yaml.safe_dump({k: v for k, v in dataclasses.asdict(values).items() if v is not None},
                          sort_keys=False)
    atomic_write_text(model_dir / DECODING_FILE, text)
    return values
