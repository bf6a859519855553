"""The plan's targets as data (targets.toml): clause, quote, definition, sources and goals."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGETS_FILE = Path(__file__).with_name("targets.toml")


@dataclass(frozen=True, slots=True)
class Target:
    """One figure regulators report, with where its rule and data come from."""

    code: str
    name: str
    clause: str
    quote: str
    definition: str
    numerator: str
    denominator: str
    unit: str
    goals: dict[int, float]
    goal: float | None
    due: int | None
    local: bool
    imported: bool
    count: bool
    continues: bool
    lower_is_better: bool
    categories: tuple[str, ...]

    def goal_for(self, year: int, last_year: int) -> tuple[float | None, bool]:
        """Return the year's goal and whether it is a local one (set locally or past the plan)."""
        goal = self.goals.get(year, self.goal)
        if self.goals and year > max(self.goals):
            goal = self.goals[max(self.goals)]  # the last year's level is what continues
        if year > last_year:
            return (goal, True) if self.continues else (None, self.local)
        return goal, self.local


@dataclass(frozen=True, slots=True)
class Plan:
    """The plan's identity and its targets in display order."""

    title: str
    short: str
    first_year: int
    last_year: int
    after: str
    targets: tuple[Target, ...]

    def target(self, code: str) -> Target:
        """Return a target by its code."""
        return next(t for t in self.targets if t.code == code)


def _target(code: str, raw: dict[str, Any]) -> Target:
    return Target(
        code=code,
        name=raw["name"],
        clause=raw["clause"],
        quote=raw["quote"],
        definition=raw["definition"],
        numerator=raw["numerator"],
        denominator=raw["denominator"],
        unit=raw["unit"],
        goals={int(y): float(g) for y, g in raw.get("goals", {}).items()},
        goal=raw.get("goal"),
        due=raw.get("due"),
        local=bool(raw.get("local", False)),
        imported=bool(raw.get("import", False)),
        count=bool(raw.get("count", False)),
        continues=bool(raw.get("continues", False)),
        lower_is_better=bool(raw.get("lower_is_better", False)),
        categories=tuple(raw.get("categories", ())),
    )


@functools.cache
def plan() -> Plan:
    """Return the packaged plan and targets."""
    with TARGETS_FILE.open("rb") as fh:
        raw = tomllib.load(fh)
    head = raw["plan"]
    return Plan(
        title=head["title"],
        short=head["short"],
        first_year=head["first_year"],
        last_year=head["last_year"],
        after=head["after"],
        targets=tuple(_target(code, t) for code, t in raw["targets"].items()),
    )


def imported_codes() -> frozenset[str]:
    """Return the codes whose figures are only imported (plus entered lots for 查验率)."""
    return frozenset({t.code for t in plan().targets if t.imported} | {"entered_lots"})
