"""runner.outputs.parse_outputs: `$PIPE_OUTPUT` in GitHub Actions' format, `name=value` and
`name<<DELIMITER` heredocs, and the one-line errors naming the line of a malformed file."""

from __future__ import annotations

import random

import pytest

from runner.outputs import MAX_OUTPUT_BYTES, OutputError, parse_outputs


def test_name_value_lines() -> None:
    assert parse_outputs("greeting=Hello, world!\ncount=3\n") == {"greeting": "Hello, world!", "count": "3"}


def test_the_value_is_everything_after_the_first_equals_sign() -> None:
    assert parse_outputs("url=https://x/?a=1&b=2\nempty=\n") == {"url": "https://x/?a=1&b=2", "empty": ""}


def test_a_heredoc_keeps_its_lines_without_the_final_line_end() -> None:
    text = "body<<EOF\nline one\n\n  indented = kept\nEOF\nafter=1\n"
    assert parse_outputs(text) == {"body": "line one\n\n  indented = kept", "after": "1"}


def test_an_empty_heredoc_is_an_empty_value() -> None:
    assert parse_outputs("x<<END\nEND\n") == {"x": ""}


def test_only_a_line_equal_to_the_delimiter_closes_a_heredoc() -> None:
    text = "notes<<EOF\nEOF is mentioned\n EOF\nEOF2\nEOF\n"
    assert parse_outputs(text) == {"notes": "EOF is mentioned\n EOF\nEOF2"}


def test_equals_before_the_heredoc_marker_makes_a_plain_value() -> None:
    assert parse_outputs("a=b<<c\n") == {"a": "b<<c"}


def test_a_heredoc_marker_before_an_equals_sign_starts_a_heredoc() -> None:
    assert parse_outputs("a<<X=Y\nv\nX=Y\n") == {"a": "v"}


def test_windows_line_ends_are_accepted() -> None:
    assert parse_outputs("a=1\r\nb<<EOF\r\nx\r\nEOF\r\n") == {"a": "1", "b": "x"}


def test_blank_lines_are_skipped_and_a_later_value_replaces_an_earlier_one() -> None:
    assert parse_outputs("\n  \na=1\n\na=2\n") == {"a": "2"}


def test_an_empty_file_has_no_outputs() -> None:
    assert parse_outputs("") == {}


@pytest.mark.parametrize("name", ["a", "_x", "Step.out", "kebab-case", "n0_9"])
def test_names_that_are_accepted(name: str) -> None:
    assert parse_outputs(f"{name}=v") == {name: "v"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just words\n", "line 1: expected name=value or name<<DELIMITER"),
        ("ok=1\n\n bad\n", "line 3: expected name=value or name<<DELIMITER"),
        ("1a=2\n", "line 1: invalid output name '1a'"),
        ("=x\n", "line 1: invalid output name ''"),
        ("has space=1\n", "line 1: invalid output name 'has space'"),
        ("a<<\nb\n", "line 1: empty heredoc delimiter"),
        ("a=1\nb<<EOF\nx\n", "line 2: heredoc for 'b' is not closed by 'EOF'"),
    ],
)
def test_malformed_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(OutputError) as raised:
        parse_outputs(text)
    assert str(raised.value) == message


def test_an_invalid_heredoc_name_is_refused() -> None:
    with pytest.raises(OutputError, match=r"^line 2: invalid output name 'bad name'$"):
        parse_outputs("ok=1\nbad name<<EOF\nv\nEOF\n")


def test_an_output_error_is_a_value_error() -> None:
    assert issubclass(OutputError, ValueError)


def test_files_over_the_limit_are_refused_before_parsing() -> None:
    with pytest.raises(OutputError, match=f"outputs exceed {MAX_OUTPUT_BYTES} bytes"):
        parse_outputs("a=" + "x" * MAX_OUTPUT_BYTES)
    assert parse_outputs("a=" + "x" * (MAX_OUTPUT_BYTES - 2)) == {"a": "x" * (MAX_OUTPUT_BYTES - 2)}


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    value = "é" * (MAX_OUTPUT_BYTES // 2)  # as many characters as half the limit, all of its bytes
    with pytest.raises(OutputError, match="outputs exceed"):
        parse_outputs("a=" + value)


def test_generated_outputs_written_either_way_read_back() -> None:
    rng = random.Random(4)
    alphabet = "abc XYZ=<>#\t'\"é"
    for _ in range(200):
        expected: dict[str, str] = {}
        lines: list[str] = []
        for index in range(rng.randrange(1, 6)):
            name = f"out_{index}"
            if rng.random() < 0.5:
                value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
                lines.append(f"{name}={value}")
            else:
                body = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(3)]
                value = "\n".join(body)
                lines += [f"{name}<<DELIM_{index}", *body, f"DELIM_{index}"]
            expected[name] = value
        assert parse_outputs("\n".join(lines) + "\n") == expected
