"""The benchmark harness runs end to end on the tiny model (its figures are never asserted: no timing in tests)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_harness_writes_table_csv_and_chart(tiny_model_dir: Path, tmp_path: Path):
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--model", str(tiny_model_dir), "--seconds", "0.3",
               "--callers", "1,4", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "bench.csv").read_text(encoding="utf-8").splitlines()))
    modes = {row["mode"] for row in rows}
    assert len(modes) == 6 and any(m.startswith("baseline") for m in modes)
    assert all(float(row["requests_per_s"]) > 0 for row in rows)
    assert (tmp_path / "bench.png").stat().st_size > 10_000
    assert "x baseline" in (tmp_path / "bench.md").read_text(encoding="utf-8")


def test_http_comparison_runs(tiny_model_dir: Path, tmp_path: Path):
    command = [sys.executable, str(ROOT / "bench" / "over_http.py"), "--model", str(tiny_model_dir), "--seconds",
               "0.5", "--callers", "4", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "raner-pool / seed-style:" in result.stdout and "x requests/s" in result.stdout
