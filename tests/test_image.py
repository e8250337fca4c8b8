"""The image, built from the Dockerfile with podman (scripts/build-image.sh, the same build as `make image`) and run
for real, as an operator runs it: read-only root filesystem, a tmpfs /tmp, UID 10001, stopped with a grace period.

Each container serves on the host's loopback (`--network host`, `serve --host 127.0.0.1` on a free port given in
RANER_POOL_PORT, which the HEALTHCHECK reads too) and is removed by its own name. podman runs with runc and
cgroupfs and lowered ulimits: crun fails on hybrid cgroups, and podman's default NOFILE/NPROC limits are refused
on machines like this one. Without podman the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from raner_pool.server.launch import free_port

ROOT = Path(__file__).resolve().parents[1]
TAG = "localhost/raner-pool:test"
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
RUN_OPTIONS = ["--network", "host", "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp",
               "--user", "10001:10001", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
"""As `docker run --read-only --tmpfs /tmp` and Kubernetes' readOnlyRootFilesystem with an emptyDir at /tmp: podman
would also mount tmpfs on /run and /var/tmp unless told not to."""
BUILD_TIMEOUT_S = 1800
"""A cold build (debootstrap, then every package from the index) takes minutes; a warm one seconds."""
STOP_GRACE_S = 45
"""compose.yaml's stop_grace_period and the Deployment's terminationGracePeriodSeconds: SIGKILL after this."""
# 6,000 characters, about 1.4 s of work each here: 8 of them are still in flight a second after they are sent
LONG_TEXT = "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。" * 240

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 300)  # the first test waits for the build


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, check=False)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        message = "podman is missing: `make test` installs it (APT_PACKAGES)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    build = subprocess.run([str(ROOT / "scripts" / "build-image.sh"), TAG], capture_output=True, text=True,
                           timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    return TAG


@dataclass(frozen=True)
class Container:
    name: str
    url: str

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *command, check=False)

    def exit_code(self) -> int:
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout)

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr


def start_period_s(image: str) -> float:
    """The HEALTHCHECK's start period, from the built image's own config (nanoseconds there)."""
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}", image).stdout)
    return config["StartPeriod"] / 1e9


@contextmanager
def serving(image: str, *serve_args: str) -> Iterator[Container]:
    """`raner-pool serve` in a container of `image`, once /ready answers 200; removed afterwards, however it ended."""
    name = f"raner-pool-test-{secrets.token_hex(4)}"
    port = free_port()
    podman("run", "--detach", "--name", name, *RUN_OPTIONS, "--env", f"RANER_POOL_PORT={port}", image,
           "serve", "--host", "127.0.0.1", *serve_args)
    container = Container(name, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + start_period_s(image)
        while True:
            try:
                if httpx.get(f"{container.url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            running = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            assert running == "true", f"the container exited before it was ready:\n{container.logs()[-4000:]}"
            assert time.monotonic() < deadline, f"not ready within the start period:\n{container.logs()[-4000:]}"
            time.sleep(0.5)
        yield container
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


@pytest.fixture(scope="module")
def server(image: str) -> Iterator[Container]:
    with serving(image) as container:
        yield container


def readme_ner_example() -> tuple[dict[str, object], list[dict[str, object]]]:
    """The first `curl .../ner` example of README.md: its request body and the entities of its printed answer."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("$ curl -s http://127.0.0.1:8000/ner "))
    words = shlex.split(lines[index][2:])
    body = json.loads(words[words.index("-d") + 1])
    return body, json.loads(lines[index + 1])["data"]


def spans(entities: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(e["type"], e["start"], e["end"], e["span"]) for e in entities]


def test_the_image_is_ready_within_its_start_period_and_its_healthcheck_passes(server: Container) -> None:
    # ready: the fixture waited for /ready within the HEALTHCHECK's start period
    assert podman("healthcheck", "run", server.name, check=False).returncode == 0, server.logs()[-2000:]


