"""Coupon codes: random enough, readable, forgiving of how they are typed, and strict about
what is wrong: every single mistyped symbol and every swap of neighbours is caught."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons import codes
from coupons.codes import ALPHABET, CodeError


def test_a_code_is_65_random_bits_and_a_letter_or_digit_check() -> None:
    made = {codes.new_code() for _ in range(5000)}
    assert len(made) == 5000
    assert all(len(c) == codes.LENGTH and set(c) <= set(ALPHABET) for c in made)
    assert codes.PAYLOAD * math.log2(32) - math.log2(37 / 32) > 64
    # every payload symbol is used evenly enough (5000 codes x 13 symbols over 32 symbols)
    counts = [sum(c[:13].count(s) for c in made) for s in ALPHABET]
    assert min(counts) > 0.8 * 65000 / 32 and max(counts) < 1.2 * 65000 / 32


def test_typing_is_forgiving_of_case_separators_and_look_alikes() -> None:
    code = codes.new_code()
    printed = codes.shown(code)
    assert printed.count("-") == 2 and printed.replace("-", "") == code
    assert codes.normalise(printed.lower()) == code
    assert codes.normalise(" ".join(code)) == code
    spoken = code.replace("1", "l").replace("0", "O")
    assert codes.normalise(spoken) == code


@given(st.data())
def test_every_single_mistyped_symbol_is_caught(data: st.DataObject) -> None:
    code = codes.new_code()
    at = data.draw(st.integers(0, codes.LENGTH - 1))
    other = data.draw(st.sampled_from([s for s in ALPHABET if s != code[at]]))
    with pytest.raises(CodeError, match="mistyped or two are swapped"):
        codes.normalise(code[:at] + other + code[at + 1 :])


@given(st.data())
def test_every_swap_of_neighbours_is_caught(data: st.DataObject) -> None:
    code = codes.new_code()
    at = data.draw(st.integers(0, codes.LENGTH - 2))
    if code[at] == code[at + 1]:
        return  # a swap of equal symbols changes nothing
    swapped = code[:at] + code[at + 1] + code[at] + code[at + 2 :]
    with pytest.raises(CodeError, match="mistyped or two are swapped"):
        codes.normalise(swapped)


def test_exhaustively_for_one_code() -> None:
    code = codes.new_code()
    for at in range(codes.LENGTH):
        for other in ALPHABET:
            if other != code[at]:
                with pytest.raises(CodeError):
                    codes.normalise(code[:at] + other + code[at + 1 :])


@pytest.mark.parametrize(
    ("typed", "reason"),
    [("", "has 14 letters and digits, this one 0"), ("ABC", "this one 3"),
     ("UUUUU-UUUUU-UUUU", "'U' is not used"), ("7KQ2M/X4D9B", "'/' is not used"),
     ("☃" * 14, "is not used"), ("A" * 10_000, "far longer")],
)  # fmt: skip
def test_what_cannot_be_a_code_says_why(typed: str, reason: str) -> None:
    with pytest.raises(CodeError, match=reason):
        codes.normalise(typed)
