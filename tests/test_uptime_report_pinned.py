"""The uptime report's full output, both clocks, several windows and filters, as stored.

tests/data/uptime_report.json was written by the code before the business-hours speed work
(issue 17) with tests.uptime_scenario.write_golden; a faster report must answer the same.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tests.uptime_scenario import golden, reports, seed


def _differences(want: Any, got: Any, path: str = "") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}/{k}: missing or extra" for k in set(want) ^ set(got)]
        for key in sorted(set(want) & set(got)):
            out += _differences(want[key], got[key], f"{path}/{key}")
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for n, (w, g) in enumerate(zip(want, got, strict=True)) for d in
                _differences(w, g, f"{path}[{n}]")]  # fmt: skip
    return [] if want == got else [f"{path}: {want!r} != {got!r}"]


def test_report_output_is_unchanged(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    want = golden()
    assert len(want) == 22
    got = reports(sessions)
    assert _differences(want, got)[:10] == []
    assert got == want


def test_differences_names_what_changed() -> None:
    want = {"a": [{"uptime": 0.5}], "b": 1}
    assert _differences(want, {"a": [{"uptime": 0.25}], "b": 1}) == ["/a[0]/uptime: 0.5 != 0.25"]
    assert _differences(want, {"a": [], "b": 1}) == ["/a: [{'uptime': 0.5}] != []"]
