"""CTM output: one line per word, ``utt channel start duration word confidence``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from asr.data.tables import c_sort_key
from asr.utils import atomic_write_text


def _field(word: object, name: str) -> object:
    return word[name] if isinstance(word, Mapping) else getattr(word, name)


def ctm_lines(utt_id: str, words: Iterable[object], channel: str = "1") -> list[str]:
    """CTM lines of one utterance; ``words`` have ``word``, ``start``, ``end`` (seconds) and
    ``confidence`` (as :class:`asr.transcript.Word` or its dict)."""
    out = []
    for w in words:
        start = float(_field(w, "start"))
        duration = max(0.0, float(_field(w, "end")) - start)
        out.append(f"{utt_id} {channel} {start:.3f} {duration:.3f} {_field(w, 'word')} "
                   f"{float(_field(w, 'confidence')):.4f}")
    return out


def write_ctm(path: str | Path, words: Mapping[str, Iterable[object]]) -> Path:
    """Write the CTM of every utterance, utterances in C-locale order, atomically."""
    lines: list[str] = []
    for utt_id in sorted(words, key=c_sort_key):
        lines.extend(ctm_lines(utt_id, words[utt_id]))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return Path(path)
