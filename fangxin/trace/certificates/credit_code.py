"""The unified social credit code (统一社会信用代码, GB 32100-2015) of a 承诺主体."""

from __future__ import annotations

# GB 32100-2015: 统一社会信用代码 alphabet (no I, O, S, V, Z) and position weights.
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_check_char(body: str) -> str:
    """Return the check character of the first 17 characters of a credit code."""
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(body, CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def check_credit_code(text: str) -> str:
    """Return the code upper-cased, or raise ValueError when it is not a valid credit code."""
    code = text.strip().upper()
    if len(code) != 18 or any(c not in CREDIT_ALPHABET for c in code):
        raise ValueError("a unified social credit code has 18 characters of GB 32100")
    if credit_check_char(code[:17]) != code[17]:
        raise ValueError("the unified social credit code's check character is wrong")
    return code
