"""The benchmark harness runs end to end on the tiny model (its figures are never asserted: no timing in tests)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_harness_writes_table_csv_and_chart(tiny_model_dir: Path, tmp_path: Path):
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--model", str(tiny_model_dir), "--seconds", "0.3",
               "--callers", "1,4", "--rounds", "2", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("round 2: ") == result.stdout.count("round 1: ") > 0, "every mode, turn by turn"
    rows = list(csv.DictReader((tmp_path / "bench.csv").read_text(encoding="utf-8").splitlines()))
    modes = {row["mode"] for row in rows}
    table = (tmp_path / "bench.md").read_text(encoding="utf-8")
    bfloat16_ran = sum("bfloat16" in m for m in modes)  # PyTorch's and OpenVINO's
    assert bfloat16_ran == 2 or "bfloat16: refused at construction" in table  # CPUs without AVX512-BF16 say why
    assert len(modes) == 7 + bfloat16_ran and any(m.startswith("baseline") for m in modes)
    assert all(float(row["requests_per_s"]) > 0 and float(row["share_of_ceiling"]) > 0 for row in rows)
    assert {row["number_format"] for row in rows} >= {"float32", "int8"}
    assert (tmp_path / "bench.png").stat().st_size > 10_000
    assert "x baseline" in table and "at the start and the end of this run): float32" in table
    assert "| micro-batching / no batching >= 1.0x | 4 |" in table and "auto chose" in table
    cpu, per_format = table.split("\n\n")[:2]
    assert "flags:" in cpu and "torch" in cpu  # what this CPU is, so a reader knows which table is theirs
    rows_by_runtime = {line.split(" | ")[0].strip("| "): line for line in per_format.splitlines()[2:]
                       if line.startswith("|")}
    assert {"modelscope", "onnx", "onnx-int8", "torch dynamic", "onnx static"} <= set(rows_by_runtime)
    for runtime in ("modelscope", "onnx", "onnx-int8", "openvino"):  # the backends: bare beside served, and their ratio
        assert rows_by_runtime[runtime].rstrip(" |").endswith("%"), rows_by_runtime[runtime]


def test_http_comparison_runs(tiny_model_dir: Path, tmp_path: Path):
    command = [sys.executable, str(ROOT / "bench" / "over_http.py"), "--model", str(tiny_model_dir), "--seconds",
               "0.5", "--callers", "4", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "raner-pool / seed-style:" in result.stdout and "x requests/s" in result.stdout


def test_http_path_benchmark_runs_wrk_beside_the_engine(tiny_model_dir: Path):
    command = [sys.executable, str(ROOT / "bench" / "http_path.py"), "--models", str(tiny_model_dir), "--seconds",
               "1", "--connections", "1,4"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 1 |") or line.startswith("| 4 |")]
    assert len(rows) == 2 and all("%" in row for row in rows)
