"""The scan pages' change feed: what a page shows is logged on every write, and workers follow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from fangxin.config import Settings
from fangxin.db import make_reader, utcnow
from fangxin.service.app import create_app
from fangxin.service.caches import PageCache
from fangxin.trace.certificates.models import Certificate, CertificateScan, PageChange
from fangxin.trace.certificates.page_changes import PageChanges, changes_since, prune
from tests.helpers import counted
from tests.trace_helpers import auth, issue, key, market, post_results, result, setup

Write = Callable[[FlaskClient, sessionmaker[Session], dict[str, Any]], None]


def _sql(*statements: str) -> Write:
    def write(_client: FlaskClient, sessions: sessionmaker[Session], _cert: dict[str, Any]) -> None:
        with sessions.begin() as session:
            for statement in statements:
                session.execute(text(statement))

    return write


def _scan(signed_in: bool) -> Write:
    def write(_client: FlaskClient, sessions: sessionmaker[Session], cert: dict[str, Any]) -> None:
        with sessions.begin() as session:
            cert_id = session.scalar(select(Certificate.id).where(Certificate.code == cert["code"]))
            now = utcnow()
            session.add(
                CertificateScan(
                    certificate_id=cert_id,
                    day=now.date(),
                    visitor="v-1",
                    site_id="m-001" if signed_in else "",
                    signed_in=signed_in,
                    first_at=now,
                    last_at=now,
                )
            )

    return write


def _entry(client: FlaskClient, sessions: sessionmaker[Session], cert: dict[str, Any]) -> None:
    body = {"certificate": cert["code"], "product": "菠菜", "quantity": 5, "unit": "kg"}
    lab = key(sessions, "lab", site_id="m-001")
    assert client.post("/api/v1/sites/m-001/entries", json=body, headers=auth(lab)).status_code


def _test(_client: FlaskClient, sessions: sessionmaker[Session], cert: dict[str, Any]) -> None:
    post_results(sessions, [result("r-9", 12.5, certificate=cert["number"])])


def _recall(client: FlaskClient, sessions: sessionmaker[Session], cert: dict[str, Any]) -> None:
    regulator = key(sessions, "regulator")
    url = f"/api/v1/certificates/{cert['number']}/recall"
    assert client.post(url, json={"reason": "召回"}, headers=auth(regulator)).status_code == 201


def _edited_and_restored(table: str, column: str) -> Write:
    # Seeded tables outlive a test on PostgreSQL (they are not truncated): leave them as found.
    return _sql(
        f"UPDATE {table} SET {column} = {column} || '!'",
        f"UPDATE {table} SET {column} = substr({column}, 1, length({column}) - 1)",
    )


# (write, what the feed must say after it: "this" page, "every" page, or "none"); writes of a
# test need the lot admitted at the market first (and the test's edits, the test linked).
WRITES: dict[str, tuple[Write, str]] = {
    "a hand-edited row": (_sql("UPDATE certificates SET product = '菠菜（改）'"), "this"),
    "a void": (_sql("UPDATE certificates SET status = 'voided'"), "this"),
    "a recall": (_recall, "this"),
    "an entry check": (_entry, "this"),
    "a linked test": (_test, "this"),
    "a signed-in scan": (_scan(signed_in=True), "this"),
    "an anonymous scan": (_scan(signed_in=False), "none"),
    "a test's verdict": (_sql("UPDATE rapid_test_results SET verdict = 'suspect'"), "this"),
    "a test's tester": (_sql("UPDATE rapid_test_results SET tester = '李四'"), "none"),
    "a market's name": (_sql("UPDATE sites SET name = '新市场'"), "every"),
    "a market's hours": (_sql("UPDATE sites SET opens = '05:00'"), "none"),
    "a subject": (_sql("UPDATE subjects SET contact = '0375-7654321'"), "every"),
    "a signing key retired": (_sql("UPDATE signing_keys SET retired_at = created_at"), "every"),
    "a test item's name": (_edited_and_restored("test_items", "name_zh"), "every"),
    "a test item's method": (_edited_and_restored("test_items", "method"), "none"),
}


def feed(engine: Engine, cursor: int | None) -> PageChanges:
    """Read the feed as a web worker does."""
    with make_reader(engine).connect() as conn:
        return changes_since(conn, cursor)


@pytest.mark.parametrize("name", list(WRITES))
def test_every_write_a_page_shows_is_in_the_feed_and_no_other(
    name: str,
    client: FlaskClient,
    admin_key: str,
    sessions: sessionmaker[Session],
    engine: Engine,
) -> None:
    market(sessions)
    _, cert = setup(client, admin_key)
    write, expected = WRITES[name]
    if "test" in name:
        _entry(client, sessions, cert)
    if name.startswith("a test's"):
        _test(client, sessions, cert)
    with sessions() as session:
        cert_id = session.scalar(select(Certificate.id).where(Certificate.code == cert["code"]))
    start = feed(engine, None)
    write(client, sessions, cert)
    changes = feed(engine, start.cursor)
    assert changes.every == (expected == "every"), changes
    assert (cert_id in changes.certificates) == (expected == "this"), changes
    if engine.dialect.name == "sqlite":  # PostgreSQL may read a row twice, never miss one
        assert feed(engine, changes.cursor) == PageChanges(changes.cursor, frozenset(), False)


def test_a_write_committed_after_a_read_is_in_the_next_read(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], engine: Engine
) -> None:
    _, first = setup(client, admin_key)
    with sessions() as session:
        cert_id = session.scalar(select(Certificate.id).where(Certificate.code == first["code"]))
    start = feed(engine, None)
    with sessions() as writer:  # its row is logged now, committed after the worker's read
        writer.execute(text("UPDATE certificates SET product = '韭菜'"))
        between = feed(engine, start.cursor)
        assert cert_id not in between.certificates
        writer.commit()
    assert cert_id in feed(engine, between.cursor).certificates


def test_transactions_committing_out_of_order_are_not_missed(
    client: FlaskClient, admin_key: str, sessions: sessionmaker[Session], engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: its ids commit in order")
    secret, first = setup(client, admin_key)
    second = issue(client, secret, product="韭菜")
    with sessions() as session:
        ids = {code: id_ for code, id_ in session.execute(select(Certificate.code, Certificate.id))}
    one, two = ids[first["code"]], ids[second["code"]]
    edit = text("UPDATE certificates SET product = :p WHERE id = :id")
    start = feed(engine, None)
    with sessions() as older, sessions() as newer:
        older.execute(edit, {"p": "a", "id": one})
        newer.execute(edit, {"p": "b", "id": two})
        newer.commit()  # the later transaction commits first, the worker reads, then the older
        seen = feed(engine, start.cursor)
        assert seen.certificates == {two}
        older.commit()
    assert one in feed(engine, seen.cursor).certificates


def test_old_rows_are_pruned(sessions: sessionmaker[Session], engine: Engine) -> None:
    with sessions.begin() as session:
        session.add_all([PageChange(certificate_id=1, at_s=100.0), PageChange(at_s=2e9)])
    with make_reader(engine).connect() as conn:
        assert prune(conn, 1e9) == 1
    with sessions() as session:
        assert session.scalars(select(PageChange.at_s)).all() == [2e9]


def test_a_page_seen_before_runs_no_query_within_a_read_of_the_feed(
    client: FlaskClient, admin_key: str, settings: Settings, engine: Engine
) -> None:
    _, cert = setup(client, admin_key)
    scanner = create_app(replace(settings, scan_cache_s=3600, scan_flush_s=3600), engine)
    pages = scanner.test_client()
    with counted(engine) as first:
        assert pages.get(f"/c/{cert['code']}").status_code == 200
    with counted(engine) as again:
        assert pages.get(f"/c/{cert['code']}").status_code == 200
    assert len(first) >= 2  # the feed's first read and the label's query
    assert again == []


class Feed:
    """A feed under the test's control: returns the changes it is given, once each."""

    def __init__(self) -> None:
        self.next = PageChanges(0, frozenset(), False)
        self.reads = 0

    def __call__(self, cursor: int | None, prune_before_s: float | None) -> PageChanges:
        self.reads += 1
        out, self.next = self.next, PageChanges(self.next.cursor, frozenset(), False)
        return out


