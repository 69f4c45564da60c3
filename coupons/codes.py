"""Coupon codes: unguessable, short, readable, and checked as they are typed.

A code is 13 random Crockford Base32 symbols (65 bits from `secrets`) and a check symbol,
shown in groups: `7KQ2M-X4D9B-N3FR`. Crockford's alphabet has no I, L, O or U; a guest who
types I or L gets 1, O gets 0, lower case and spaces or dashes are ignored. The check is
Crockford's mod 37 over the code's value: it catches any one mistyped symbol and any two
neighbours swapped (37 is prime and divides neither a symbol's change nor 31, what a swap of
neighbours changes by). Its five extra symbols (`*~$=U`) are awkward on a coupon, so codes
whose check would need one are drawn again: the check is always a letter or digit, at a cost
of a fifth of a bit (still more than 64 random bits).
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_SYMBOLS = ALPHABET + "*~$=U"
PAYLOAD = 13  # symbols of 5 bits: 65 random bits
LENGTH = PAYLOAD + 1
GROUPS = (5, 5, 4)
_VALUE = {symbol: i for i, symbol in enumerate(ALPHABET)}
_TYPED = {**_VALUE, "I": 1, "L": 1, "O": 0}
_IGNORED = " -_.\t"


class CodeError(ValueError):
    """A typed code that cannot be one of ours, and why (for the person at the bar)."""


def check_symbol(payload: str) -> str:
    value = 0
    for symbol in payload:
        value = value * 32 + _VALUE[symbol]
    return CHECK_SYMBOLS[value % 37]


def new_code() -> str:
    """A fresh code, as stored (no separators)."""
    while True:
        payload = "".join(secrets.choice(ALPHABET) for _ in range(PAYLOAD))
        check = check_symbol(payload)
        if check in ALPHABET:
            return payload + check


def normalise(typed: str) -> str:
    """The code as stored, from what someone typed; CodeError says what is wrong with it."""
    if len(typed) > 4 * LENGTH:
        raise CodeError(f"a code has {LENGTH} letters and digits, this is far longer")
    symbols = []
    for char in typed.upper():
        if char in _IGNORED:
            continue
        if char not in _TYPED:
            raise CodeError(f"{char!r} is not used in codes (letters and digits only, no U)")
        symbols.append(ALPHABET[_TYPED[char]])
    code = "".join(symbols)
    if len(code) != LENGTH:
        raise CodeError(f"a code has {LENGTH} letters and digits, this one {len(code)}")
    if check_symbol(code[:PAYLOAD]) != code[PAYLOAD]:
        raise CodeError("the code does not add up: a symbol is mistyped or two are swapped")
    return code


def shown(code: str) -> str:
    """`7KQ2MX4D9BN3FR` as printed: `7KQ2M-X4D9B-N3FR`."""
    parts, at = [], 0
    for size in GROUPS:
        parts.append(code[at : at + size])
        at += size
    return "-".join(parts)
