"""A long line passed on before its end never lets the start of a secret through."""

from __future__ import annotations

import random

from runner.masking import LineMasker, Masker


def test_a_secret_split_at_the_long_line_cut_is_still_masked() -> None:
    secret = "supersecretvalue"
    masker = LineMasker(Masker([secret]), max_line=10)
    text = masker.feed(b"x" * 20 + b"supers") + masker.feed(b"ecretvalue and more") + masker.flush()
    assert text == "x" * 20 + "*** and more"


def test_random_chunking_of_long_lines_never_leaks_a_prefix() -> None:
    secret = "0123456789abcdef"
    rng = random.Random(7)
    for _ in range(200):
        data = ("y" * rng.randrange(0, 200) + secret + "z" * rng.randrange(0, 50)).encode()
        masker = LineMasker(Masker([secret]), max_line=rng.randrange(1, 40))
        out = ""
        index = 0
        while index < len(data):
            step = rng.randrange(1, 30)
            out += masker.feed(data[index : index + step])
            index += step
        out += masker.flush()
        assert secret[:6] not in out and "***" in out


def test_a_secret_whose_base64_is_wrapped_over_two_lines_is_masked() -> None:
    import base64
    import textwrap

    secret = "ghp_R3dTeamS3cretValue0123456789abcdefAB"
    encoded = base64.b64encode(b"config: user=someone; token=" + secret.encode() + b"\n").decode()
    wrapped = "\n".join(textwrap.wrap(encoded, 76)) + "\n"
    masker = LineMasker(Masker([secret]))
    out = "".join(masker.feed(line.encode() + b"\n") for line in wrapped.splitlines()) + masker.flush()
    assert "***" in out
    assert secret not in base64.b64decode("".join(out.replace("***", "").split()) + "==", validate=False).decode(
        errors="replace"
    )


def test_a_plain_line_is_not_held_back() -> None:
    masker = LineMasker(Masker(["supersecretvalue"]))
    assert masker.feed(b"started 1\n") == "started 1\n"


def test_output_names_are_masked_too() -> None:
    assert Masker(["supersecretvalue"]).mask_value({"supersecretvalue": "1", "n": ["supersecretvalue"]}) == {
        "***": "1",
        "n": ["***"],
    }
