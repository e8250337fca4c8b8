"""The package reads top-down: every import (TYPE_CHECKING and function-level ones included) goes to the same
floor or one below, so there is no import cycle and a model's load path never climbs back into `backends/`."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "raner_pool"

FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "entities", "crf", "edges", "tagging", "tokenization", "windows", "modeldir", "threads", "ports",
     "hub", "precision", "onednn", "unpadded", "cache", "corpus", "evaluation", "memory", "timezones"),
    ("backends", "recognizers"),  # runtimes (they know nothing of the engine that runs them); rule recognisers
    ("engine",),
    ("batching", "choices"),  # what needs a working engine: batches, the runtime and batch-budget choices
    ("loading",),  # a model and its timed choices, as a pool gets them
    ("pool",),
    ("reload", "parity", "model_specs", "training", "integrations", "ranking"),  # training: the engine serves its base
    # model's view; integrations: annotation tools' protocols, which the server speaks
    ("registry",),
    ("distributed", "raycluster", "server", "cli", ""),  # "": the package's public face, raner_pool/__init__.py
)
"""Lowest first. A name covers a module and, for a package, everything in it."""


def modules() -> dict[str, Path]:
    """Module names relative to the package ("" for its __init__), by file."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        found[name.removesuffix("__init__").removesuffix(".")] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere in its code (a `from pkg import module` counts as the
    module; a `from module import name` as the module)."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name != "raner_pool" and not name.startswith("raner_pool."):
                continue
            relative = name.removeprefix("raner_pool").removeprefix(".")
            while relative not in known:  # `from raner_pool.x import SomeName` imports raner_pool.x
                relative = relative.rpartition(".")[0]
            targets.add(relative)
    return targets


def floor_of(module: str) -> int:
    matches = [(len(name), index) for index, names in enumerate(FLOORS) for name in names
               if module == name or (name and module.startswith(name + "."))]
    assert matches, f"raner_pool.{module} is on no floor: add it to FLOORS in {Path(__file__).name}"
    return max(matches)[1]


def graph() -> dict[str, set[str]]:
    found = modules()
    return {module: imports_of(path, set(found)) - {module} for module, path in found.items()}


def test_every_import_goes_down_or_stays_on_its_floor():
    climbs = [f"raner_pool.{source or '__init__'} (floor {floor_of(source)}) imports raner_pool.{target} "
              f"(floor {floor_of(target)})"
              for source, targets in sorted(graph().items()) for target in sorted(targets)
              if floor_of(target) > floor_of(source)]
    assert climbs == []


def test_there_is_no_import_cycle():
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_core_never_imports_the_http_layer_nor_runtimes_the_engine():
    edges = graph()
    for source, targets in edges.items():
        if not (source.startswith("server") or source in ("cli", "")):
            assert not any(t == "server" or t.startswith("server.") for t in targets), source
        if source.startswith("backends"):
            assert targets <= set(FLOORS[0]) | {m for m in edges if m.startswith("backends")}, source


def test_the_layer_check_sees_a_cycle_and_a_climb(tmp_path: Path):
    """The walk itself: a module importing one above it, TYPE_CHECKING-only, is caught."""
    source = tmp_path / "fake.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from raner_pool.choices.runtime import BackendChoice\n", encoding="utf-8")
    found = imports_of(source, set(modules()))
    assert found == {"choices.runtime"} and floor_of("choices.runtime") > floor_of("backends.base")
