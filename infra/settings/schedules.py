"""Schedule expressions and time zones, as EventBridge Scheduler accepts them.

Shared by scheduled retraining, the drift monitor's settings and the drift monitor
component (which checks its own arguments with the same rules).
"""

from __future__ import annotations

import re
import zoneinfo

from infra.settings.base import shown

_CRON_FIELD = re.compile(r"^[0-9A-Z*?,/#LW-]+$")
_RATE = re.compile(r"^rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")


def schedule_problem(expression: str) -> str | None:
    """Why `expression` is not an EventBridge Scheduler expression, or None.

    Forms (EventBridge Scheduler user guide, "Schedule types"): rate(<positive> <unit>),
    at(yyyy-mm-ddThh:mm:ss), cron(minutes hours day-of-month month day-of-week year) with
    `?` in exactly one of the two day fields.
    """
    if _RATE.match(expression) or _AT.match(expression):
        return None
    if expression.startswith("rate("):
        return f"must be rate(<positive whole number> minutes|hours|days), got {shown(expression)}"
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) != 6 or not all(_CRON_FIELD.match(f.upper()) for f in fields):
            return (
                "cron(...) needs 6 fields (minutes hours day-of-month month day-of-week year), "
                f"e.g. cron(0 3 ? * SUN *), got {shown(expression)}"
            )
        if (fields[2] == "?") == (fields[4] == "?"):
            return (
                "cron(...) needs ? in exactly one of day-of-month and day-of-week, "
                f"got {shown(expression)}"
            )
        return None
    return f"must be cron(...), rate(...) or at(...), got {shown(expression)}"


def is_timezone(name: str) -> bool:
    """Whether `name` is an IANA time zone (the zone database Python ships or finds)."""
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return True
