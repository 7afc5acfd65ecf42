"""runner.units: durations and sizes as pipelines write them, and durations shown to people."""

from __future__ import annotations

import pytest

from runner.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("20m", 1200.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1m30s250ms", 90.25),
        ("1.5h", 5400.0),
        ("0.5s", 0.5),
        ("45", 45.0),
        ("2.5", 2.5),
        ("  10s  ", 10.0),
        (7, 7.0),
        (1.25, 1.25),
    ],
)
def test_durations_are_parsed_to_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "10x", "1h 30m", "-5s", "ten", "1.s", "h1", "10S"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_a_boolean_is_not_a_duration_although_it_is_an_int() -> None:
    with pytest.raises(ValueError, match="True is not a duration"):
        parse_duration(True)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("1k", 1024),
        ("512m", 512 * 1024**2),
        ("4g", 4 * 1024**3),
        ("4G", 4 * 1024**3),
        ("4GiB", 4 * 1024**3),
        ("4gb", 4 * 1024**3),
        ("1t", 1024**4),
        ("1.5k", 1536),
        ("0", 0),
        (" 2m ", 2 * 1024**2),
        (4096, 4096),
    ],
)
def test_sizes_are_parsed_to_bytes_in_powers_of_1024(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "g", "4x", "4 g", "-1k", "4p", "1kk"])
def test_malformed_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_a_boolean_is_not_a_size() -> None:
    with pytest.raises(ValueError, match="False is not a size"):
        parse_size(False)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0.00s"),
        (0.42, "0.42s"),
        (9.999, "10.00s"),
        (10, "10.0s"),
        (12.34, "12.3s"),
        (59.9, "59.9s"),
        (60, "1m00s"),
        (245, "4m05s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (3720, "1h02m"),
        (90000, "25h00m"),
    ],
)
def test_durations_are_shown_in_the_largest_fitting_unit(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_every_formatted_whole_minute_duration_parses_back() -> None:
    for seconds in range(60, 3600, 7):
        minutes, secs = format_duration(seconds).rstrip("s").split("m")
        assert parse_duration(f"{int(minutes)}m{int(secs)}s") == seconds
