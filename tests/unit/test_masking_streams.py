"""ByteMasker and LineMasker: a stream cut into chunks anywhere masks exactly as the whole text
would be masked, so no secret (nor the start of one) gets through at a chunk boundary."""

from __future__ import annotations

import base64
import random
import textwrap
from collections.abc import Iterator

from runner.masking import MASK, ByteMasker, LineMasker, Masker

SECRETS = ["tok_9f8e7d6c5b4a", "another-Secret-42"]


def _chunks(data: bytes, rng: random.Random, largest: int) -> Iterator[bytes]:
    index = 0
    while index < len(data):
        step = rng.randrange(1, largest + 1)
        yield data[index : index + step]
        index += step


def _through_bytes(masker: Masker, pieces: list[bytes]) -> bytes:
    stream = ByteMasker(masker)
    return b"".join(stream.feed(piece) for piece in pieces) + stream.flush()


def _through_lines(masker: Masker, pieces: list[bytes], max_line: int = 64 * 1024) -> str:
    stream = LineMasker(masker, max_line=max_line)
    return "".join(stream.feed(piece) for piece in pieces) + stream.flush()


def _sample(rng: random.Random) -> bytes:
    before = "".join(rng.choice("ab \n") for _ in range(rng.randrange(0, 40)))
    after = "".join(rng.choice("xy\n") for _ in range(rng.randrange(0, 40)))
    return (before + rng.choice(SECRETS) + after).encode()


def test_a_secret_split_at_every_boundary_is_masked_as_in_the_whole_text() -> None:
    masker = Masker(SECRETS)
    rng = random.Random(1)
    for _ in range(40):
        data = _sample(rng)
        whole = masker.mask(data.decode())
        assert MASK in whole
        for cut in range(len(data) + 1):
            pieces = [data[:cut], data[cut:]]
            assert _through_bytes(masker, pieces) == whole.encode(), (data, cut)
            assert _through_lines(masker, pieces) == whole, (data, cut)


def test_random_chunkings_mask_as_in_the_whole_text() -> None:
    masker = Masker(SECRETS)
    rng = random.Random(2)
    for _ in range(300):
        data = _sample(rng) + _sample(rng)
        pieces = list(_chunks(data, rng, 7))
        whole = masker.mask(data.decode())
        assert _through_bytes(masker, pieces) == whole.encode()
        assert _through_lines(masker, pieces) == whole


def test_byte_by_byte_feeding_never_passes_on_the_start_of_a_secret() -> None:
    masker = Masker(SECRETS)
    stream = ByteMasker(masker)
    passed = b""
    for byte in b"log: tok_9f8e7d6c5b4a done":
        passed += stream.feed(bytes([byte]))
        assert b"tok_9" not in passed  # the secret's first bytes stay held back until it is decided
    assert passed + stream.flush() == b"log: *** done"
    assert stream.masked


def test_a_byte_masker_marks_whether_it_replaced_anything() -> None:
    stream = ByteMasker(Masker(SECRETS))
    assert stream.feed(b"nothing secret here\n") + stream.flush() == b"nothing secret here\n"
    assert not stream.masked


def test_a_byte_masker_without_secrets_passes_data_straight_through() -> None:
    stream = ByteMasker(Masker())
    assert stream.feed(b"\x00\xffbinary") == b"\x00\xffbinary"
    assert stream.flush() == b""


def test_a_byte_masker_masks_binary_content_around_a_secret() -> None:
    masker = Masker(SECRETS)
    data = bytes(range(256)) + SECRETS[0].encode() + bytes(range(255, -1, -1))
    rng = random.Random(4)
    for _ in range(50):
        out = _through_bytes(masker, list(_chunks(data, rng, 40)))
        assert out == bytes(range(256)) + MASK.encode() + bytes(range(255, -1, -1))


def test_wrapped_base64_split_anywhere_is_masked_by_both_streams() -> None:
    secret = "ghp_R3dTeamS3cretValue0123456789abcdefAB"
    masker = Masker([secret])
    rng = random.Random(6)
    for offset in range(3):
        data = b"p" * offset + b"config: token=" + secret.encode() + b"\n"
        text = ("\n".join(textwrap.wrap(base64.b64encode(data).decode(), 76)) + "\n").encode()
        whole = masker.mask(text.decode())
        assert MASK in whole
        for _ in range(30):
            pieces = list(_chunks(text, rng, 11))
            assert _through_bytes(masker, pieces) == whole.encode()
            assert MASK in _through_lines(masker, pieces)


def test_a_line_masker_passes_complete_lines_and_holds_the_partial_one() -> None:
    stream = LineMasker(Masker(SECRETS))
    assert stream.feed(b"first line\nsecond ") == "first line\n"
    assert stream.feed(b"tok_9f8e7d6c5b4a\n") == "second ***\n"
    assert stream.feed(b"tail") == ""
    assert stream.flush() == "tail"


def test_a_line_masker_holds_a_base64_looking_line_only_while_it_may_continue() -> None:
    secret = "ghp_R3dTeamS3cretValue0123456789abcdefAB"
    stream = LineMasker(Masker([secret]))
    assert stream.feed(b"started 1\nQUJDREVGR0hJSktMTU5PUFFS\n") == "started 1\n"
    assert stream.feed(b"done.\n") == "QUJDREVGR0hJSktMTU5PUFFS\ndone.\n"  # "." is not base64


def test_a_long_line_is_passed_on_early_without_the_start_of_a_secret() -> None:
    masker = Masker(SECRETS)
    rng = random.Random(8)
    for _ in range(200):
        data = (
            "y" * rng.randrange(0, 120) + SECRETS[0] + "z" * rng.randrange(0, 30) + "\n" * rng.randrange(0, 2)
        ).encode()
        max_line = rng.randrange(1, 30)
        stream = LineMasker(masker, max_line=max_line)
        out = ""
        for piece in _chunks(data, rng, 25):
            out += stream.feed(piece)
            assert SECRETS[0][:5] not in out, (data, max_line)
        out += stream.flush()
        assert out == masker.mask(data.decode())


def test_a_multi_line_secret_printed_over_lines_leaks_no_line() -> None:
    key = "-----BEGIN KEY-----\nMIIEowIBAAKCAQEA\nlastline0123\n-----END KEY-----"
    masker = Masker([key])
    data = f"before\n{key}\nafter\n".encode()
    rng = random.Random(9)
    for _ in range(100):
        out = _through_lines(masker, list(_chunks(data, rng, 9)))
        assert out.splitlines() == ["before", MASK, MASK, MASK, MASK, "after"]


def test_base64_with_a_line_end_after_every_character_is_masked_in_any_chunking() -> None:
    secret = "ghp_R3dTeamS3cretValue0123456789abcdefAB"
    masker = Masker([secret])
    encoded = base64.b64encode(b"token=" + secret.encode()).decode()
    text = "".join(character + "\r\n" for character in encoded).encode()  # the longest a match can be
    whole = masker.mask(text.decode())
    assert MASK in whole
    rng = random.Random(10)
    for _ in range(40):
        assert _through_bytes(masker, list(_chunks(text, rng, 16))) == whole.encode()
