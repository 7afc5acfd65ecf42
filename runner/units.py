"""Parsing of the human units used in pipelines: durations (`30s`, `20m`, `1h30m`) and sizes (`4g`)."""

from __future__ import annotations

import re

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$|^[0-9]+(\.[0-9]+)?$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([kmgt]?)(i?)(b?)$")
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_duration(text: str | float) -> float:
    """Return a duration in seconds: `500ms`, `30s`, `20m`, `2h`, `1h30m`, `1d`; a bare number is seconds.

    Raises ValueError for anything else (the schema's `duration` pattern accepts the same forms).
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, (int, float)):
        return float(text)
    value = text.strip()
    if not re.fullmatch(DURATION_PATTERN, value):
        raise ValueError(f"{text!r} is not a duration (use e.g. 30s, 20m, 2h)")
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return float(value)
    return sum(float(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(value))


def parse_size(text: str | int) -> int:
    """Return a size in bytes: `512m`, `4g`, `4GiB`, `1024` (bytes); k/m/g/t are powers of 1024 as in Docker.

    Raises ValueError for anything else.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a size")
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a size (use e.g. 512m, 4g)")
    number, unit = float(match.group(1)), match.group(2)
    return int(number * 1024 ** _POWERS[unit])


def format_duration(seconds: float) -> str:
    """Render seconds for people: `0.42s`, `12.3s`, `4m05s`, `1h02m`."""
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
