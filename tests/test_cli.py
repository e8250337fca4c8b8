"""The `raner-pool` command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def raner_pool(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter, optionally with extra environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "raner_pool.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_predict_prints_json_entities(tiny_model_dir: Path):
    text = "马云在杭州"
    result = raner_pool("predict", "--model", str(tiny_model_dir), text)
    assert result.returncode == 0, result.stderr
    entities = json.loads(result.stdout)
    assert all(e["span"] == text[e["start"] : e["end"]] for e in entities)
    from_stdin = raner_pool("predict", "--model", str(tiny_model_dir), "-", stdin=text)
    assert json.loads(from_stdin.stdout) == entities


def test_annotate_writes_one_line_per_input_and_resumes(tiny_model_dir: Path, tmp_path: Path):
    source = tmp_path / "in.txt"
    lines = [f"马云在杭州{i}" for i in range(10)] + ["", "😀北京"]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    first = raner_pool("annotate", "--model", str(tiny_model_dir), str(source), "-o", str(out), "--batch-size", "4")
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == list(range(1, 13))
    assert [r["text"] for r in records] == lines

    # simulate a crash after 5 lines, mid-way through writing the 6th
    kept = out.read_text(encoding="utf-8").splitlines(keepends=True)[:5]
    out.write_text("".join(kept) + '{"line": 6, "tex', encoding="utf-8")
    resumed = raner_pool(
        "annotate", "--model", str(tiny_model_dir), str(source), "-o", str(out), "--skip-existing"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] == records


def test_unknown_model_is_one_clear_line(tmp_path: Path):
    result = raner_pool("predict", "--model", "damo/not-cached-anywhere", "北京")
    assert result.returncode == 2
    assert result.stderr.startswith("raner-pool: cannot load ModelScope model 'damo/not-cached-anywhere'")
    assert "Traceback" not in result.stderr


DESIGN_SENTENCE = "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元，营收同比增长百分之二十。"


def time_value_of(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The value of the one TIME entity `raner-pool predict` printed."""
    assert result.returncode == 0, result.stderr
    [value] = [e["value"] for e in json.loads(result.stdout) if e["type"] == "TIME"]
    return dict(value)


def test_predict_reads_times_in_shanghai_on_a_utc_host_or_in_the_zone_named():
    utc_host = {"TZ": "UTC", "RANER_POOL_TIMEZONE": ""}
    default = time_value_of(raner_pool("predict", DESIGN_SENTENCE, env=utc_host))
    assert (default["start"], default["timezone"]) == ("2023-11-02T20:00:00+08:00", "Asia/Shanghai")
    in_paris = {**utc_host, "RANER_POOL_TIMEZONE": "Europe/Paris"}
    paris = time_value_of(raner_pool("predict", DESIGN_SENTENCE, env=in_paris))
    assert (paris["start"], paris["timezone"]) == ("2023-11-02T20:00:00+01:00", "Europe/Paris")
    london = time_value_of(raner_pool("predict", "--timezone", "Europe/London", DESIGN_SENTENCE,
                                      env=in_paris))  # the flag wins over the environment
    assert (london["start"], london["timezone"]) == ("2023-11-02T20:00:00+00:00", "Europe/London")


def test_an_unknown_zone_is_one_clear_line():
    flag = raner_pool("predict", "--timezone", "Mars/Olympus", "明天")
    assert flag.returncode == 2 and "unknown time zone 'Mars/Olympus'" in flag.stderr
    served = raner_pool("serve", "--port", "0", env={"RANER_POOL_TIMEZONE": "Nowhere"})
    assert served.returncode == 2
    assert served.stderr.startswith("raner-pool: RANER_POOL_TIMEZONE: unknown time zone 'Nowhere'")
