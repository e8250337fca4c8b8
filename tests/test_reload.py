"""Hot model updates in the library: leases keep an old pool open until its requests are done, the registry
re-reads its file (add, change, remove), a failed load leaves the old version serving, a watch follows a dir."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from raner_pool.errors import PoolClosed
from raner_pool.model_specs import RegistryConfigError
from raner_pool.registry import ModelRegistry, UnknownModel
from raner_pool.reload import ModelSlot, ModelUnavailable, ReloadFailed, build_pool, source_version

from .conftest import assert_same_results

TEXTS = ["阿里巴巴集团创始人马云在杭州出席了技术峰会。", "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼"]


def write_registry(path: Path, models: dict[str, Path | str], **extra: str) -> Path:
    tables = []
    for name, model in models.items():
        # one runtime for every build: answers of separately built pools are compared
        tables.append(f'[models.{name}]\nmodel = "{model}"\npool_size = 1\nbackend = "modelscope"\n'
                      + extra.get(name, ""))
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


def test_a_leased_pool_stays_open_until_its_lease_ends(tiny_model_dir: Path, other_model_dir: Path):
    from raner_pool.model_specs import ModelSpec

    slot = ModelSlot("m")
    with pytest.raises(ModelUnavailable, match="'m' is still loading"):
        slot.lease().__enter__()
    first = build_pool(ModelSpec("m", model=str(tiny_model_dir), pool_size=1))
    slot.install(first)
    with slot.lease() as leased:
        slot.install(build_pool(ModelSpec("m", model=str(other_model_dir), pool_size=1)))
        assert slot.version != first.version
        assert leased.predict(TEXTS[0]) is not None, "the old pool still answers the request that leased it"
    with pytest.raises(PoolClosed):
        first.predict(TEXTS[0])
    slot.close()
    with pytest.raises(ModelUnavailable):
        slot.lease().__enter__()


def test_registry_reload_adds_changes_and_removes(tmp_path: Path, tiny_model_dir: Path, other_model_dir: Path):
    path = write_registry(tmp_path / "models.toml", {"a": tiny_model_dir, "b": tiny_model_dir})
    registry = ModelRegistry.from_file(path)
    registry.load_all()
    tiny_version, other_version = source_version(registry.specs["a"]), registry.slot("a").version
    assert tiny_version == other_version
    with registry.lease("a") as pool:
        tiny_answers = pool.predict_batch(TEXTS)

    write_registry(path, {"a": other_model_dir, "c": tiny_model_dir})
    outcome = registry.reload()
    assert (outcome.added, outcome.removed, outcome.failed) == (["c"], ["b"], {})
    [changed] = outcome.reloaded
    assert (changed.model, changed.old_version, changed.changed) == ("a", tiny_version, True)
    assert registry.slot("a").version == changed.new_version != tiny_version
    with registry.lease("a") as pool:
        assert pool.predict_batch(TEXTS) != tiny_answers, "the new weights answer"
    with pytest.raises(UnknownModel):
        registry.resolve("b")

    assert registry.reload().unchanged == ["a", "c"], "nothing changed: no pool is rebuilt"
    registry.close()


def test_a_failed_reload_keeps_the_old_version_serving(tmp_path: Path, tiny_model_dir: Path):
    path = write_registry(tmp_path / "models.toml", {"a": tiny_model_dir})
    registry = ModelRegistry.from_file(path)
    registry.load_all()
    version = registry.slot("a").version
    write_registry(path, {"a": tmp_path / "missing"})
    outcome = registry.reload()
    assert list(outcome.failed) == ["a"] and "missing" in outcome.failed["a"]
    assert f"version {version} still serves" in outcome.failed["a"]
    assert registry.slot("a").version == version
    assert registry.specs["a"].model == str(tiny_model_dir), "the old settings stay with the old version"
    assert registry.failures["a"].startswith("ModelNotAvailable")
    with registry.lease("a") as pool:
        assert pool.predict(TEXTS[0]) is not None

    path.write_text("[models.a\nbroken", encoding="utf-8")
    with pytest.raises(RegistryConfigError):
        registry.reload()
    assert registry.slot("a").version == version
    registry.close()


def test_reload_model_picks_up_a_replaced_dir_or_says_why_not(tmp_path: Path, tiny_model_dir: Path,
                                                             other_model_dir: Path):
    served = tmp_path / "served"
    shutil.copytree(tiny_model_dir, served)
    registry = ModelRegistry.from_file(write_registry(tmp_path / "models.toml", {"m": served}))
    registry.load_all()
    before = registry.slot("m").version
    shutil.rmtree(served)
    shutil.copytree(other_model_dir, served)
    result = registry.reload_model("m")
    assert (result.old_version, result.changed) == (before, True)

    (served / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(ReloadFailed, match="still serves"):
        registry.reload_model("m")
    assert registry.slot("m").version == result.new_version
    assert registry.slot("m").load_failures == 1
    registry.close()


def test_a_watched_dir_is_reloaded_when_its_content_changes(tmp_path: Path, tiny_model_dir: Path,
                                                            other_model_dir: Path):
    served = tmp_path / "served"
    shutil.copytree(tiny_model_dir, served)
    path = write_registry(tmp_path / "models.toml", {"m": served}, m="watch_s = 0.5\n")
    registry = ModelRegistry.from_file(path)
    registry.load_all()
    before = registry.slot("m").version
    registry.start_watching()
    shutil.copy(other_model_dir / "pytorch_model.bin", served / "pytorch_model.bin")
    deadline = time.monotonic() + 20
    while registry.slot("m").version == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert registry.slot("m").version == source_version(registry.specs["m"]) != before
    with registry.lease("m") as pool, build_pool(registry.specs["m"]) as fresh:
        assert_same_results(pool.predict_batch(TEXTS), fresh.predict_batch(TEXTS))
    registry.close()
