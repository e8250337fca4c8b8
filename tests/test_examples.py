"""Every example in README.md, README.zh-CN.md and docs/ runs, and prints what it shows: Python blocks in-process,
curl and CLI commands with bash against one real server (`raner-pool serve` on a free 127.0.0.1 port, the default
model) and the real CLI. The harness, its masks and its list of skips with reasons: tests/doc_examples.py."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raner_pool.model_specs import load_specs
from raner_pool.server.config import load_server_config
from tests.doc_examples import DOCUMENTED_URL, ROOT, Example, documents, examples, matches, skip_reason
from tests.server_process import STOP_AT_ONCE, RunningServer, running_server

ADMIN_TOKEN = "doc-examples"
EXAMPLES = [example for path in documents() for example in examples(path)]
REGISTRY = """[models.raner-default]
model = "default"
aliases = ["default"]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server the documented commands talk to: the default registry, as `make serve` serves it, with an admin
    token (given to the examples as $TOKEN)."""
    root = tmp_path_factory.mktemp("doc-server")
    config = root / "models.toml"
    config.write_text(REGISTRY + STOP_AT_ONCE, encoding="utf-8")
    with running_server(config, root / "server.log", env={"RANER_POOL_ADMIN_TOKEN": ADMIN_TOKEN}) as running:
        yield running


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A directory that looks like a checkout (every top-level entry linked), so documented relative paths such as
    tests/data/... and .venv/bin/... work, while what the examples write stays in tmp_path."""
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "site"):
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


def test_the_documents_have_examples() -> None:
    kinds = {example.kind for example in EXAMPLES}
    assert kinds == {"python", "console", "sh", "toml"}, kinds
    readme = [e for e in EXAMPLES if e.path.name == "README.md"]
    assert {e.kind for e in readme} >= {"python", "console"}


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.kind == "python"], ids=lambda e: e.name)
def test_python_example(example: Example, server: RunningServer, workdir: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    reason = skip_reason(example.code)
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(workdir)
    output = io.StringIO()
    code = compile(example.code.replace(DOCUMENTED_URL, server.url), example.name, "exec")
    with contextlib.redirect_stdout(output):
        exec(code, {"__name__": "__example__"})
    printed = output.getvalue().replace(server.url, DOCUMENTED_URL)
    if example.expected is not None:
        assert matches(example.expected, printed), f"{example.name} printed:\n{printed}"


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.kind in ("console", "sh")], ids=lambda e: e.name)
def test_shell_example(example: Example, server: RunningServer, workdir: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "TOKEN": ADMIN_TOKEN, "RANER_POOL_OFFLINE": "1", "COLUMNS": "120"}
    ran = 0
    skipped = []
    for command, shown in example.commands:
        reason = skip_reason(command)
        if reason:
            skipped.append(f"{command.splitlines()[0]}: {reason}")
            continue
        result = subprocess.run(["bash", "-c", command.replace(DOCUMENTED_URL, server.url)], cwd=workdir, env=env,
                                capture_output=True, text=True, timeout=300)
        ran += 1
        printed = (result.stdout if result.returncode == 0 else result.stdout + result.stderr)
        printed = printed.replace(server.url, DOCUMENTED_URL)
        if example.kind == "sh":
            assert result.returncode == 0, f"{example.name}: {command}\n{result.stdout}\n{result.stderr}"
        else:
            assert matches(shown, printed), f"{example.name}: {command}\nshown:\n{shown}\nprinted:\n{printed}"
    if not ran:
        pytest.skip("; ".join(skipped))


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.kind == "toml"], ids=lambda e: e.name)
def test_registry_example(example: Example, tmp_path: Path) -> None:
    """A registry file shown in the docs is one `raner-pool serve --config` accepts: every key a setting, every value
    of its type (the loaders refuse anything else, naming it)."""
    config = tmp_path / "models.toml"
    config.write_text(example.code, encoding="utf-8")
    if "[models." in example.code:
        assert load_specs(config)
    load_server_config(config, env={})
