"""`raner-pool train` / `raner_pool.train`: small data in every format, new types added to any servable base, the
old types kept (and lost with --forget), a run stopped with Ctrl-C resumed, bad data refused with nothing written,
and the result served: by the pool, ONNX, the ModelScope pipeline, and a running server switched to it."""

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

import httpx
import pytest
import torch

from raner_pool import RaNERModelPool, TrainConfig, TrainResult, train
from raner_pool.cli import main
from raner_pool.engine import PIPELINE_READING
from raner_pool.parity import compare_with_pipeline
from raner_pool.training.model import TrainableModel

from .server_process import STOP_AT_ONCE, running_server
from .test_layouts import LAYOUT_TEXTS, LAYOUTS, SPLITS_INTO_WORDS
from .test_training_data import BAD_INPUTS, FORMS, TEXT

ECOMMERCE = Path(__file__).parent / "data" / "ecommerce"
QUICK = TrainConfig(epochs=2, progress=False)
OLD_TYPE_TEXTS = [
    "阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。",
    "国务院总理李克强在中南海会见了联合国秘书长古特雷斯。",
    "新华社记者王小明在上海报道了复旦大学的新闻。",
    "张艺谋昨天在西安接受了中央电视台的采访。",
    "中国人民银行行长易纲在北京出席了论坛。",
    "李宁在广州参观了中山大学。",
    "周杰伦将于明年在台北举办演唱会。",
]


def ecommerce_lines(n: int, tmp_path: Path) -> Path:
    path = tmp_path / f"ecommerce-{n}.jsonl"
    lines = (ECOMMERCE / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:n]), encoding="utf-8")
    return path


def spans_of(pool: RaNERModelPool, texts: list[str], types: set[str]) -> list[set[tuple[str, int, int]]]:
    return [{(e.type, e.start, e.end) for e in found if e.type in types} for found in pool.predict_batch(texts)]


