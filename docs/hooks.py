"""MkDocs hook: the reference pages, generated from the code at build time so that nothing is written twice.

- reference/python.md: one mkdocstrings entry per name in `raner_pool.__all__`;
- reference/http.md: the FastAPI app's own OpenAPI schema (with an admin token, so the admin routes exist),
  and the routes the schema leaves out;
- reference/cli.md: each `raner-pool` subcommand's argparse help;
- reference/registry.md: the `[models.<name>]` keys (`ModelSpec`'s fields) and the `[server]` keys
  (`ServerConfig`'s), with their attribute docstrings;
- reference/environment.md: every `RANER_POOL_*` variable the package reads, found by a scan of its source.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import io
import json
import os
import re
import tokenize
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "raner_pool"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    os.environ.setdefault("RANER_POOL_OFFLINE", "1")
    for name, render in PAGES.items():
        files.append(File.generated(config, f"reference/{name}.md", content=render()))
    return files


# --- Python API --------------------------------------------------------------------------------------------------


def python_page() -> str:
    import raner_pool

    lines = ["# Python API", "", "Everything `raner_pool` exports (`raner_pool.__all__`), from the docstrings in "
             "the code. Import from the package: `from raner_pool import RaNERModelPool`.", ""]
    for name in raner_pool.__all__:
        lines += [f"::: {_python_path(raner_pool, name)}", "    options:", f"      heading: {name}", ""]
    return "\n".join(lines)


def _python_path(package: Any, name: str) -> str:
    """Where griffe finds a public name: its defining module for classes and functions (the trainer's names are
    lazy attributes of the package), the package itself for constants."""
    value = getattr(package, name)
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module.startswith("raner_pool"):
        return f"{module}.{qualname}"
    return f"raner_pool.{name}"


# --- HTTP API ----------------------------------------------------------------------------------------------------


def reference_app() -> Any:
    """The server's app as `raner-pool serve` builds it (the default registry), with an admin token so that the
    admin routes are part of it. Nothing is loaded: the lifespan never runs."""
    from raner_pool.model_specs import DEFAULT_SPEC
    from raner_pool.registry import ModelRegistry
    from raner_pool.server.app import create_app
    from raner_pool.server.config import ServerConfig

    return create_app(ModelRegistry([DEFAULT_SPEC]), ServerConfig(admin_token="reference"))


def http_page() -> str:
    from fastapi.routing import APIRoute

    app = reference_app()
    schema = app.openapi()
    components = schema.get("components", {}).get("schemas", {})
    lines = ["# HTTP API", "", f"Generated from the server's own OpenAPI schema ({schema['info']['title']} "
             f"{schema['info']['version']}); a running server serves the same schema at `/openapi.json` and "
             "renders it at `/docs`. Examples with real answers: [Call the HTTP API](../how-to/http-api.md).", ""]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            lines += _operation(method.upper(), path, operation)
    lines += ["## Routes outside the schema", "",
              "Served, but not part of the OpenAPI schema (the page, its assets and the schema itself):", "",
              "| method | path | what |", "| --- | --- | --- |"]
    in_schema = set(schema["paths"])
    for route in app.routes:
        path = getattr(route, "path", "")
        if path in in_schema:
            continue
        methods = ", ".join(sorted(getattr(route, "methods", None) or {"GET"}))
        endpoint = getattr(route, "endpoint", None)
        doc = (endpoint.__doc__ or "").strip().splitlines()[0] if isinstance(route, APIRoute) and endpoint else ""
        if not doc:
            doc = {"/openapi.json": "the OpenAPI schema", "/docs": "Swagger UI", "/redoc": "ReDoc",
                   "/static": "the WebUI's assets"}.get(path, "")
        lines.append(f"| {methods} | `{path}` | {_cell(doc)} |")
    lines += ["", "## Schemas", ""]
    for name, component in components.items():
        lines += _schema_section(name, component)
    return "\n".join(lines)


def _operation(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"## {method} `{path}`", ""]
    if operation.get("summary"):
        lines += [f"**{operation['summary']}**", ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type | required | description |", "| --- | --- | --- | --- | --- |"]
        for parameter in parameters:
            lines.append(f"| `{parameter['name']}` | {parameter['in']} | {_type(parameter.get('schema', {}))} | "
                         f"{'yes' if parameter.get('required') else 'no'} | "
                         f"{_cell(parameter.get('description', ''))} |")
        lines.append("")
    body = operation.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        lines += [f"Body ({media}): {_type(content.get('schema', {}))}", ""]
    responses = operation.get("responses", {})
    if responses:
        lines += ["| status | answer |", "| --- | --- |"]
        for status, response in responses.items():
            schemas = [_type(c.get("schema", {})) for c in response.get("content", {}).values() if c.get("schema")]
            answer = _cell(response.get("description", ""))
            if schemas:
                answer += ": " + ", ".join(dict.fromkeys(schemas))
            lines.append(f"| {status} | {answer} |")
        lines.append("")
    return lines


def _schema_section(name: str, component: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if component.get("description"):
        lines += [component["description"].strip(), ""]
    properties = component.get("properties", {})
    required = set(component.get("required", []))
    if properties:
        lines += ["| field | type | required | default | description |", "| --- | --- | --- | --- | --- |"]
        for field, spec in properties.items():
            default = f"`{json.dumps(spec['default'], ensure_ascii=False)}`" if "default" in spec else ""
            lines.append(f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | {_cell(default)} | "
                         f"{_cell(spec.get('description', ''))} |")
        lines.append("")
    elif "enum" in component:
        lines += ["One of " + ", ".join(f"`{value}`" for value in component["enum"]), ""]
    return lines


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " \\| ".join(dict.fromkeys(_type(option) for option in schema[key]))
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"dict[str, {_type(schema['additionalProperties'])}]"
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(value, ensure_ascii=False)}`" for value in schema["enum"])
    return str(kind or "any")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


# --- CLI ---------------------------------------------------------------------------------------------------------


def cli_page() -> str:
    os.environ["COLUMNS"] = "110"  # argparse wraps help to the terminal's width: the same page on every machine
    lines = ["# Command line", "", "`raner-pool`'s own `--help`, for each subcommand, generated from its argparse "
             "definitions. Examples: [Use the command line](../how-to/command-line.md).", ""]
    for name, parser in cli_parsers():
        lines += [f"## {name}", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def cli_parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """`raner-pool` and each of its subcommands' parsers, with their command lines."""
    from raner_pool.cli import _parser

    parser = _parser()
    yield "raner-pool", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield f"raner-pool {name}", subparser