def test_a_page_rendered_across_a_read_of_the_feed_is_kept_one_ttl_only() -> None:
    changes = Feed()
    cache = PageCache(1e-9, changes)
    cache.follow()
    generation = cache.generation  # a render starts...
    changes.next = PageChanges(5, frozenset({7}), False)
    cache.follow()  # ...another thread reads the feed, which names the lot being rendered...
    cache.put("AAAA", 7, "<old>", covered=True, generation=generation)  # ...then it is put
    assert cache.get("AAAA") is None  # its ttl (here 1e-9 s) only: it may predate the change
    cache.put("BBBB", 8, "<new>", covered=True, generation=cache.generation)
    cache.put("CCCC", 9, "<reissued>", covered=False, generation=cache.generation)
    assert cache.get("BBBB") == (8, "<new>")  # kept until the feed names it
    assert cache.get("CCCC") is None  # its upstream's changes are not logged against it
    changes.next = PageChanges(6, frozenset({8}), False)
    cache.follow()
    assert cache.get("BBBB") is None
    cache.put("BBBB", 8, "<newer>", covered=True, generation=cache.generation)
    changes.next = PageChanges(7, frozenset(), True)  # a market renamed: every page
    cache.follow()
    assert cache.get("BBBB") is None
    assert changes.reads == 4  # one query a follow, none a get or put
