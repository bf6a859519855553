"""A KPI row: one district's figure against its target for a period."""

from __future__ import annotations

from dataclasses import dataclass

from fangxin.trace.plan.targets import Target

NOT_IMPORTED = "未导入"
NO_DATA = "无数据"


@dataclass(frozen=True, slots=True)
class Kpi:
    """One district's figure against its target for a period."""

    district: str
    target: Target
    period: str
    numerator: float | None
    denominator: float | None
    value: float | None
    goal: float | None
    local: bool
    missing: str | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the figure reaches its goal (None when either is missing)."""
        if self.goal is None or self.value is None:
            return None
        if self.target.lower_is_better:
            return self.value <= self.goal
        return self.value >= self.goal
