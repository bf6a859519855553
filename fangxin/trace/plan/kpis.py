"""KPIs per district and year against the plan: each with clause, definition and sources."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fangxin.trace.plan import sources
from fangxin.trace.plan.camera_time import SiteSeconds, site_seconds
from fangxin.trace.plan.city import city_rows
from fangxin.trace.plan.populations import CITY
from fangxin.trace.plan.rows import NO_DATA, NOT_IMPORTED, Kpi
from fangxin.trace.plan.targets import Plan, plan


def year_window(year: int, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """Return the local calendar year's bounds."""
    zone = ZoneInfo(tz)
    return dt.datetime(year, 1, 1, tzinfo=zone), dt.datetime(year + 1, 1, 1, tzinfo=zone)


def _ratio(n: float | None, d: float | None) -> float | None:
    return round(n / d, 6) if n is not None and d else None


def camera_groups(seconds: dict[str, SiteSeconds]) -> dict[str, tuple[float, float]]:
    """Sum sites' counted and online camera seconds per district."""
    out: dict[str, tuple[float, float]] = {}
    for s in seconds.values():
        total, online = out.get(s.district, (0.0, 0.0))
        out[s.district] = (total + s.total_s, online + s.online_s)
    return out


def internet_covered(
    seconds: dict[str, SiteSeconds],
    connected: list[tuple[str, str, str, str]],
    wanted: tuple[str, ...],
    share: float,
) -> dict[str, int]:
    """Count per district the licences of the categories with a site online >= share of hours."""
    covered: dict[str, str] = {}
    for site_id, licence_no, category, district in connected:
        s = seconds.get(site_id)
        if category in wanted and s is not None and s.share is not None and s.share >= share:
            covered[licence_no] = district  # a licence with two connected sites counts once
    out: dict[str, int] = {}
    for district in covered.values():
        out[district] = out.get(district, 0) + 1
    return out


def kpis(
    session: Session,
    year: int,
    now: dt.datetime,
    *,
    tz: str,
    district: str | None,
    share: float,
) -> list[Kpi]:
    """Return every district's KPIs for the year (cut at now), in a fixed number of queries."""
    p = plan()
    start, end = year_window(year, tz)
    end = max(start, min(end, now))
    last_day = (end - dt.timedelta(microseconds=1)).astimezone(ZoneInfo(tz)).date()
    period = f"{start.date()}至{last_day}"
    pops = sources.populations(session)
    sampled = sources.sampling(session, year, district)
    tests = sources.rapid_tests(session, start, end, district)
    checks = sources.entries(session, start, end, district)
    licences = sources.licences(session, last_day, district)
    imported = sources.imported(session, year, district)
    hours = sources.followup_hours(session, start, end, district)
    seconds = site_seconds(session, start, end, now, tz=tz, business_hours=True, district=district)
    cameras = camera_groups(seconds)
    connected = sources.connections(session, district)
    internet = internet_covered(seconds, connected, p.target("internet_mclz").categories, share)
    out: list[Kpi] = []

    def add(
        code: str,
        d: str,
        num: float | None,
        den: float | None,
        value: float | None | str = "ratio",
        missing: str | None = None,
        note: str = "",
    ) -> None:
        target = p.target(code)
        goal, local = target.goal_for(year, p.last_year)
        figure = _ratio(num, den) if value == "ratio" else value
        assert not isinstance(figure, str)
        out.append(Kpi(d, target, period, num, den, figure, goal, local, missing, note))

    for d in sources.districts(session, district, year):
        pop = pops.get(d)
        population = pop.population if pop else None
        batches = sampled.get(d)
        add(
            "sampling_per_1000",
            d,
            batches,
            population / 1000 if population else None,
            value=round(batches / population * 1000, 3)
            if batches is not None and population
            else None,
            missing=NOT_IMPORTED if batches is None else (None if population else "人口未导入"),
            note="" if pop is None or pop.confirmed else "人口未核实（本地设置）",
        )
        n, negatives = tests.get(d, (0, 0))
        add("rapid_tests", d, n, None, value=float(n))
        add("negative_rate", d, negatives, n, missing=None if n else NO_DATA)
        by_category = licences.get(d, {})
        for code in ("mclz", "internet_mclz", "small_mclz", "school_mclz"):
            target = p.target(code)
            count, covered = sources.licensed_sum(by_category, target.categories)
            if code == "internet_mclz":
                covered = internet.get(d, 0)
            add(code, d, covered, count, missing=None if count else NOT_IMPORTED)
        lots, decided, on_cert = checks.get(d, (0, 0, 0))
        entered = imported.get(("entered_lots", d))
        add("entry_completion", d, decided, lots, missing=None if lots else NO_DATA)
        add(
            "entry_rate",
            d,
            lots,
            entered.numerator if entered else None,
            missing=None if entered else NOT_IMPORTED,
        )
        add("certificate_rate", d, on_cert, lots, missing=None if lots else NO_DATA)
        total, online = cameras.get(d, (0.0, 0.0))
        add(
            "online_rate",
            d,
            round(online / 3600, 2),
            round(total / 3600, 2),
            value=_ratio(online, total),
            missing=None if total else NO_DATA,
            note="时长单位：小时",
        )
        for code in (
            "six_s",
            "training",
            "workshop_six_s",
            "demo_street",
            "quick_test_rooms",
            "smart_markets",
        ):
            figure = imported.get((code, d))
            if figure is None:
                add(code, d, None, None, missing=NOT_IMPORTED)
            elif p.target(code).count:
                add(
                    code,
                    d,
                    figure.numerator,
                    None,
                    value=figure.numerator,
                    note=f"来源：{figure.source}",
                )
            else:
                add(code, d, figure.numerator, figure.denominator, note=f"来源：{figure.source}")
        to_notice, to_close = hours.get(d, (None, None))
        for code, value in (("notice_hours", to_notice), ("disposal_hours", to_close)):
            add(
                code,
                d,
                None,
                None,
                value=None if value is None else round(value, 2),
                missing=None if value is not None else NO_DATA,
            )
    if district is None:
        city = pops.get(CITY)
        out = city_rows(out, city.population if city else None) + out
    return out


def plan_note(p: Plan, year: int) -> str:
    """Return the line that says what the year's targets are (the plan's, or continued ones)."""
    if year > p.last_year:
        return p.after
    return f"目标来源：{p.title}"
