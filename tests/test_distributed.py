"""Distributed annotation on a genuine two-node Ray cluster on 127.0.0.1: same output as the single-machine
`annotate`, work on both nodes, a killed actor costing no row and duplicating none, bad rows as error fields."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raner_pool.cli import main as cli_main
from raner_pool.corpus import load_msra
from raner_pool.distributed import AnnotateConfig, annotate_files, chunks_by_chars, plan_jobs
from raner_pool.errors import RaNERError
from raner_pool.raycluster import LocalRayCluster

LINES = 2000
CONFIG = AnnotateConfig("default", concurrency=2, pool_size=1, torch_threads=1, num_cpus=1, batch_rows=128)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    """Two Ray nodes (a head and a worker), one CPU each, started with `ray start` and stopped by PID."""
    with LocalRayCluster(nodes=2, cpus_per_node=1, object_store_bytes=100 * 1024 * 1024) as running:
        yield running
    assert not running.pids(), "a process of the cluster outlived its teardown"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2,000 MSRA test sentences, one a line."""
    path = tmp_path_factory.mktemp("corpus") / "msra.txt"
    path.write_text("".join(s.text + "\n" for s in load_msra("test", LINES)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def single_machine(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What the single-machine `raner-pool annotate` writes for the corpus."""
    out = tmp_path_factory.mktemp("single") / "msra.jsonl"
    assert cli_main(["annotate", str(corpus), "-o", str(out)]) == 0
    return read_jsonl(out)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_same_records(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Same lines, texts and entities; probabilities equal up to float noise from other batch padding."""
    def exact(records: list[dict[str, Any]]) -> list[Any]:
        return [(r["line"], r["text"], [(e["type"], e["start"], e["end"], e["span"]) for e in r["entities"]],
                 sorted(set(r) - {"entities"})) for r in records]

    assert exact(actual) == exact(expected)
    got = [e["prob"] for r in actual for e in r["entities"]]
    assert got == pytest.approx([e["prob"] for r in expected for e in r["entities"]], abs=1e-5)


def read_parquet(path: Path) -> list[dict[str, Any]]:
    """A Parquet output's rows as the JSONL records they stand for (no "error" key where there is none)."""
    rows = pq.read_table(path).to_pylist()
    return [{k: v for k, v in row.items() if k != "error" or v is not None} for row in rows]


def test_two_nodes_give_the_single_machine_output_and_errors_for_bad_rows(
    cluster: LocalRayCluster, corpus: Path, single_machine: list[dict[str, Any]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([
        json.dumps({"text": "马云在杭州"}, ensure_ascii=False), json.dumps({"text": 5}), json.dumps({"id": 1}),
        "[1, 2]", "{not json", json.dumps({"text": None}), "", json.dumps({"text": ""}),
    ]) + "\n", encoding="utf-8")
    table = tmp_path / "table.parquet"
    pq.write_table(pa.table({"text": ["刘德华在香港", None]}), table)
    out = tmp_path / "out"

    summary = annotate_files([corpus, bad, table], out, CONFIG, address=cluster.address, output_format="parquet")

    assert_same_records(read_parquet(out / "msra.parquet"), single_machine)
    assert sorted(p.name for p in out.iterdir()) == ["bad.parquet", "msra.parquet", "table.parquet"]  # no temp file
    assert summary.rows == LINES + 7 + 2
    # both nodes annotated rows
    assert len(summary.rows_per_node) == 2, summary.rows_per_node
    assert all(count > 0 for count in summary.rows_per_node.values())
    assert sum(summary.rows_per_node.values()) == summary.rows

    records = read_parquet(out / "bad.parquet")
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 6, 8]  # the blank line 7 is no record
    assert [e["span"] for e in records[0]["entities"]] == ["马云", "杭州"] and "error" not in records[0]
    assert [r.get("error") for r in records[1:]] == [
        "'text' is not a string but int", "no 'text' field", "line 4 is not a JSON object",
        "line 5 is not valid JSON: Expecting property name enclosed in double quotes", "'text' is missing", None,
    ]
    assert all(r["entities"] == [] for r in records[1:])
    rows = read_parquet(out / "table.parquet")
    assert [r["line"] for r in rows] == [1, 2]
    assert [e["span"] for e in rows[0]["entities"]] == ["刘德华", "香港"] and "error" not in rows[0]
    assert rows[1]["error"] == "'text' is missing" and rows[1]["entities"] == []
    assert summary.errors == 6

    # the CLI, resuming per input file: existing outputs are skipped, a missing one is redone
    (out / "bad.parquet").unlink()
    argv = ["annotate", str(corpus), str(bad), str(table), "-o", str(out), "--output-format", "parquet",
            "--skip-existing", "--ray", cluster.address]
    assert cli_main(argv) == 0
    redone = read_parquet(out / "bad.parquet")
    assert_same_records(redone, records)
    assert [r.get("error") for r in redone] == [r.get("error") for r in records]
    err = capsys.readouterr().err
    assert "annotated 7 rows (5 with errors) into 1 files" in err and "skipped 2 existing" in err


def annotators(cluster: LocalRayCluster) -> dict[int, str]:
    """The cluster's live annotator actor processes: PID to process title (which names the method running)."""
    found = {}
    for pid in cluster.pids():
        try:
            process = psutil.Process(pid)
            title = " ".join(process.cmdline())
            if "_Annotator" in title and process.status() != psutil.STATUS_ZOMBIE:
                found[pid] = title
        except psutil.Error:
            continue
    return found


def test_a_killed_actor_costs_no_row_and_duplicates_none(
    cluster: LocalRayCluster, corpus: Path, single_machine: list[dict[str, Any]], tmp_path: Path
):
    out = tmp_path / "msra.jsonl"
    killed: dict[str, Any] = {}
    stop = threading.Event()

    def kill_one_actor_mid_batch() -> None:
        """Once both actors are loaded, SIGKILL one while it runs a batch; then wait for Ray to replace it."""
        deadline = time.monotonic() + 150
        while not stop.is_set() and time.monotonic() < deadline:
            found = annotators(cluster)
            busy = [pid for pid, title in found.items() if not title.endswith(")") and "__init__" not in title]
            if len(found) == 2 and busy and not any("__init__" in title for title in found.values()):
                killed.update(pid=busy[0], title=found[busy[0]], job_done=out.exists())
                os.kill(busy[0], signal.SIGKILL)
                break
            time.sleep(0.02)
        while not stop.is_set() and time.monotonic() < deadline:
            if len(set(annotators(cluster)) - {killed.get("pid")}) == 2:
                killed["replaced"] = True
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one_actor_mid_batch, daemon=True)
    killer.start()
    try:
        summary = annotate_files([corpus], out, CONFIG, address=cluster.address)
    finally:
        stop.set()
        killer.join(timeout=30)

    assert "pid" in killed, "no annotator was found running a batch"
    assert not killed["job_done"], "the kill came after the job"
    assert killed.get("replaced"), f"Ray did not restart the actor killed in {killed['title']!r}"
    records = read_jsonl(out)
    assert [r["line"] for r in records] == list(range(1, LINES + 1))  # every row, exactly once, in order
    assert summary.rows == LINES
    assert_same_records(records, single_machine)


def test_output_layout_and_bad_arguments(tmp_path: Path):
    one = plan_jobs([Path("a.txt")], tmp_path / "a.jsonl")
    assert [(j.output.name, j.input_format, j.output_format) for j in one] == [("a.jsonl", "text", "jsonl")]
    several = plan_jobs([Path("x/a.txt"), Path("b.jsonl"), Path("c.parquet")], tmp_path / "out", "parquet")
    assert [(j.output.name, j.input_format) for j in several] == [
        ("a.parquet", "text"), ("b.parquet", "jsonl"), ("c.parquet", "parquet")]
    with pytest.raises(RaNERError, match="would both write"):
        plan_jobs([Path("x/a.txt"), Path("y/a.txt")], tmp_path / "out")
    with pytest.raises(RaNERError, match="concurrency must be at least 1"):
        AnnotateConfig(concurrency=0)
    with pytest.raises(RaNERError, match="does not exist"):
        annotate_files([tmp_path / "missing.txt"], tmp_path / "o.jsonl", address="127.0.0.1:1")
    assert list(chunks_by_chars([(0, "ab"), (1, "cde"), (2, "f" * 10), (3, "g")], 5)) == [[0, 1], [2], [3]]


def test_the_core_package_never_imports_ray():
    code = "import sys, raner_pool, raner_pool.cli, raner_pool.distributed; assert 'ray' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