# --- the registry file -------------------------------------------------------------------------------------------


def registry_page() -> str:
    from raner_pool.model_specs import DEFAULT_SPEC, ModelSpec
    from raner_pool.server.config import SETTING_TYPES, ServerConfig

    lines = ["# Registry file (TOML)", "",
             "`raner-pool serve --config models.toml` (or `RANER_POOL_CONFIG`) serves one model per "
             "`[models.<name>]` table; an optional `[server]` table sets the process. Without a file the registry "
             f"is the embedded default model as `{DEFAULT_SPEC.name}` (alias `default`). Generated from "
             "`raner_pool.model_specs.ModelSpec` and `raner_pool.server.config.ServerConfig`; a walk-through: "
             "[Serve several models](../how-to/several-models.md).", "",
             "```toml", _module_docstring_example("raner_pool/model_specs.py"), "```", "",
             "## `[models.<name>]`", ""]
    lines += _fields_table(ModelSpec, "raner_pool/model_specs.py", skip={"name"}, keys=None)
    lines += ["## `[server]`", "", "```toml", _module_docstring_example("raner_pool/server/config.py"), "```", ""]
    secrets = {"api_keys_file": "A file of API keys, one per line (also `RANER_POOL_API_KEYS_FILE`; "
                                "`RANER_POOL_API_KEYS` adds keys).",
               "admin_token_file": "A file holding the admin token (also `RANER_POOL_ADMIN_TOKEN_FILE`; "
                                   "`RANER_POOL_ADMIN_TOKEN` wins)."}
    lines += _fields_table(ServerConfig, "raner_pool/server/config.py", skip=set(), keys=set(SETTING_TYPES),
                           extra=secrets)
    return "\n".join(lines)


