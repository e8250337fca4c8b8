"""The zone a text's times are read in, on the library path: Asia/Shanghai by default whatever the host's zone,
else the call's, the pool's, the registry entry's or $RANER_POOL_TIMEZONE, named in every TIME value; relative
times resolved against "now" seen from that zone. (HTTP: test_server.py; the command line: test_cli.py.)"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from raner_pool import RaNERError, RaNERModelPool
from raner_pool.model_specs import RegistryConfigError, load_specs
from raner_pool.timezones import TIMEZONE_ENV

DESIGN_SENTENCE = "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元，营收同比增长百分之二十。"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(params=["UTC", "America/Los_Angeles"])
def host_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process's local zone (TZ) set to `request.param`, as on a server or container, and no
    $RANER_POOL_TIMEZONE; both restored afterwards."""
    monkeypatch.setenv("TZ", request.param)
    monkeypatch.delenv(TIMEZONE_ENV, raising=False)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def time_value(pool: RaNERModelPool, text: str, **options: Any) -> dict[str, Any]:
    """The value of the one TIME entity `pool.predict` finds in `text`."""
    [found] = [e for e in pool.predict(text, **options) if e.type == "TIME"]
    assert found.value is not None
    return found.value


def rule_time_value(pool: RaNERModelPool, text: str, **options: Any) -> dict[str, Any]:
    """The value of the one TIME entity the pool's rules find in `text` (no model: a tiny pool's random weights
    could claim the span)."""
    [[found]] = [[e for e in entities if e.type == "TIME"] for entities in pool.with_rules([text], [[]], **options)]
    assert found.value is not None
    return found.value


def test_times_are_read_in_asia_shanghai_whatever_the_host_s_zone(default_pool: RaNERModelPool, host_zone: str):
    assert datetime.now().astimezone().utcoffset() != timedelta(hours=8)  # the host really is elsewhere now
    assert default_pool.timezone == "Asia/Shanghai"
    assert time_value(default_pool, DESIGN_SENTENCE) == {
        "kind": "point", "start": "2023-11-02T20:00:00+08:00", "end": "2023-11-02T20:59:59+08:00", "grain": "hour",
        "timezone": "Asia/Shanghai"}
    before = datetime.now(SHANGHAI).date()
    tomorrow = date.fromisoformat(time_value(default_pool, "明天开会")["start"][:10])
    assert tomorrow - timedelta(days=1) in (before, datetime.now(SHANGHAI).date())  # "now" is Shanghai's now


def test_a_call_names_its_zone_and_each_bound_gets_that_zone_s_offset(default_pool: RaNERModelPool):
    london = time_value(default_pool, DESIGN_SENTENCE, timezone="Europe/London")
    assert (london["start"], london["timezone"]) == ("2023-11-02T20:00:00+00:00", "Europe/London")
    across_dst = time_value(default_pool, "会议定于2024年3月10日举行。", timezone="America/New_York")
    assert across_dst == {"kind": "point", "start": "2024-03-10T00:00:00-05:00", "end": "2024-03-10T23:59:59-04:00",
                          "grain": "day", "timezone": "America/New_York"}


def test_a_reference_is_an_instant_seen_from_the_zone_and_a_naive_one_a_wall_clock_there(
    default_pool: RaNERModelPool,
):
    evening_in_london = datetime.fromisoformat("2024-03-15T20:00:00+00:00")  # 04:00 on the 16th in Shanghai
    assert time_value(default_pool, "明天开会", reference_time=evening_in_london)["start"] == (
        "2024-03-17T00:00:00+08:00")
    assert time_value(default_pool, "明天开会", reference_time=evening_in_london, timezone="Europe/London")[
        "start"] == "2024-03-16T00:00:00+00:00"
    late = datetime(2024, 3, 15, 23, 30)
    assert time_value(default_pool, "明天开会", reference_time=late, timezone="Europe/London")["start"] == (
        "2024-03-16T00:00:00+00:00")
    assert default_pool.reference(late, "Europe/London").isoformat() == "2024-03-15T23:30:00+00:00"


def test_the_call_s_zone_wins_then_the_pool_s_then_the_environment_s(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv(TIMEZONE_ENV, "Europe/Paris")
    with RaNERModelPool(tiny_model_dir, pool_size=1, extra_types=("TIME",)) as pool:
        assert pool.timezone == pool.config.timezone == "Europe/Paris"
        assert rule_time_value(pool, DESIGN_SENTENCE)["start"] == "2023-11-02T20:00:00+01:00"
    with RaNERModelPool(tiny_model_dir, pool_size=1, extra_types=("TIME",), timezone="America/New_York") as pool:
        assert rule_time_value(pool, DESIGN_SENTENCE)["timezone"] == "America/New_York"
        assert rule_time_value(pool, DESIGN_SENTENCE, timezone="Asia/Shanghai") == {
            "kind": "point", "start": "2023-11-02T20:00:00+08:00", "end": "2023-11-02T20:59:59+08:00",
            "grain": "hour", "timezone": "Asia/Shanghai"}


@pytest.mark.parametrize("name", ["Mars/Olympus", "+08:00", "", "../../etc/passwd"])
def test_an_unknown_zone_is_a_raner_error_naming_it(
    default_pool: RaNERModelPool, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str,
):
    with pytest.raises(RaNERError, match="time zone"):
        default_pool.predict("明天开会", timezone=name or " ")
    if name:
        with pytest.raises(RaNERError, match=re.escape(f"unknown time zone {name!r}")):
            RaNERModelPool(tiny_model_dir, pool_size=1, timezone=name)
        monkeypatch.setenv(TIMEZONE_ENV, name)
        with pytest.raises(RaNERError, match=re.escape(f"{TIMEZONE_ENV}: unknown time zone {name!r}")):
            RaNERModelPool(tiny_model_dir, pool_size=1)


def test_a_registry_entry_names_its_zone_and_a_wrong_one_is_refused_at_load(tmp_path: Path):
    registry = tmp_path / "models.toml"
    registry.write_text('[models.a]\ntimezone = "Europe/London"\n\n[models.b]\n', encoding="utf-8")
    assert [spec.timezone for spec in load_specs(registry)] == ["Europe/London", ""]
    registry.write_text('[models.a]\ntimezone = "Beijing"\n', encoding="utf-8")
    with pytest.raises(RegistryConfigError, match=re.escape("models.a.timezone: unknown time zone 'Beijing'")):
        load_specs(registry)
