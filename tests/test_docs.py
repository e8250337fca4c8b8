"""The documentation site builds with `mkdocs build --strict` and no warning, and its reference pages leave nothing
out: every name in `raner_pool.__all__`, every route of the server's OpenAPI schema, every flag of every
`raner-pool` subcommand, every registry key and every `RANER_POOL_*` variable the package reads has an entry.

The reference pages are generated from the code by docs/hooks.py; this test takes the lists of what must be there
from the same functions, and looks for each entry in the built HTML, so it checks what a reader gets (a name
mkdocstrings cannot render, a flag whose help is suppressed, a key left out of a table all fail it, by name)."""

from __future__ import annotations

import argparse
import dataclasses
import html
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import raner_pool
from raner_pool.model_specs import ModelSpec
from raner_pool.server import config as server_config

ROOT = Path(__file__).resolve().parents[1]


def load_hooks() -> ModuleType:
    """docs/hooks.py, the generator of the reference pages (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = load_hooks()


@dataclass(frozen=True)
class Site:
    root: Path
    output: str
    """What `mkdocs build` printed (stdout and stderr)."""
    returncode: int

    def page(self, name: str) -> str:
        """The text of a built reference page, tags removed and entities unescaped, one line per block."""
        path = self.root / "reference" / name / "index.html"
        assert path.is_file(), f"reference/{name} was not built:\n{self.output}"
        return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))

    def headings(self, name: str) -> list[str]:
        """The text of a built reference page's headings (h2 to h4), tags removed."""
        text = (self.root / "reference" / name / "index.html").read_text(encoding="utf-8")
        return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", heading)).replace("\N{PILCROW SIGN}", "").split())
                for heading in re.findall(r"<h[234][^>]*>(.*?)</h[234]>", text, re.S)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The site, built once for the module as `make docs` builds it, into a temporary dir."""
    root = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(root)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "RANER_POOL_OFFLINE": "1", "NO_MKDOCS_2_WARNING": "1"})
    return Site(root, result.stdout + result.stderr, result.returncode)


def missing(what: str, names: list[str]) -> str:
    return f"{len(names)} {what} without an entry in the reference: {', '.join(names)}"


def test_the_site_builds_strict_without_a_warning(site: Site) -> None:
    assert site.returncode == 0, site.output
    warnings = [line for line in site.output.splitlines() if re.match(r"\s*WARNING\b", line)]
    assert not warnings, site.output
    assert (site.root / "index.html").is_file()


def test_every_public_name_has_an_entry(site: Site) -> None:
    """Each name is rendered by mkdocstrings as a heading whose id is where the hook told it to look."""
    page = (site.root / "reference" / "python" / "index.html").read_text(encoding="utf-8")
    rendered = set(re.findall(r'<h2 id="([^"]+)" class="doc doc-heading"', page))
    absent = [name for name in raner_pool.__all__ if hooks._python_path(raner_pool, name) not in rendered]
    assert not absent, missing("names of raner_pool.__all__", absent)


def test_every_route_has_an_entry(site: Site) -> None:
    schema = hooks.reference_app().openapi()
    headings = set(site.headings("http"))
    absent = [f"{method.upper()} {path}" for path, operations in schema["paths"].items() for method in operations
              if f"{method.upper()} {path}" not in headings]
    assert not absent, missing("routes of the OpenAPI schema", absent)


def test_every_cli_flag_has_an_entry(site: Site) -> None:
    page = site.page("cli")
    sections = dict(zip(*[iter(re.split(r"^(raner-pool(?: [\w-]+)?)¶?$", page, flags=re.M)[1:])] * 2,
                        strict=True))
    absent = []
    for command, parser in hooks.cli_parsers():
        section = sections.get(command)
        if section is None:
            absent.append(f"{command} (the command itself)")
            continue
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                absent += [f"{command} {name}" for name in action.choices if f"{command} {name}" not in sections]
            for flag in action.option_strings:
                if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", section):
                    absent.append(f"{command} {flag}")
    assert not absent, missing("command-line flags", absent)


def test_every_registry_key_has_an_entry(site: Site) -> None:
    page = site.page("registry")
    environment = set(site.headings("environment"))
    absent = [f"[models.<name>] {field.name}" for field in dataclasses.fields(ModelSpec)
              if field.name != "name" and not re.search(rf"^{field.name}$", page, re.M)]
    for field in dataclasses.fields(server_config.ServerConfig):
        if field.name in server_config.SETTING_TYPES:
            if not re.search(rf"^{field.name}$", page, re.M):
                absent.append(f"[server] {field.name}")
            continue
        # a setting that is not a key of the file comes from the environment (a secret): its variable is documented
        variable = getattr(server_config, f"{field.name.upper()}_ENV", None)
        if variable is None or variable not in environment:
            absent.append(f"[server] {field.name} (neither a registry key nor a documented variable)")
    absent += [f"[server] {key}" for key in server_config.SETTING_TYPES if not re.search(rf"^{key}$", page, re.M)]
    assert not absent, missing("registry settings", sorted(set(absent)))


def test_every_environment_variable_has_an_entry(site: Site) -> None:
    headings = set(site.headings("environment"))
    absent = [name for name in hooks.environment_variables() if name not in headings]
    assert not absent, missing("RANER_POOL_* variables", absent)
    assert {"RANER_POOL_OFFLINE", "RANER_POOL_ADMIN_TOKEN", "RANER_POOL_TIMEZONE"} <= headings
