"""The examples of README.md, README.zh-CN.md and docs/: found in their fenced blocks, run, and compared with the output
shown beside them (tests/test_examples.py runs them).

- ```python: run in a fresh namespace; when a ```text block follows it (blank lines between at most), what it prints
  must match that block.
- ```console: `$ COMMAND` lines, each followed by the output it prints; run with bash, in order, in one directory.
- ```sh: commands whose exit status must be 0 (no output is shown to compare).
- ```toml: a registry file (or a part of one), which the server's own loader must accept.

Outputs are compared after masking what differs from run to run (ids, times, versions, long floats such as
probabilities, HTTP dates and lengths) in both, and `...` in the shown output matches anything (doctest's ELLIPSIS).
Commands and code that cannot run in a test are listed in SKIPS with the reason.
"""

from __future__ import annotations

import doctest
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED_URL = "http://127.0.0.1:8000"


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    kind: str
    """python, console, sh or toml."""
    code: str
    expected: str | None = None
    """What a python block prints (the ```text block after it); None: not compared."""
    commands: tuple[tuple[str, str], ...] = field(default=())
    """console and sh: (command, the output shown after it)."""

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")


def blocks(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, language, content) of each fenced block, its indentation removed."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening or not opening["lang"]:
            index += 1
            continue
        indent, start = len(opening["indent"]), index
        index += 1
        body = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index][indent:])
            index += 1
        yield start + 1, opening["lang"], "\n".join(body)
        index += 1


def examples(path: Path) -> list[Example]:
    found: list[Example] = []
    listed = list(blocks(path))
    text = path.read_text(encoding="utf-8").splitlines()
    for position, (line, lang, content) in enumerate(listed):
        if lang == "python":
            expected = None
            if position + 1 < len(listed) and listed[position + 1][1] == "text":
                next_line = listed[position + 1][0]
                between = text[line + content.count("\n") + 2 : next_line - 1]  # after the closing fence
                if not any(row.strip() for row in between):
                    expected = listed[position + 1][2]
            found.append(Example(path, line, "python", content, expected))
        elif lang == "console":
            found.append(Example(path, line, "console", content, commands=tuple(console_commands(content))))
        elif lang == "sh":
            found.append(Example(path, line, "sh", content, commands=tuple((c, "") for c in sh_commands(content))))
        elif lang == "toml":
            found.append(Example(path, line, "toml", content))
    return found


def console_commands(content: str) -> Iterator[tuple[str, str]]:
    """(command, output) pairs of a console block: `$ ` starts a command (a trailing backslash continues it)."""
    command: list[str] = []
    output: list[str] = []
    continued = False
    for row in content.splitlines():
        if continued:
            command.append(row)
            continued = row.endswith("\\")
        elif row.startswith("$ "):
            if command:
                yield "\n".join(command), "\n".join(output).strip("\n")
            command, output = [row[2:]], []
            continued = row.endswith("\\")
        else:
            output.append(row)
    if command:
        yield "\n".join(command), "\n".join(output).strip("\n")


def sh_commands(content: str) -> Iterator[str]:
    """The commands of a sh block, comment lines and blank lines left out, continued lines joined."""
    pending = ""
    for row in content.splitlines():
        if not pending and (not row.strip() or row.lstrip().startswith("#")):
            continue
        pending += row + "\n"
        if not row.endswith("\\"):
            yield pending.rstrip("\n")
            pending = ""


SKIP_PROGRAMS = {
    "make": "sets up the machine and runs the whole project; make test is what runs these examples",
    "docker": "needs a Docker daemon; tests/test_image.py builds and runs the same image with podman",
    "kubectl": "needs a Kubernetes cluster; tests/test_deployment.py checks the manifests statically",
    "modelscope": "downloads from the ModelScope hub, which tests never contact",
    "kill": "needs the process id of a server started by hand; tests/test_operations.py sends SIGHUP for real",
}
SKIPS = [
    (r"raner-pool serve", "starts a server that runs until stopped; the examples run against one started the same way"),
    (r"--ray", "needs a Ray cluster; tests/test_distributed.py runs annotate --ray on a real two-node cluster"),
    (r"annotate_dataset\(", "needs a Ray cluster and object storage; tests/test_distributed.py runs it on a real one"),
    (r"raner-pool train |\btrain\(", "trains a model (a minute or more here); "
                                     "tests/test_train.py trains on the same data, smaller, and deploys the result"),
    (r"--model models/shop", "needs the model the training above writes"),
    (r"\bpytest\b", "runs the test suite these examples are part of"),
]


def skip_reason(command: str) -> str | None:
    """Why `command` (or a python block) is not run, or None."""
    words = [w for w in command.split() if not re.fullmatch(r"[A-Z_]+=\S*", w)]
    if words and words[0] in SKIP_PROGRAMS:
        return SKIP_PROGRAMS[words[0]]
    for pattern, reason in SKIPS:
        if re.search(pattern, command):
            return reason
    return None


MASKS = [
    (re.compile(r'"(model_version|reference_time|elapsed_ms|id|created|request_id|pid|timed_at|system_fingerprint|'
                r'at|ts|ms)"\s*:\s*("[^"]*"|-?[\d.e+-]+)'), r'"\1":<masked>'),
    (re.compile(r"(?im)^(date|x-request-id|content-length|x-model-version): .*$"), r"\1: <masked>"),
    (re.compile(r"-?\d+\.\d{4,}(e-?\d+)?"), "<float>"),
]


def masked(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


CHECKER = doctest.OutputChecker()


def matches(expected: str, actual: str) -> bool:
    """Does `actual` match `expected`, after masking both, with `...` matching anything?"""
    want, got = masked(expected) + "\n", masked(actual) + "\n"
    return CHECKER.check_output(want, got, doctest.ELLIPSIS)
