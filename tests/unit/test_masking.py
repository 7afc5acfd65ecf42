"""runner.masking.Masker on whole texts: plain, URL-encoded, base64 (every alignment, standard and
URL-safe, wrapped over lines) and per-line forms of a secret; the minimum length; mapping keys."""

from __future__ import annotations

import base64
import random
import textwrap
import urllib.parse
from collections.abc import Callable

import pytest

from runner.masking import MASK, MIN_LENGTH, Masker, variants

SECRET = "ghp_Zq8+/s3cr3t value?&=42"


def _random_text(rng: random.Random, alphabet: str, most: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, most)))


def test_a_secret_is_replaced_wherever_it_occurs() -> None:
    masker = Masker([SECRET])
    assert masker.mask(f"token={SECRET}; again {SECRET}.") == "token=***; again ***."


def test_text_without_a_secret_is_returned_unchanged() -> None:
    masker = Masker([SECRET])
    text = "nothing to see here: ghp_ s3cr3t value 42\n"
    assert masker.mask(text) == text
    assert masker.mask("") == ""


def test_a_masker_without_secrets_changes_nothing() -> None:
    masker = Masker()
    assert masker.mask("any text") == "any text"
    assert masker.longest == 0 and masker.longest_bytes == 0
    assert masker.byte_pattern() is None
    assert not masker.wraps


def test_values_shorter_than_the_minimum_length_are_not_masked() -> None:
    short = "x" * (MIN_LENGTH - 1)
    masker = Masker([short])
    assert masker.mask(f"a {short} b") == f"a {short} b"
    assert variants(short) == set()
    long_enough = "y" * MIN_LENGTH
    assert Masker([long_enough]).mask(f"a {long_enough} b") == "a *** b"


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: urllib.parse.quote(s, safe=""),
        lambda s: urllib.parse.quote_plus(s, safe=""),
        urllib.parse.quote,
    ],
    ids=["quote", "quote_plus", "quote-keeping-slash"],
)
def test_url_encoded_forms_are_masked(encode: Callable[[str], str]) -> None:
    encoded = encode(SECRET)
    assert encoded != SECRET  # the secret has characters that URL encoding changes
    assert Masker([SECRET]).mask(f"https://host/?t={encoded}&x=1") == "https://host/?t=***&x=1"


def test_base64_of_data_containing_the_secret_is_masked_at_every_alignment() -> None:
    masker = Masker([SECRET])
    rng = random.Random(3)
    for offset in range(9):
        prefix = bytes(rng.randrange(256) for _ in range(offset))
        data = prefix + SECRET.encode() + b"\n"
        for encoded in (base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode()):
            masked = masker.mask(encoded)
            assert MASK in masked, (offset, encoded)
            # What is left cannot spell out the run of base64 groups made of the secret's bytes.
            assert not any(form in masked for form in variants(SECRET)), (offset, masked)


def test_base64_wrapped_over_lines_by_its_encoder_is_masked() -> None:
    masker = Masker([SECRET * 3])
    assert masker.wraps
    data = b"config: user=someone; token=" + (SECRET * 3).encode() + b"\n"
    for width in (76, 64, 20):
        wrapped = "\n".join(textwrap.wrap(base64.b64encode(data).decode(), width)) + "\n"
        masked = masker.mask(wrapped)
        assert MASK in masked, width
        assert len(masked.replace("\n", "")) < len(wrapped.replace("\n", "")) - 20, width


def test_random_base64_without_the_secret_is_left_alone() -> None:
    masker = Masker([SECRET])
    rng = random.Random(11)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        encoded = base64.b64encode(data).decode()
        assert masker.mask(encoded) == encoded


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own() -> None:
    key = "-----BEGIN KEY-----\n  MIIEowIBAAKCAQEA  \nabcdefghij\n-----END KEY-----"
    masker = Masker([key])
    assert masker.mask(key) == MASK
    assert masker.mask("echo MIIEowIBAAKCAQEA") == "echo ***"  # found stripped of its indentation
    assert masker.mask("line: abcdefghij.") == "line: ***."
    assert masker.mask("-----END KEY-----") == MASK


def test_the_longest_form_wins_over_a_secret_inside_it() -> None:
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.mask("xabcdefghx abcdx") == "x***x ***x"


def test_adding_a_secret_later_masks_it_from_then_on() -> None:
    masker = Masker(["first-secret"])
    assert masker.mask("second-secret") == "second-secret"
    masker.add("second-secret")
    assert masker.mask("first-secret second-secret") == "*** ***"
    assert masker.longest >= len("second-secret")


def test_longest_counts_bytes_separately_for_non_ascii_secrets() -> None:
    secret = "ключ-секрет"
    masker = Masker([secret])
    assert masker.longest_bytes >= len(secret.encode()) > len(secret)
    # Its longest form is the URL-encoded one, all ASCII: as many bytes as characters.
    assert masker.longest == masker.longest_bytes == len(urllib.parse.quote(secret, safe=""))
    assert masker.mask("the ключ-секрет here") == "the *** here"


def test_every_generated_secret_is_masked_in_every_form() -> None:
    rng = random.Random(5)
    alphabet = "abcXYZ019+/=?&% -_.~"
    for _ in range(150):
        secret = "".join(rng.choice(alphabet) for _ in range(rng.randrange(MIN_LENGTH, 24))).strip()
        if len(secret) < MIN_LENGTH:
            continue
        masker = Masker([secret])
        around = _random_text(rng, "qrs \n", 10)
        for form in (secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret, safe="")):
            masked = masker.mask(around + form + around)
            assert form not in masked and MASK in masked, (secret, form)


def test_mask_value_masks_strings_in_nested_values_and_mapping_keys() -> None:
    masker = Masker(["supersecretvalue"])
    value = {
        "supersecretvalue": "1",
        "nested": {"list": ["a supersecretvalue", 3, None], "tuple": ("supersecretvalue",)},
        7: True,
    }
    assert masker.mask_value(value) == {
        "***": "1",
        "nested": {"list": ["a ***", 3, None], "tuple": ["***"]},
        7: True,
    }


def test_mask_value_passes_non_strings_through() -> None:
    masker = Masker(["supersecretvalue"])
    assert masker.mask_value(12) == 12
    assert masker.mask_value(None) is None
    assert masker.mask_value(b"supersecretvalue") == b"supersecretvalue"  # bytes are not text


def test_unfinished_finds_where_a_secret_may_begin_at_the_end() -> None:
    masker = Masker(["hunter22"])
    assert masker.unfinished(b"hello hun") == len(b"hello ")
    assert masker.unfinished(b"hello") == len(b"hello")
    assert masker.unfinished(b"hello hunter22") == len(b"hello hunter22")  # complete: nothing to hold
    assert masker.unfinished(b"") == 0
