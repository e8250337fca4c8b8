"""A genuine multi-node Ray cluster on this machine, for tests and benchmarks: one `ray start --block` process per
node on 127.0.0.1, every port chosen free, and torn down by the PIDs it started (never `ray stop`, which would stop
every Ray process on the machine, other users' included)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from raner_pool.errors import RaNERError
from raner_pool.ports import free_ports


@dataclass
class LocalRayCluster:
    """`nodes` Ray nodes (a head and workers), each with `cpus_per_node` CPUs, a small object store, no dashboard.

        with LocalRayCluster(nodes=2) as cluster:
            ray.init(address=cluster.address)
    """

    nodes: int = 2
    cpus_per_node: int = 1
    object_store_bytes: int = 100 * 1024 * 1024
    start_within_s: float = 90.0
    address: str = ""
    temp_dir: Path = field(default_factory=Path)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    """The `ray start --block` processes, head first; each leads a process group holding its node's processes."""
    _node_ports: list[int] = field(default_factory=list, repr=False)
    """Six distinct free ports per node, chosen together with the head's GCS port."""

    def __enter__(self) -> LocalRayCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the head, then the other nodes; return once the cluster reports all of them alive."""
        # Ray's socket paths live under the temp dir and must stay short (a Unix socket path has ~107 bytes)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rp-", dir="/tmp"))
        port, *self._node_ports = free_ports(1 + 6 * self.nodes)
        self.address = f"127.0.0.1:{port}"
        try:
            head = ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={self.temp_dir}"]
            self._start_node(head, 0)
            self._wait_for_port(port)
            for index in range(1, self.nodes):
                self._start_node([f"--address={self.address}"], index)
            self._wait_for_nodes()
        except BaseException:
            self.stop()
            raise

    def _start_node(self, role: list[str], index: int) -> None:
        ray = Path(sys.executable).with_name("ray")
        node_manager, object_manager, agent_http, agent_grpc, runtime_env, metrics = self._node_ports[6 * index:][:6]
        command = [
            str(ray), "start", "--block", *role, "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus_per_node}",
            "--num-gpus=0", f"--object-store-memory={self.object_store_bytes}", "--disable-usage-stats",
            f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}",
            f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
            f"--resources={json.dumps({f'node{index}': 1})}",
        ]
        log = open(self.temp_dir / f"node{index}.log", "wb")  # noqa: SIM115  (the child holds it; closed below)
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}
        with log:
            self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                   start_new_session=True))

    def _wait_for_port(self, port: int) -> None:
        """Until the head's GCS accepts connections on `port`."""
        deadline = time.monotonic() + self.start_within_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.3)
        raise RaNERError(f"the Ray head did not listen on port {port} within {self.start_within_s} s: {self.log(0)}")

    def _check_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                raise RaNERError(f"ray node {index} exited with {process.returncode}: {self.log(index)}")

    def _wait_for_nodes(self) -> None:
        """Poll `ray status`-free: ask the GCS through a short-lived driver until every node is alive."""
        script = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                  "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.monotonic() + self.start_within_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                probe = subprocess.run([sys.executable, "-c", script, self.address], capture_output=True, text=True,
                                       timeout=30, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
            except subprocess.TimeoutExpired:
                continue
            if probe.returncode == 0 and probe.stdout.strip().splitlines()[-1:] == [str(self.nodes)]:
                return
            time.sleep(1)
        raise RaNERError(f"the {self.nodes}-node Ray cluster was not up within {self.start_within_s} s")

    def log(self, index: int) -> str:
        """The tail of node `index`'s `ray start` output."""
        path = self.temp_dir / f"node{index}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def pids(self) -> list[int]:
        """PIDs of every live process of this cluster: the `ray start` processes, their descendants (Ray's workers
        start sessions of their own, so a process group is not enough), and anything left in their groups or
        running under the cluster's temp dir."""
        import psutil

        found: set[int] = set()
        groups = {process.pid for process in self.processes}
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(process.pid)
                found.update([parent.pid, *(child.pid for child in parent.children(recursive=True))])
        for proc in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(proc.pid) in groups or str(self.temp_dir) in " ".join(proc.info["cmdline"] or []):
                    found.add(proc.pid)
        found.discard(os.getpid())
        return sorted(found)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM each node's `ray start` (workers first), then SIGKILL whatever of the cluster is left."""
        tree = {pid: _started(pid) for pid in self.pids()}
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace_s
        for process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for _ in range(50):
            left = [pid for pid in self.pids() if pid not in tree and _started(pid)] + [
                pid for pid, started in tree.items() if started and _started(pid) == started
            ]
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        self.processes.clear()
        if self.temp_dir != Path() and self.temp_dir.is_dir():
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def _started(pid: int) -> float:
    """When process `pid` started (0 if it is gone or a zombie): tells a process from a later one that reuses its
    PID."""
    import psutil

    try:
        process = psutil.Process(pid)
        return 0.0 if process.status() == psutil.STATUS_ZOMBIE else float(process.create_time())
    except psutil.Error:
        return 0.0