def _fields_table(cls: type, source: str, skip: set[str], keys: set[str] | None,
                  extra: dict[str, str] | None = None) -> list[str]:
    docs = attribute_docstrings(ROOT / source, cls.__name__)
    lines = ["| key | type | default | what |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(cls):
        if field.name in skip or (keys is not None and field.name not in keys):
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        shown = json.dumps(list(default) if isinstance(default, tuple | frozenset) else default, ensure_ascii=False)
        lines.append(f"| `{field.name}` | `{_cell(str(field.type))}` | `{_cell(shown)}` | "
                     f"{_cell(docs.get(field.name, ''))} |")
    for key, text in (extra or {}).items():
        lines.append(f"| `{key}` | `str` | | {_cell(text)} |")
    return [*lines, ""]


def attribute_docstrings(path: Path, class_name: str) -> dict[str, str]:
    """The docstrings under a class's annotated attributes (the string literal right after each)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    [node] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    docs: dict[str, str] = {}
    for statement, following in zip(node.body, [*node.body[1:], None], strict=True):
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[statement.target.id] = following.value.value
    return docs


def _module_docstring_example(source: str) -> str:
    """The indented TOML example of a module's docstring."""
    docstring = ast.get_docstring(ast.parse((ROOT / source).read_text(encoding="utf-8"))) or ""
    block = [line[4:] for line in docstring.splitlines() if line.startswith("    ")]
    return "\n".join(block)


# --- environment variables ---------------------------------------------------------------------------------------

ENV_NAME = re.compile(r"\bRANER_POOL_[A-Z0-9_]*[A-Z0-9]\b")
ENV_CONSTANT = re.compile(r"^(\w+_ENV)\s*=\s*\"(RANER_POOL_\w+)\"", re.M)
ENV_SUFFIXED = re.compile(r"\{(\w+_ENV)\}(_[A-Z]+)")


def environment_variables() -> dict[str, list[tuple[str, int, str]]]:
    """Each `RANER_POOL_*` name in the package's source (also `f"{NAME_ENV}_FILE"` forms), with every place it
    occurs: (file, line, the line's text)."""
    found: dict[str, list[tuple[str, int, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        constants = dict(ENV_CONSTANT.findall(text))
        for number, line in enumerate(text.splitlines(), 1):
            names = set(ENV_NAME.findall(line))
            names |= {constants[c] + suffix for c, suffix in ENV_SUFFIXED.findall(line) if c in constants}
            for name in names:
                found.setdefault(name, []).append((str(path.relative_to(ROOT)), number, line.strip()))
    return dict(sorted(found.items()))


def environment_page() -> str:
    lines = ["# Environment variables", "",
             "Every `RANER_POOL_*` variable the package reads, found by scanning its source at build time, with "
             "what its docstrings, help texts and comments say about it. `RANER_POOL_OFFLINE=1` (set by the "
             "Makefile) keeps every model load off the network.", ""]
    places = environment_variables()
    said = _prose_about(set(places))
    for name, where in places.items():
        lines += [f"## `{name}`", ""]
        lines += [f"- {_cell(sentence)}" for sentence in said.get(name, [])[:3]]
        lines += ["", "Read in: " + ", ".join(f"`{file}:{number}`" for file, number, _ in where), ""]
    return "\n".join(lines)


def _prose_about(names: set[str]) -> dict[str, list[str]]:
    """For each name, the sentences of the package's string literals and comments that mention it."""
    texts: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.JoinedStr):
                texts.append("".join(str(v.value) for v in node.values if isinstance(v, ast.Constant)))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(node.value)
        texts += [token.string.lstrip("# ") for token in tokenize.generate_tokens(io.StringIO(source).readline)
                  if token.type == tokenize.COMMENT]
    said: dict[str, list[str]] = {}
    for text in texts:
        for sentence in re.split(r"(?<=[.;])\s+(?=[A-Z`$(])", " ".join(text.split())):
            for name in set(ENV_NAME.findall(sentence)) & names:
                if sentence.strip() != name and len(sentence) <= 300 and sentence not in said.get(name, []):
                    said.setdefault(name, []).append(sentence)
    return said


PAGES: dict[str, Callable[[], str]] = {
    "python": python_page,
    "http": http_page,
    "cli": cli_page,
    "registry": registry_page,
    "environment": environment_page,
}
