"""The Label Studio ML backend under /label-studio: the protocol on its own, then against the real Label Studio
(its own venv, SQLite, loopback): a project made through its REST API, the backend connected with Basic auth,
tasks with emoji and CRLF pre-annotated through Label Studio and compared span by span with /ner."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .label_studio_process import LABEL_STUDIO, LabelStudio, running_label_studio
from .server_process import STOP_AT_ONCE, RunningServer, running_server

AUTH = ("ls-user", "ls-pass")
ECOMMERCE = Path(__file__).parent / "data" / "ecommerce" / "train.jsonl"
LABEL_CONFIG = """<View>
  <Labels name="label" toName="text">
    <Label value="人名"/><Label value="LOC"/><Label value="机构"/><Label value="TIME"/><Label value="PRODUCT"/>
    <Label value="BRAND"/>
  </Labels>
  <Text name="text" value="$text"/>
</View>"""
LABEL_MAP = {"人名": "PER", "机构": "ORG"}
TYPE_TO_LABEL = {"PER": "人名", "LOC": "LOC", "ORG": "机构", "TIME": "TIME"}
TEXTS = [
    "阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "😀马云🇨🇳在上海，2023年11月2日晚上8点见了刘德华。",
    "据说，刘德华平时生活在香港。\r\n但是他喜欢去北京钓鱼。",
    "今天天气很好。",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("ls-server")
    config = root / "models.toml"
    config.write_text(f'{STOP_AT_ONCE}\n[models.news]\nmodel = "default"\naliases = ["default"]\n'
                      'train_dir = "promoted"\ntrain_minutes = 3\n', encoding="utf-8")
    env = {"RANER_POOL_LABEL_STUDIO_AUTH": ":".join(AUTH), "RANER_POOL_API_KEYS": "ner-key"}
    with running_server(config, root / "server.log", env=env) as running:
        yield running


def ls_post(server: RunningServer, path: str, body: dict[str, Any], auth: Any = AUTH) -> httpx.Response:
    return httpx.post(f"{server.url}/label-studio{path}", json=body, auth=auth, timeout=60)


def ner_regions(server: RunningServer, text: str) -> list[tuple[int, int, str, str]]:
    """What /ner finds, as (start, end, text, project label) for the types the project has labels for."""
    found = httpx.post(f"{server.url}/ner", json={"text": text}, headers={"Authorization": "Bearer ner-key"},
                       timeout=60).json()["data"]
    return [(e["start"], e["end"], e["span"], TYPE_TO_LABEL[e["type"]]) for e in found if e["type"] in TYPE_TO_LABEL]


def regions(prediction: dict[str, Any]) -> list[tuple[int, int, str, str]]:
    return [(r["value"]["start"], r["value"]["end"], r["value"]["text"], r["value"]["labels"][0])
            for r in prediction["result"]]


def test_health_setup_and_predict_speak_the_protocol(server: RunningServer):
    health = httpx.get(f"{server.url}/label-studio/health", auth=AUTH).json()
    assert health["status"] == "UP" and health["model_version"].startswith("news@")
    setup = ls_post(server, "/setup", {"project": "7.1733400000", "schema": LABEL_CONFIG, "hostname": "",
                                       "access_token": "", "extra_params": json.dumps({"label_map": LABEL_MAP})})
    assert setup.status_code == 200, setup.text
    assert setup.json() == {"model_version": health["model_version"], "unsupported_labels": ["PRODUCT", "BRAND"]}
    tasks = [{"id": i, "data": {"text": text}} for i, text in enumerate(TEXTS)]
    body = ls_post(server, "/predict", {"tasks": tasks, "project": "7.1733400000", "label_config": LABEL_CONFIG,
                                        "params": {}}).json()
    assert len(body["results"]) == len(TEXTS)
    for text, result in zip(TEXTS, body["results"], strict=True):
        assert regions(result) == ner_regions(server, text)
        assert result["model_version"] == health["model_version"]
        scores = [r["score"] for r in result["result"]]
        assert result["score"] == (min(scores) if scores else 1.0)  # the least sure entity: Data Manager sorts on it
        for region in result["result"]:
            assert region["from_name"] == "label" and region["to_name"] == "text" and region["type"] == "labels"
            assert text[region["value"]["start"] : region["value"]["end"]] == region["value"]["text"]
    assert any(label == "人名" for r in body["results"] for *_, label in regions(r))  # mapped through label_map
    emoji = regions(body["results"][1])
    assert (1, 3, "马云", "人名") in emoji  # code points: 😀 is one character, as Label Studio's Text tag counts


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/setup", {"project": "1.1", "schema": "<View><Text name='t' value='$t'/></View>"}, 400, "no <Labels>"),
    ("/setup", {"project": "1.1", "schema": "<View"}, 400, "not valid XML"),
    ("/setup", {"project": "1.1", "schema": LABEL_CONFIG, "extra_params": {"model": "nope"}}, 404, "nope"),
    ("/predict", {"tasks": [{"id": 5, "data": {"body": "马云"}}], "label_config": LABEL_CONFIG}, 400,
     "task 5 has no text under data.text"),
    ("/predict", {"tasks": [{"id": 1, "data": {"text": "马云"}}], "project": "99.1"}, 400, "never set up"),
    ("/predict", {"project": "1.1"}, 422, "tasks"),
])
def test_bad_requests_get_a_clear_answer(server: RunningServer, path: str, body: dict[str, Any], status: int,
                                         message: str):
    response = ls_post(server, path, body)
    assert response.status_code == status and message in response.text, response.text


def test_auth_is_label_studios_basic_auth_or_an_api_key(server: RunningServer):
    body = {"tasks": [{"id": 1, "data": {"text": "马云"}}], "label_config": LABEL_CONFIG}
    assert ls_post(server, "/predict", body, auth=None).status_code == 401
    assert ls_post(server, "/predict", body, auth=("ls-user", "wrong")).status_code == 401
    assert httpx.post(f"{server.url}/label-studio/predict", json=body,
                      headers={"Authorization": "Bearer ner-key"}).status_code == 200
    assert httpx.post(f"{server.url}/ner", json={"text": "马云"}, auth=AUTH).status_code == 401  # only /label-studio


def test_webhook_answers_every_action(server: RunningServer):
    other = ls_post(server, "/webhook", {"action": "PROJECT_UPDATED", "project": {"id": 1}})
    assert other.status_code == 200 and other.json()["status"] == "ignored"
    unknown = ls_post(server, "/webhook", {"action": "START_TRAINING", "project": {"id": 4242}})
    assert unknown.status_code == 200 and "never set up" in unknown.json()["note"]


def wait_for_job(server: RunningServer, project: int | str, within_s: float = 420) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while True:
        status = httpx.get(f"{server.url}/label-studio/training", params={"project": str(project)}, auth=AUTH).json()
        if status["state"] != "running" or time.monotonic() > deadline:
            return status
        time.sleep(1)


def test_a_training_request_without_enough_annotations_fails_clearly_and_changes_nothing(server: RunningServer):
    before = httpx.get(f"{server.url}/label-studio/health", auth=AUTH).json()["model_version"]
    started = ls_post(server, "/train", {"annotations": [], "project": "31.1", "label_config": LABEL_CONFIG})
    assert started.status_code == 200 and started.json()["status"] == "ok"
    status = wait_for_job(server, 31)
    assert status["state"] == "failed" and "0 annotated tasks" in status["message"]
    assert httpx.get(f"{server.url}/label-studio/health", auth=AUTH).json()["model_version"] == before
    missing = httpx.get(f"{server.url}/label-studio/training", params={"project": "77"}, auth=AUTH)
    assert missing.status_code == 404


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    if not LABEL_STUDIO.exists():
        pytest.fail(f"{LABEL_STUDIO} is missing: `make test` installs it (the .venv-labelstudio target)")
    root = tmp_path_factory.mktemp("label-studio")
    with running_label_studio(root / "data", root / "label-studio.log") as running:
        yield running


def test_label_studio_pre_annotates_through_the_backend(server: RunningServer, label_studio: LabelStudio):
    with label_studio.client() as ls:
        project = ls.post("/api/projects", json={"title": "NER", "label_config": LABEL_CONFIG})
        assert project.status_code == 201, project.text
        project_id = project.json()["id"]
        imported = ls.post(f"/api/projects/{project_id}/import", json=[{"text": t} for t in TEXTS])
        assert imported.status_code == 201, imported.text
        connected = ls.post("/api/ml", json={
            "url": f"{server.url}/label-studio", "project": project_id, "title": "raner-pool",
            "auth_method": "BASIC_AUTH", "basic_auth_user": AUTH[0], "basic_auth_pass": AUTH[1],
            "extra_params": {"label_map": LABEL_MAP}, "is_interactive": False})
        assert connected.status_code == 201, connected.text
        backend = connected.json()
        assert backend["state"] == "CO", backend  # connected: Label Studio called /health and /setup

        action = ls.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": project_id},
                         json={"selectedItems": {"all": True, "excluded": []}})
        assert action.status_code == 200, action.text
        tasks = ls.get("/api/tasks", params={"project": project_id, "fields": "all"}).json()["tasks"]
        assert len(tasks) == len(TEXTS)
        for task in tasks:
            [stored] = task["predictions"]
            text = task["data"]["text"]
            assert regions(stored) == ner_regions(server, text), text
            assert stored["model_version"].startswith("news@")
        crlf = next(t for t in tasks if "\r\n" in t["data"]["text"])
        assert crlf["data"]["text"] == TEXTS[2]  # Label Studio keeps \r\n: two characters in its offsets too

        # annotations (e-commerce sentences with BRAND and PRODUCT), imported as Label Studio keeps them
        shop = [json.loads(line) for line in ECOMMERCE.read_text(encoding="utf-8").splitlines()[:40]]
        annotated = [{"data": {"text": r["text"]}, "annotations": [{"result": [
            {"from_name": "label", "to_name": "text", "type": "labels", "value": {
                "start": e["start"], "end": e["end"], "text": e["text"], "labels": [e["type"]]}}
            for e in r["entities"]]}]} for r in shop]
        imported = ls.post(f"/api/projects/{project_id}/import", json=annotated)
        assert imported.status_code == 201, imported.text
        old_version = stored["model_version"]

        trained = ls.post(f"/api/ml/{backend['id']}/train")
        assert trained.status_code == 200, trained.text
        again = ls_post(server, "/train", {"annotations": [], "project": f"{project_id}.1"})
        assert "already running" in again.json()["job"]["message"]  # one job per project at a time
        status = wait_for_job(server, project_id)
        assert status["state"] == "promoted", status
        assert status["tasks"] == len(annotated) and status["new_f1"] > status["old_f1"]

        new_task = ls.post(f"/api/projects/{project_id}/import", json=[{"text": "我在京东买了华为Mate 60 Pro。"}])
        assert new_task.status_code == 201
        ls.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": project_id},
                json={"selectedItems": {"all": True, "excluded": []}})
        tasks = ls.get("/api/tasks", params={"project": project_id, "fields": "all"}).json()["tasks"]
        newest = [p for t in tasks for p in t["predictions"]]
        assert status["version"] in {p["model_version"] for p in newest} and status["version"] != old_version

        # START_TRAINING (newer Label Studio's webhook) carries no annotations: they are pulled with
        # label-studio-sdk from the hostname and token Label Studio gave /setup; the serving version is the base
        pulled = ls_post(server, "/webhook", {"action": "START_TRAINING", "project": {"id": project_id}})
        assert pulled.json()["status"] == "ok", pulled.text
        second = wait_for_job(server, project_id)
        assert second["state"] in ("promoted", "kept") and second["tasks"] == len(annotated), second
        assert second["old_f1"] == pytest.approx(status["new_f1"])  # judged against the version it would replace
    # the promoted dir is where the registry looks: a restart serves it
    from raner_pool.model_specs import load_specs

    [spec] = load_specs(server.log.parent / "models.toml")
    assert spec.model == spec.train_dir and Path(spec.train_dir, "configuration.json").is_file()
