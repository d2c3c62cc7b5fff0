"""asr: deep bidirectional LSTM-CTC speech recognition.

Public API::

    import asr
    model = asr.load_model("digits")          # a name in the model store, or a directory
    result = model.transcribe("audio.wav")
    print(result.text)
"""

from __future__ import annotations

from asr.torch_pair import check_torch_pair

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "transcribe"]

check_torch_pair()  # a mismatched torch/torchaudio says so in one line, before it breaks later


def load_model(name_or_path: str | None = None, device: str = "auto", model_decoder: bool = True):
    """Load a trained model directory, with its own decoder unless ``model_decoder`` is false
    (see :func:`asr.inference.load_model`)."""
    from asr.inference import load_model as _load_model  # torch: `import asr` stays light

    return _load_model(name_or_path, device=device, model_decoder=model_decoder)


def transcribe(audio, model: str | None = None, device: str = "auto", sample_rate: int | None = None):
    """Transcribe a file path or a 1-D array with the given (or default) model."""
    return load_model(model, device=device).transcribe(audio, sample_rate=sample_rate)
