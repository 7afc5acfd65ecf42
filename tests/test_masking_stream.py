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
