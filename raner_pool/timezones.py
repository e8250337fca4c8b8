"""The time zone a text's times are read in: clock times (晚上8点) and relative ones (明天, 下周三) mean wall-clock
times where the text was written, not on the host that serves it (servers and containers run in UTC).

A zone is an IANA name (Asia/Shanghai, Europe/London). Where one is given, the first of these that is set wins:
a request's or call's own, the model's (`timezone` in its registry entry, or the pool's), `RANER_POOL_TIMEZONE`
in the environment, then `DEFAULT_TIMEZONE`: the texts these models read are mostly written in China.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from raner_pool.errors import RaNERError

DEFAULT_TIMEZONE = "Asia/Shanghai"
"""UTC+8, no daylight saving: the zone of the Chinese texts RaNER models are trained on."""
TIMEZONE_ENV = "RANER_POOL_TIMEZONE"
"""The process's zone for every pool and model that names none of its own."""


class UnknownTimezone(RaNERError):
    """A time zone name that is not in the IANA database (zoneinfo)."""


def zone(name: str) -> ZoneInfo:
    """The zone of an IANA name, or `UnknownTimezone` naming it (a fixed offset such as "+08:00" is not a zone)."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownTimezone(f"a time zone is an IANA name such as {DEFAULT_TIMEZONE!r}, not {name!r}")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # ValueError/OSError: names like "../x" or "/etc"
        raise UnknownTimezone(f"unknown time zone {name!r}; use an IANA name such as {DEFAULT_TIMEZONE!r} or "
                              "'Europe/London'") from None


def default_timezone(env: Mapping[str, str] = os.environ) -> str:
    """The process's zone: `RANER_POOL_TIMEZONE` if set (checked), else `DEFAULT_TIMEZONE`."""
    name = env.get(TIMEZONE_ENV, "").strip()
    if not name:
        return DEFAULT_TIMEZONE
    try:
        return zone(name).key
    except UnknownTimezone as error:
        raise UnknownTimezone(f"{TIMEZONE_ENV}: {error}") from None


def pick_timezone(*names: str | None) -> ZoneInfo:
    """The zone of the first name given (most specific first: a call's, then a model's), else the process's."""
    for name in names:
        if name:
            return zone(name)
    return zone(default_timezone())


def zone_name(moment: datetime) -> str:
    """The zone a moment is in, as answers name it: the IANA name, or "UTC+08:00" for a fixed offset."""
    key: str | None = getattr(moment.tzinfo, "key", None)
    return key or str(moment.tzinfo or "local")


def reference_in(tz: ZoneInfo, reference_time: datetime | None = None) -> datetime:
    """The moment relative times are resolved against, as a wall clock in `tz`: now, or `reference_time`
    (a naive one is read as a wall clock in `tz`; one with an offset is that instant, seen from `tz`)."""
    if reference_time is None:
        return datetime.now(tz)
    if not isinstance(reference_time, datetime):
        raise TypeError(f"reference_time must be a datetime, not {type(reference_time).__name__}")
    if reference_time.tzinfo is None:
        return reference_time.replace(tzinfo=tz)
    return reference_time.astimezone(tz)
