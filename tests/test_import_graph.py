"""The package's module graph has no import cycles, and the light commands stay light.

The graph is read from the source with ``ast``: an edge for every ``asr.*`` import that runs
when a module is imported (absolute or relative; ``from asr.x import y`` with ``y`` a module
is an edge to ``asr.x.y``). Imports inside functions are left out: they run later, and are
kept for the heavy libraries a command may not need. So are ``if TYPE_CHECKING:`` blocks,
which never run. A parent package is not an edge of its submodules: Python initialises it
first whatever the graph says.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "asr"

Graph = dict[str, set[str]]


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of ``package`` (packages by their ``__init__``)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_nodes(node: ast.AST):
    """The import statements under ``node`` that run when the module is imported: at any depth
    of ``if``/``try``/``with``/class bodies, but not in functions nor under
    ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _import_time_nodes(ast.Module(body=[other], type_ignores=[]))
        else:
            yield from _import_time_nodes(child)


def module_edges(name: str, path: Path, modules: dict[str, Path], root: str) -> set[str]:
    """The modules of ``modules`` that importing ``name`` (at ``path``) imports directly."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    targets: set[str] = set()
    for node in _import_time_nodes(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            targets.add(sub if sub in modules else source)
    return {t for t in targets if t in modules and t != name and t.split(".")[0] == root}


def import_graph(package: Path) -> Graph:
    modules = module_names(package)
    return {name: module_edges(name, path, modules, package.name) for name, path in modules.items()}


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        state[start] = 1
        stack = [iter(sorted(graph[start]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_asr_has_no_import_cycles() -> None:
    graph = import_graph(PACKAGE)
    assert "asr.data.datadir" in graph and graph["asr.data.datadir"], "the graph came out empty"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "pkg"


def test_the_checker_sees_cycles_through_every_kind_of_import(tmp_path: Path) -> None:
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",  # a submodule named in from-import
        "pkg/b.py": "try:\n    from .sub.c import thing\nexcept ImportError:\n    pass\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "import pkg.a\n",
    })
    assert find_cycle(import_graph(pkg)) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]


def test_the_checker_ignores_what_does_not_run_at_import(tmp_path: Path) -> None:
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.a import f\n",  # a package importing its own module
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n"
                    "def f():\n    from pkg.b import g\n    return g()\n",
        "pkg/b.py": "from pkg.a import f\nclass B:\n    pass\n",
    })
    graph = import_graph(pkg)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": set(), "pkg.b": {"pkg.a"}}
    assert find_cycle(graph) is None


HEAVY = ("torch", "torchaudio", "librosa", "matplotlib", "flashlight")
AUDIO = ("soundfile", "soxr")


@pytest.mark.parametrize(("code", "absent"), [
    # `asr score`: pure text work.
    ("from asr.cli.main import build_parser; build_parser('score')", HEAVY),
    # `asr data`: data-dir work; the actions that read audio import it when they run.
    ("from asr.cli.main import build_parser; build_parser('data')", HEAVY + AUDIO),
    # Reading data dirs and transcripts needs no model.
    ("import asr, asr.data, asr.scoring, asr.transcript", HEAVY),
])
def test_light_entry_points_do_not_import_heavy_libraries(code: str, absent: tuple[str, ...]) -> None:
    probe = f"import sys; {code}; print(' '.join(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{code!r} imported {out.stdout.strip()}"