@pytest.mark.parametrize("name", list(FORMS))
def test_every_format_trains_a_new_type_on_a_tiny_base(name: str, tiny_model_dir: Path, tmp_path: Path):
    data = tmp_path / name
    data.write_text(FORMS[name], encoding="utf-8")
    result = train([data], tiny_model_dir, tmp_path / "out", QUICK)
    assert isinstance(result, TrainResult) and result.output == (tmp_path / "out").resolve()
    assert set(result.added_types) == {"BRAND", "PRODUCT"} and "LOC" not in result.added_types  # the base has LOC
    assert {f"{p}-PRODUCT" for p in "BMES"} <= set(result.labels)
    assert result.epochs == 2 and result.seconds > 0 and set(result.dev) >= {"BRAND", "PRODUCT", "LOC", "ALL"}
    with RaNERModelPool(result.output, pool_size=1, extra_types=()) as pool:
        assert pool.labels == list(result.labels)
        pool.predict(TEXT)
    card = (result.output / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\ntasks:\n- named-entity-recognition\n") and "- B-PRODUCT" in card
    assert f"| {data} | `" in card and "| PRODUCT |" in card
    facts = json.loads((result.output / "train_config.json").read_text(encoding="utf-8"))
    assert len(facts["data"][0]["sha256"]) == 64 and facts["epochs"] == 2
    assert not list(tmp_path.glob(".out.*")), "the run dir and the partial dir are gone"


def test_new_labels_leave_the_old_rows_and_crf_cells_as_they_were(tiny_model_dir: Path):
    model = TrainableModel(tiny_model_dir)
    before = {k: v.clone() for k, v in model.module.head.state_dict().items()}
    added = model.extend(["PRODUCT", "PER"])  # PER is the base's: nothing new for it
    assert added == [f"{p}-PRODUCT" for p in "BMES"]
    n = len(model.base_labels)
    head = model.module.head.state_dict()
    assert torch.equal(head["linear.weight"][:n], before["linear.weight"])
    assert torch.equal(head["crf.transitions"][:n, :n], before["crf.transitions"])
    assert torch.equal(head["crf.start_transitions"][:n], before["crf.start_transitions"])
    # a new cell is the mean of the old cells of its shape: B-X -> E-X within a type
    old_b_to_e = [before["crf.transitions"][model.labels.index(f"B-{t}"), model.labels.index(f"E-{t}")]
                  for t in ("PER", "LOC", "ORG")]
    new_b_to_e = head["crf.transitions"][model.labels.index("B-PRODUCT"), model.labels.index("E-PRODUCT")]
    assert torch.isclose(new_b_to_e, torch.stack(old_b_to_e).mean())


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_published_layout_is_a_base_and_its_output_matches_the_pipeline(layout: str, tmp_path: Path):
    base = tmp_path / "base"
    LAYOUTS[layout](base)
    data = tmp_path / "data.jsonl"
    data.write_text(FORMS["ner.jsonl"], encoding="utf-8")
    result = train([data], base, tmp_path / "out", QUICK)
    base_labels = TrainableModel(base).labels
    assert list(result.labels[: len(base_labels)]) == base_labels  # old ids unchanged, new ones appended
    scheme = "BIES" if "B-PER" in base_labels and "I-PER" in base_labels else "BMES"
    assert {f"{p}-PRODUCT" for p in scheme} <= set(result.labels)
    with RaNERModelPool(result.output, pool_size=1, engine_config=PIPELINE_READING, extra_types=()) as pool:
        report = compare_with_pipeline(result.output, LAYOUT_TEXTS, pool)
    assert report.mismatches == []
    if layout in SPLITS_INTO_WORDS:
        assert report.compared == len(LAYOUT_TEXTS)


def rule_labelled_msra(n: int, path: Path) -> Path:
    """`n` MSRA train sentences with a TIME or MONEY in them, labelled with those two types only (by the rule
    recognisers), in /ner's JSONL: data that is silent on the PER, LOC and ORG in the same sentences."""
    from raner_pool.corpus import load_msra

    texts = [s.text for s in load_msra("train", limit=3000) if any(t != "O" for t in s.tags)]
    with RaNERModelPool("default", pool_size=1, extra_types=("TIME", "MONEY")) as pool:
        found = pool.predict_batch(texts)
    lines = []
    for text, entities in zip(texts, found, strict=True):
        ruled = [{"start": e.start, "end": e.end, "type": e.type} for e in entities if e.type in ("TIME", "MONEY")]
        if ruled and len(lines) < n:
            lines.append(json.dumps({"text": text, "entities": ruled}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def old_type_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainResult]:
    """The default model extended with TIME and MONEY from 40 news sentences that also hold unlabelled names,
    keeping the old types by each method and not at all."""
    root = tmp_path_factory.mktemp("old-types")
    data = rule_labelled_msra(40, root / "time-money.jsonl")
    return {keep: train([data], "default", root / keep, TrainConfig(epochs=8, keep_old=keep, progress=False))
            for keep in ("pseudo", "distill", "forget")}


def test_old_types_are_kept_unless_forget_is_asked(old_type_runs: dict[str, TrainResult]):
    old = {"PER", "LOC", "ORG"}
    with RaNERModelPool("default", pool_size=1, extra_types=()) as pool:
        base = spans_of(pool, OLD_TYPE_TEXTS, old)
    found = sum(map(len, base))
    assert found >= 20

    def kept(keep: str) -> float:
        with RaNERModelPool(old_type_runs[keep].output, pool_size=1, extra_types=()) as pool:
            after = spans_of(pool, OLD_TYPE_TEXTS, old)
        return sum(len(a & b) for a, b in zip(after, base, strict=True)) / found

    assert old_type_runs["pseudo"].kept_types == ("LOC", "ORG", "PER")
    assert old_type_runs["forget"].kept_types == () and old_type_runs["forget"].kept == {}
    pseudo, distill, forget = kept("pseudo"), kept("distill"), kept("forget")
    for keep, run in old_type_runs.items():  # and the new types were learned, whichever way the old were kept
        assert run.dev["ALL"]["f1"] >= 0.3, (keep, run.dev)
    assert pseudo >= 0.9 and distill >= 0.9, (pseudo, distill)
    assert forget <= pseudo - 0.3, (forget, pseudo)


def test_a_trained_model_serves_on_onnx_as_on_torch(old_type_runs: dict[str, TrainResult]):
    output = old_type_runs["pseudo"].output
    texts = [*OLD_TYPE_TEXTS, "2023年11月2日晚上8点，马云花了三百万元。"]
    with RaNERModelPool(output, pool_size=1, extra_types=()) as torch_pool, \
            RaNERModelPool(output, pool_size=1, backend="onnx", extra_types=()) as onnx_pool:
        assert spans_of(onnx_pool, texts, set()) == spans_of(torch_pool, texts, set())
        assert [[(e.type, e.start, e.end) for e in r] for r in onnx_pool.predict_batch(texts)] == \
               [[(e.type, e.start, e.end) for e in r] for r in torch_pool.predict_batch(texts)]


@pytest.mark.parametrize("problem", list(BAD_INPUTS))
def test_bad_data_is_refused_before_training_and_nothing_is_written(
    problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    name, content, message = BAD_INPUTS[problem]
    good, bad = tmp_path / "good.jsonl", tmp_path / name
    good.write_text(FORMS["ner.jsonl"], encoding="utf-8")
    bad.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["train", str(good), str(bad), "--output", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"raner-pool: {bad}") and message in error and error.count("\n") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"good.jsonl", name})


def test_an_existing_output_is_refused_unless_overwrite(tiny_model_dir: Path, tmp_path: Path):
    data = tmp_path / "data.jsonl"
    data.write_text(FORMS["ner.jsonl"], encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    with pytest.raises(Exception, match="already exists"):
        train([data], tiny_model_dir, tmp_path / "out", QUICK)
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"
    train([data], tiny_model_dir, tmp_path / "out", TrainConfig(epochs=1, progress=False, overwrite=True))
    assert not (tmp_path / "out" / "mine.txt").exists()


def test_a_time_budget_writes_the_best_so_far_and_the_run_resumes(tiny_model_dir: Path, tmp_path: Path):
    data = ecommerce_lines(60, tmp_path)
    budget = TrainConfig(epochs=3, batch_size=4, progress=False, max_minutes=0.0)
    stopped = train([data], tiny_model_dir, tmp_path / "out", budget)
    assert stopped.stopped_by_budget and stopped.epochs == 0  # one step, then the budget was spent
    assert (tmp_path / "out" / "pytorch_model.bin").is_file()
    assert (tmp_path / ".out.train" / "checkpoint.pt").is_file()
    finished = train([data], tiny_model_dir, tmp_path / "out",
                     TrainConfig(epochs=3, batch_size=4, progress=False, resume=True))
    assert not finished.stopped_by_budget and [r["epoch"] for r in finished.history] == [1, 2, 3]
    assert not (tmp_path / ".out.train").exists()


def test_ctrl_c_keeps_the_last_checkpoint_and_resume_finishes(tiny_model_dir: Path, tmp_path: Path):
    data = ecommerce_lines(120, tmp_path)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "raner_pool.cli", "train", str(data), "--base", str(tiny_model_dir),
               "--output", str(out), "--epochs", "60", "--batch-size", "4", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    history = tmp_path / ".out.train" / "history.jsonl"
    deadline = time.monotonic() + 120
    while not (history.exists() and history.read_text().count("\n") >= 1) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert "--resume" in err.decode()
    assert not out.exists() and (tmp_path / ".out.train" / "checkpoint.pt").is_file()
    done_before = history.read_text().count("\n")

    finished = subprocess.run([*command, "--resume"], capture_output=True, timeout=600)
    assert finished.returncode == 0, finished.stderr.decode()
    summary = json.loads(finished.stdout.decode().strip().splitlines()[-1])
    assert summary["epochs"] > done_before  # it went on from where it stopped, the earlier epochs counted
    facts = json.loads((out / "train_config.json").read_text(encoding="utf-8"))
    assert facts["epochs"] == summary["epochs"] and "--resume" in facts["command"]
    assert not (tmp_path / ".out.train").exists()


def test_serving_never_imports_the_trainer():
    code = ("import sys, raner_pool, raner_pool.cli, raner_pool.server.app; raner_pool.cli._parser(); "
            "print(sorted(m for m in sys.modules if m.startswith('raner_pool.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture
def admin_server(tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "models.toml"
    config.write_text(f'{STOP_AT_ONCE}\n[models.shop]\nmodel = "default"\nextra_types = []\n', encoding="utf-8")
    with running_server(config, tmp_path / "server.log", env={"RANER_POOL_ADMIN_TOKEN": "train-admin"}) as server:
        yield server.url


def test_deploy_switches_a_running_server_to_the_new_model_with_no_failed_request(
    admin_server: str, tmp_path: Path
):
    data = ecommerce_lines(40, tmp_path)
    failures: list[str] = []
    answered: dict[str, int] = {}
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=admin_server, timeout=60) as http:
            while not stop.is_set():
                response = http.post("/ner", json={"text": OLD_TYPE_TEXTS[0], "model": "shop"})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    version = response.json()["model_version"]
                    answered[version] = answered.get(version, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        env = {**os.environ, "RANER_POOL_ADMIN_TOKEN": "train-admin"}
        out = tmp_path / "shop-model"
        run = subprocess.run([sys.executable, "-m", "raner_pool.cli", "train", str(data), "--output", str(out),
                              "--epochs", "3", "--quiet", "--deploy", admin_server, "--deploy-model", "shop"],
                             capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr
        deployed = json.loads(run.stdout.strip().splitlines()[-1])
        assert deployed["success"] and deployed["old_version"] != deployed["new_version"]
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert set(answered) == {deployed["old_version"], deployed["new_version"]}
    health = httpx.get(f"{admin_server}/health").json()
    [shop] = [m for m in health["models"] if m["name"] == "shop"]
    assert shop["model"] == str(out.resolve()) and shop["version"] == deployed["new_version"]
    found = httpx.post(f"{admin_server}/ner", json={"text": "我在京东买了华为Mate 60 Pro。"}).json()
    assert found["model_version"] == deployed["new_version"]


def test_deploy_refuses_a_wrong_token_before_training(admin_server: str, tmp_path: Path):
    data = tmp_path / "data.jsonl"
    data.write_text(FORMS["ner.jsonl"], encoding="utf-8")
    env = {**os.environ, "RANER_POOL_ADMIN_TOKEN": ""}
    run = subprocess.run([sys.executable, "-m", "raner_pool.cli", "train", str(data), "--output",
                          str(tmp_path / "out"), "--deploy", admin_server, "--deploy-model", "nope"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and "RANER_POOL_ADMIN_TOKEN" in run.stderr
    env["RANER_POOL_ADMIN_TOKEN"] = "train-admin"
    run = subprocess.run([sys.executable, "-m", "raner_pool.cli", "train", str(data), "--output",
                          str(tmp_path / "out"), "--deploy", admin_server, "--deploy-model", "nope"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and "serves no model 'nope'" in run.stderr
    assert not (tmp_path / "out").exists()



def test_distillation_accepts_the_bases_tag_only_where_it_finds_an_entity():
    from raner_pool.modeldir import MSRA_LABELS
    from raner_pool.training import Span
    from raner_pool.training.targets import Item, set_targets

    labels = [*MSRA_LABELS, *(f"{p}-MONEY" for p in "BMES")]
    item = Item("马云在杭州花了三百万元", gold=(Span(7, 11, "MONEY"),), where="x", token_ids=[], first_token=[],
                base_spans=(Span(0, 2, "PER"), Span(3, 5, "LOC")))
    for keep, at_name in (("distill", {"O", "B-PER"}), ("pseudo", {"B-PER"}), ("forget", {"O"})):
        set_targets([item], labels, "BMES", keep)
        assert item.allowed is not None
        allowed = [{labels[i] for i in row.nonzero()[0]} for row in item.allowed]
        assert allowed[0] == at_name and allowed[2] == {"O"}
        assert allowed[7:11] == [{"B-MONEY"}, {"M-MONEY"}, {"M-MONEY"}, {"E-MONEY"}]  # gold is gold in every mode
