"""Start a server process on a free 127.0.0.1 port and wait until /ready says 200: for tests, bench and load tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from raner_pool.ports import free_port

__all__ = ["free_port", "launched", "stop_process"]


@contextmanager
def launched(
    command: list[str], port: int, log: Path, ready_within_s: float = 180.0, *, env: Mapping[str, str] | None = None,
    new_session: bool = False,
) -> Iterator[str]:
    """Run `command` (a server on `port`, in `env` if given; `new_session`: in a process group of its own, which
    can then be signalled whole), output to `log`; yield its URL once ready; stop it whatever happens."""
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   env=None if env is None else dict(env), start_new_session=new_session)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready within {ready_within_s} s; see {log}")
            time.sleep(0.2)
        yield url
    finally:
        stop_process(process, 20)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM `process`, and SIGKILL it if it has not exited within `timeout_s`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
