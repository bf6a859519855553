"""The plan's KPIs at their edges: periods, business hours, the online share, denominators."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.db import make_engine, upgrade
from fangxin.devices.uptime import Clock, Hours, window_figures
from fangxin.trace.plan.camera_time import site_seconds
from fangxin.trace.plan.kpis import kpis
from fangxin.trace.plan.models import Population
from fangxin.trace.plan.populations import CITY, CONFIRMED, UNITS
from fangxin.trace.plan.rows import NOT_IMPORTED, Kpi
from fangxin.trace.plan.targets import plan
from tests.devices_helpers import HOUR, at, kitchen, observed, outages
from tests.plan_helpers import NOW, licence, load, seed_populations

TZ = "Asia/Shanghai"
SEED = Path("/work/shared/seed/pingdingshan-food-safety-plan-2022-2024.txt")


def figures(
    sessions: sessionmaker[Session], year: int, now: dt.datetime, share: float = 0.8
) -> dict[tuple[str, str], Kpi]:
    with sessions() as session:
        rows = kpis(session, year, now, tz=TZ, district=None, share=share)
    return {(k.district, k.target.code): k for k in rows}


def test_migration_ships_the_census_figures_it_can_source(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade(engine)
    with Session(engine) as session:
        rows = {p.district: p for p in session.scalars(select(Population))}
    engine.dispose()
    assert set(rows) == {CITY, *UNITS}
    assert {"城乡一体化示范区", "高新区"} <= set(rows)
    assert rows[CITY].population == 4_987_137
    assert rows["叶县"].population == 702_345
    assert {d for d, p in rows.items() if p.confirmed} == set(CONFIRMED)
    # Units no source confirmed ship empty and say so, rather than a made-up figure.
    assert rows["新华区"].population is None
    assert "未核实" in rows["新华区"].source
    assert "叶县第七次全国人口普查公报" in rows["叶县"].source


def test_sampling_per_1000_counts_imported_batches_inside_the_year(
    sessions: sessionmaker[Session],
) -> None:
    seed_populations(sessions)
    # 叶县 702,345 residents: 2,810 batches are 4.0009 per 1,000 (met); 2,809 are 3.9995.
    load(
        sessions,
        "sampling",
        [
            {"district": "叶县", "from": "2025-01-01", "to": "2025-06-30", "batches": 1405},
            {"district": "叶县", "from": "2025-07-01", "to": "2025-12-31", "batches": 1405},
            {"district": "叶县", "from": "2026-01-01", "to": "2026-01-31", "batches": 99},
            {"district": "新华区", "from": "2025-01-01", "to": "2025-12-31", "batches": 10},
        ],
    )
    kitchen(sessions, "k-9", ["cam-9"], district="卫东区", created=at(-HOUR))
    got = figures(sessions, 2025, NOW)
    ye = got[("叶县", "sampling_per_1000")]
    assert (ye.numerator, ye.value, ye.met) == (2810, 4.001, True)
    assert ye.target.clause == "三（一）"
    assert "4批次/千人" in ye.target.quote
    # Past 2024 the plan's goal continues only as a local one.
    assert ye.goal == 4.0
    assert ye.local is True
    assert got[("新华区", "sampling_per_1000")].missing == "人口未导入"
    weidong = got[("卫东区", "sampling_per_1000")]
    assert (weidong.value, weidong.missing, weidong.met) == (None, NOT_IMPORTED, None)
    # The city's row divides every district's batches by the city's census population.
    city = got[("全市", "sampling_per_1000")]
    assert (city.numerator, city.denominator, city.value) == (2820, 4987.137, 0.565)
    assert city.note == "仅含已导入数据的县（市、区）"  # 卫东区 imported nothing
    assert ("全市", "notice_hours") not in got  # means of districts do not add up
    # 快检 is its own figure without a goal: it never feeds the 抽检 target.
    assert got[("叶县", "rapid_tests")].goal is None


def test_mclz_coverage_counts_licensed_caterers_by_their_latest_inspection(
    sessions: sessionmaker[Session],
) -> None:
    load(
        sessions,
        "licences",
        [
            licence("L1", "中型餐饮"),
            licence("L2", "小型餐饮"),
            licence("L3", "单位食堂"),
            licence("S1", "小餐饮"),
            licence("X1", "学校（含托幼）食堂"),
        ],
    )
    load(
        sessions,
        "forms",
        [
            {
                "licence_no": "L1",
                "form": "透明玻璃",
                "accepted": "是",
                "inspected_on": "2025-12-31",
            },
            {"licence_no": "L2", "form": "video", "accepted": "是", "inspected_on": "2025-03-01"},
            {"licence_no": "L2", "form": "video", "accepted": "否", "inspected_on": "2025-06-01"},
            {"licence_no": "L3", "form": "open", "accepted": "是", "inspected_on": "2026-01-01"},
            {"licence_no": "S1", "form": "open", "accepted": "是", "inspected_on": "2025-05-05"},
        ],
    )
    got = figures(sessions, 2025, NOW)
    mclz = got[("新华区", "mclz")]
    # L1 (accepted on the year's last day) of L1, L2 (uncovered later), L3 (next year), X1;
    # the registered 小餐饮 S1 is outside the licensed denominator.
    assert (mclz.numerator, mclz.denominator, mclz.value) == (1, 4, 0.25)
    assert mclz.met is False
    assert mclz.goal == 0.9
    small = got[("新华区", "small_mclz")]
    assert (small.numerator, small.denominator, small.met) == (1, 1, True)
    school = got[("新华区", "school_mclz")]
    assert (school.numerator, school.denominator, school.local) == (0, 1, True)
    assert figures(sessions, 2026, NOW)[("新华区", "mclz")].numerator == 2
    assert got[("全市", "mclz")].value == 0.25


@pytest.mark.parametrize(("offline_s", "covered"), [(2 * HOUR, 1), (2 * HOUR + 60, 0)])
def test_internet_mclz_needs_the_online_share_of_business_hours(
    sessions: sessionmaker[Session], offline_s: int, covered: int
) -> None:
    load(sessions, "licences", [licence("C1", "中央厨房"), licence("B1", "大型餐饮")])
    # 10 business hours (10:00-20:00): 2 h offline leaves exactly 80 %, a minute more is less.
    kitchen(
        sessions, "k-1", ["cam-1"], category="中央厨房", licence="C1", opens="10:00", closes="20:00"
    )
    outages(sessions, "cam-1", (11 * HOUR, 11 * HOUR + offline_s))
    observed(sessions, (0, 24 * HOUR))
    now = at(24 * HOUR)
    got = figures(sessions, 2026, now)
    row = got[("新华区", "internet_mclz")]
    assert (row.numerator, row.denominator) == (covered, 2)  # B1 is licensed, not connected
    online = got[("新华区", "online_rate")]
    assert online.value == pytest.approx((10 * HOUR - offline_s) / (10 * HOUR), abs=1e-6)
    assert online.local is True
    assert "方案未设" in online.target.quote
    # The share is a setting: at 75 % both cases are covered.
    assert figures(sessions, 2026, now, share=0.75)[("新华区", "internet_mclz")].numerator == 1


def test_online_rate_is_time_weighted_and_leaves_out_unobserved_time(
    sessions: sessionmaker[Session],
) -> None:
    kitchen(sessions, "k-1", ["cam-1", "cam-2"], opens="00:00", closes="00:00")
    # cam-1 offline 02:00-08:00; the ingester observed only 00:00-04:00 and 06:00-12:00.
    outages(sessions, "cam-1", (2 * HOUR, 8 * HOUR))
    outages(sessions, "cam-2")  # online throughout
    observed(sessions, (0, 4 * HOUR), (6 * HOUR, 12 * HOUR))
    row = figures(sessions, 2026, at(12 * HOUR))[("新华区", "online_rate")]
    # Observed 10 h per camera; cam-1 offline 2 h + 2 h of it: online 16 of 20 h.
    assert row.value == pytest.approx(0.8, abs=1e-6)
    assert (row.numerator, row.denominator) == (16.0, 20.0)


def test_entry_rate_needs_entered_lots_and_followups_time_the_notice(
    sessions: sessionmaker[Session],
) -> None:
    from fangxin.trace.results.followup_models import Followup
    from tests.pages_helpers import seed_city

    seed_city(sessions)  # 新华区: one positive (r-1) opens a follow-up
    now = dt.datetime.now(dt.UTC)
    year = now.astimezone(ZoneInfo(TZ)).year
    got = figures(sessions, year, now)
    assert got[("新华区", "entry_rate")].missing == NOT_IMPORTED
    assert got[("新华区", "entry_completion")].target.name == "查验完成率"
    assert got[("新华区", "notice_hours")].value is None
    load(
        sessions,
        "figures",
        [{"code": "entered_lots", "district": "新华区", "year": year, "numerator": 8}],
    )
    with sessions.begin() as session:
        case = session.scalars(select(Followup)).one()
        case.notified_at = case.opened_at + dt.timedelta(hours=1, minutes=30)
    got = figures(sessions, year, now)
    rate = got[("新华区", "entry_rate")]
    assert (rate.numerator, rate.denominator, rate.missing) == (0, 8.0, None)
    assert got[("新华区", "notice_hours")].value == 1.5
    assert got[("新华区", "disposal_hours")].missing == "无数据"


def test_targets_carry_clauses_and_continue_after_the_plan_as_local() -> None:
    p = plan()
    assert p.title == "《平顶山市深化食品安全放心工程建设攻坚行动工作方案（2022—2024年）》"
    assert {t.clause for t in p.targets if not t.local} <= {
        "三（一）",
        "三（六）",
        "三（七）",
        "三（八）",
        "三（十）",
    }
    workshop = p.target("workshop_six_s")
    assert [workshop.goal_for(y, 2024) for y in (2022, 2023, 2024)] == [
        (0.7, False),
        (0.8, False),
        (0.9, False),
    ]
    assert workshop.goal_for(2025, 2024) == (0.9, True)
    assert p.target("demo_street").goal_for(2025, 2024) == (None, False)
    assert p.target("online_rate").goal_for(2023, 2024) == (0.9, True)
    if SEED.exists():  # the quotes are the plan's words (the seed text lives outside the repo)
        text = SEED.read_text(encoding="utf-8")
        assert p.title.strip("《》") in text
        assert [t.code for t in p.targets if t.clause != "—" and t.quote not in text] == []


def test_kpis_take_a_fixed_number_of_queries_whatever_the_fleet(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    seed_populations(sessions)
    load(sessions, "licences", [licence(f"L{i}", "大型餐饮") for i in range(40)])
    observed(sessions, (0, 24 * HOUR))

    def queries() -> int:
        statements: list[str] = []
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listen)
        try:
            figures(sessions, 2026, at(24 * HOUR))
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        return len(statements)

    kitchen(sessions, "k-0", ["c-0-0"], licence="L0")
    small = queries()
    for i in range(1, 40):
        kitchen(
            sessions,
            f"k-{i}",
            [f"c-{i}-{j}" for j in range(5)],
            licence=f"L{i}",
            opens="08:00" if i % 2 else None,
        )
        outages(sessions, f"c-{i}-0", (HOUR, 2 * HOUR))
    assert queries() == small
    assert small <= 16


@pytest.mark.parametrize(
    ("opens", "closes"), [("06:00", "22:00"), ("22:00", "02:00"), ("00:00", "00:00")]
)
def test_sql_business_hours_agree_with_the_uptime_clock(
    sessions: sessionmaker[Session], opens: str, closes: str
) -> None:
    kitchen(sessions, "k-1", ["cam-1"], opens=opens, closes=closes)
    spans = [(HOUR * 1.5, HOUR * 7.25), (HOUR * 20, HOUR * 27), (HOUR * 45, None)]
    outages(sessions, "cam-1", *spans)
    observed(sessions, (-HOUR, 30 * HOUR), (33 * HOUR, 60 * HOUR))
    start, now = at(-HOUR), at(50 * HOUR)
    with sessions() as session:
        got = site_seconds(session, start, at(72 * HOUR), now, tz=TZ, business_hours=True)["k-1"]
    clock = Clock.of(Hours.parse(opens, closes), TZ, start)
    w = (start.timestamp(), now.timestamp())
    offline = [
        (at(a).timestamp(), at(b if b is not None else 50 * HOUR).timestamp()) for a, b in spans
    ]
    # Registered offline at -1 h, the first message a second later (the helper's history).
    offline.append((at(-HOUR).timestamp(), at(-HOUR + 1).timestamp()))
    unknown = [(at(30 * HOUR).timestamp(), at(33 * HOUR).timestamp())]
    want = window_figures(w, offline, unknown, clock)
    assert got.offline_s == pytest.approx(want.offline_s, abs=1e-3)
    assert got.total_s == pytest.approx(want.observed_s, abs=1e-3)


@pytest.mark.parametrize(("opens", "closes"), [("06:00", "22:00"), ("22:00", "02:00")])
def test_cameras_registered_inside_the_window_count_from_registration_less_unobserved_time(
    sessions: sessionmaker[Session], opens: str, closes: str
) -> None:
    created = at(5 * HOUR + 123)
    kitchen(sessions, "k-1", ["cam-1", "cam-2"], opens=opens, closes=closes, created=created)
    outages(sessions, "cam-1", (8 * HOUR, 9.5 * HOUR), (40 * HOUR, None))
    outages(sessions, "cam-2")  # online throughout
    # Unobserved: before the registration, across it, after it, and at the end (run stale).
    observed(sessions, (-HOUR, HOUR), (2 * HOUR, 4 * HOUR), (6 * HOUR, 20 * HOUR))
    observed(sessions, (23 * HOUR, 45 * HOUR))
    start, now = at(-2 * HOUR), at(50 * HOUR)
    with sessions() as session:
        got = site_seconds(session, start, at(72 * HOUR), now, tz=TZ, business_hours=True)["k-1"]
    clock = Clock.of(Hours.parse(opens, closes), TZ, start)
    w = (created.timestamp(), now.timestamp())
    unknown = [
        (at(a).timestamp(), at(b).timestamp())
        for a, b in ((-2 * HOUR, -HOUR), (HOUR, 2 * HOUR), (4 * HOUR, 6 * HOUR))
    ]
    unknown += [(at(a).timestamp(), at(b).timestamp()) for a, b in ((20 * HOUR, 23 * HOUR),)]
    unknown.append((at(45 * HOUR).timestamp(), now.timestamp()))
    offline = [(at(8 * HOUR).timestamp(), at(9.5 * HOUR).timestamp())]
    offline.append((at(40 * HOUR).timestamp(), now.timestamp()))
    cam1 = window_figures(w, offline, unknown, clock)
    cam2 = window_figures(w, [], unknown, clock)
    assert got.devices == 2
    assert got.total_s == pytest.approx(cam1.observed_s + cam2.observed_s, abs=1e-3)
    assert got.offline_s == pytest.approx(cam1.offline_s, abs=1e-3)
    assert got.total_s < 2 * clock.measure(*w)  # the unobserved hours were left out
