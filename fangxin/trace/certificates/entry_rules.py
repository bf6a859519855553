"""Entry-check rules as data (entry_rules.toml): external certificates, proofs, fitting tests."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RULES_FILE = Path(__file__).with_name("entry_rules.toml")


@dataclass(frozen=True, slots=True)
class Category:
    """A food category of entry checks and the rapid-test items that may admit its lots."""

    key: str
    name: str
    aliases: tuple[str, ...]
    items: frozenset[str]
    source: str


@dataclass(frozen=True, slots=True)
class Fit:
    """Whether a test item may admit a lot of a category, and the rule's source."""

    fits: bool
    category: Category | None
    item: str

    def record(self) -> dict[str, Any]:
        """Return what an entry keeps of the rule it was decided by (the table may change)."""
        cat = self.category
        return {
            "item": self.item,
            "category": cat.name if cat else None,
            "fits": self.fits,
            "source": cat.source if cat else None,
        }


@functools.cache
def rules() -> dict[str, Any]:
    """Return the packaged rules file."""
    with RULES_FILE.open("rb") as fh:
        return tomllib.load(fh)


@functools.cache
def categories() -> dict[str, Category]:
    """Return the categories by every alias (and by name)."""
    out: dict[str, Category] = {}
    for row in rules()["categories"]:
        cat = Category(
            row["key"], row["name"], tuple(row["aliases"]), frozenset(row["items"]), row["source"]
        )
        for alias in (cat.name, *cat.aliases):
            out[alias] = cat
    return out


def category_of(name: str | None) -> Category | None:
    """Return the category a sender's name stands for, or None when the table lacks it."""
    return categories().get(name.strip()) if name else None


def fit(category: str | None, item: str) -> Fit:
    """Tell whether a rapid-test item may admit a lot of this category."""
    cat = category_of(category)
    return Fit(cat is not None and item in cat.items, cat, item)


def proof_types() -> dict[str, dict[str, str]]:
    """Return the kinds of other proofs (code -> name, source)."""
    found: dict[str, dict[str, str]] = rules()["proof_types"]
    return found


def rule(name: str) -> dict[str, str]:
    """Return a named rule (external_certificate, no_certificate) with its source."""
    found: dict[str, str] = rules()[name]
    return found