def test_the_container_answers_the_readme_example(server: Container) -> None:
    body, entities = readme_ner_example()
    answer = httpx.post(f"{server.url}/ner", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert spans(answer.json()["data"]) == spans(entities)
    # the extra types (jionlp's dictionaries were unpacked at build time, not at run time)
    answer = httpx.post(f"{server.url}/ner", timeout=30, json={
        "text": "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元。",
        "types": ["TIME", "MONEY", "TITLE"]})
    assert answer.status_code == 200, answer.text
    assert {e["type"] for e in answer.json()["data"]} == {"TIME", "MONEY", "TITLE"}
    assert httpx.get(f"{server.url}/", timeout=10).status_code == 200, "the WebUI is in the image"


WRITE_PROBE = """
import os, sys
written = []
for directory in sys.argv[1:]:
    try:
        with open(os.path.join(directory, "probe"), "w") as probe:
            probe.write("x")
        written.append(directory)
    except OSError:
        pass
print(" ".join(written))
"""


def test_the_server_runs_as_10001_and_cannot_write_outside_tmp(server: Container) -> None:
    status = server.exec("cat", "/proc/1/status").stdout
    uids = re.search(r"^Uid:\s+(.*)$", status, re.MULTILINE)
    assert uids and set(uids.group(1).split()) == {"10001"}, status
    places = ["/", "/app", "/app/webui", "/opt/venv/lib/python3.11/site-packages", "/etc", "/models", "/var/tmp",
              "/root", "/tmp"]
    probe = server.exec("python3", "-c", WRITE_PROBE, *places)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["/tmp"], f"writable: {probe.stdout}"
    # and serving changed nothing in the image's filesystem (its caches, exports and timings all went to /tmp);
    # /etc shows as changed only because podman mounts its own hosts, hostname and resolv.conf there
    assert set(podman("diff", server.name).stdout.split("\n")) <= {"C /etc", ""}


def test_predict_runs_in_the_image(image: str) -> None:
    body, entities = readme_ner_example()
    result = podman("run", "--rm", *RUN_OPTIONS, image, "predict", str(body["text"]), timeout=120)
    assert spans(json.loads(result.stdout)) == spans(entities), result.stdout + result.stderr


def stop_during_requests(container: Container, requests: int) -> tuple[list[int], int, float]:
    """`podman stop` (SIGTERM, SIGKILL after STOP_GRACE_S) while `requests` long /ner calls are in flight: their
    statuses, /ready's status just after the signal, and how long the stop took."""
    with ThreadPoolExecutor(requests) as clients:
        in_flight = [clients.submit(httpx.post, f"{container.url}/ner", json={"text": LONG_TEXT}, timeout=120)
                     for _ in range(requests)]
        time.sleep(1.0)
        assert not all(f.done() for f in in_flight), "the requests are still in flight when the signal comes"
        began = time.monotonic()
        stopper = threading.Thread(target=podman, args=("stop", "--time", str(STOP_GRACE_S), container.name),
                                   kwargs={"timeout": STOP_GRACE_S + 30})
        stopper.start()
        time.sleep(0.5)
        ready = httpx.get(f"{container.url}/ready", timeout=5).status_code
        statuses = [f.result().status_code for f in in_flight]
        stopper.join()
    return statuses, ready, time.monotonic() - began


def test_sigterm_turns_ready_off_drains_and_exits_0(image: str) -> None:
    with serving(image) as container:
        statuses, ready, took = stop_during_requests(container, 8)
        assert ready == 503
        assert statuses == [200] * 8
        assert took < STOP_GRACE_S, "podman had to SIGKILL it"
        assert container.exit_code() == 0, container.logs()[-3000:]
        assert "grace period over" in container.logs()


def test_two_workers_in_the_container_answer_and_drain(image: str) -> None:
    with serving(image, "--workers", "2") as container:
        body, entities = readme_ner_example()
        with ThreadPoolExecutor(8) as clients:
            answers = list(clients.map(lambda _: httpx.post(f"{container.url}/ner", json=body, timeout=60), range(32)))
        assert all(a.status_code == 200 and spans(a.json()["data"]) == spans(entities) for a in answers)
        commands = json.loads(container.exec("python3", "-c", (
            "import json, os; print(json.dumps([open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc')"
            " if p.isdigit()]))")).stdout)
        assert sum("\0serve\0" in command for command in commands) == 3, "a supervisor and two workers"
        statuses, ready, took = stop_during_requests(container, 8)
        assert ready == 503
        assert statuses == [200] * 8
        assert took < STOP_GRACE_S
        assert container.exit_code() == 0, container.logs()[-3000:]
