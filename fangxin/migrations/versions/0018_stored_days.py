"""Settled days' outages stored per device and per kitchen, and the triggers that date them.

Every write that can change a stored day's figures (an offline period, a device's site, kind,
state, registration or door, a site's hours or kind, a door's observed run) logs the span of
time it touches into stored_day_stale, in the database, whichever code path writes it; readers
leave a day such a span meets alone, and the next refresh drops it and computes it again
(fangxin.devices.day_store, fangxin.trace.plan.camera_days).

Revision ID: 0018_stored_days
Revises: 0017_devices_camera_indexes
"""

import sqlalchemy as sa
from alembic import op

from fangxin.migrations import triggers

import fangxin.db

revision = "0018_stored_days"
down_revision = "0017_devices_camera_indexes"
branch_labels = None
depends_on = None

FOREVER = "1e300"  # an open period's end: later than any day

# (table, columns whose change matters, the span logged) per trigger; {o}/{n} are OLD/NEW,
# {least}/{greatest} the dialect's many-argument min and max, {epoch(...)} seconds of a time.
_EVENTS = {
    "INSERT": ("{n}.state = 'offline'", "{n}.at_s", "COALESCE({n}.until_s, " + FOREVER + ")"),
    "DELETE": ("{o}.state = 'offline'", "{o}.at_s", "COALESCE({o}.until_s, " + FOREVER + ")"),
    # Closing a period changes only the time between its old and new end.
    "UPDATE": (
        "{o}.state = 'offline' OR {n}.state = 'offline'",
        "CASE WHEN {o}.at_s = {n}.at_s AND {o}.state = {n}.state AND {o}.device_id = "
        "{n}.device_id THEN {least}(COALESCE({o}.until_s, " + FOREVER + "), "
        "COALESCE({n}.until_s, " + FOREVER + ")) ELSE {least}({o}.at_s, {n}.at_s) END",
        "{greatest}(COALESCE({o}.until_s, "
        + FOREVER
        + "), COALESCE({n}.until_s, "
        + FOREVER
        + "))",
    ),
}
DEVICE_COLUMNS = ("site_id", "kind", "active", "created_at", "gb_id", "sip_parent")
SITE_COLUMNS = ("opens", "closes", "kind")
# A run's touch or close changes only what follows its last sign of life before it.
_RUN_LO = (
    "CASE WHEN {o}.started_at = {n}.started_at AND {o}.door = {n}.door "
    "THEN {least}({epoch_o_alive}, {epoch_n_alive}) "
    "ELSE {least}({epoch_o_start}, {epoch_n_start}) END"
)


def _epoch(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::double precision"
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


def _statements(dialect: str, o: str, n: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Return per table and verb: (when, the INSERT ... SELECT logging the span)."""
    least, greatest = ("LEAST", "GREATEST") if dialect == "postgresql" else ("MIN", "MAX")
    log = "INSERT INTO stored_day_stale (lo_s, hi_s) "

    def fill(text: str) -> str:
        return text.format(
            o=o,
            n=n,
            least=least,
            greatest=greatest,
            epoch_o_alive=_epoch(f"{o}.last_alive_at", dialect),
            epoch_n_alive=_epoch(f"{n}.last_alive_at", dialect),
            epoch_o_start=_epoch(f"{o}.started_at", dialect),
            epoch_n_start=_epoch(f"{n}.started_at", dialect),
        )

    events = {
        verb: (fill(when), fill(f"{log}VALUES ({lo}, {hi})"))
        for verb, (when, lo, hi) in _EVENTS.items()
    }
    # A device's or site's change reaches back to its cameras' first offline period (none: no
    # stored day has it). A new device has none yet: its periods log themselves.
    device = (
        fill(triggers.changed(DEVICE_COLUMNS, dialect)),
        f"{log}SELECT MIN(at_s), {FOREVER} FROM connectivity_events "
        f"WHERE device_id = {n}.id AND state = 'offline' HAVING MIN(at_s) IS NOT NULL",
    )
    site = (
        fill(triggers.changed(SITE_COLUMNS, dialect)),
        f"{log}SELECT MIN(e.at_s), {FOREVER} FROM connectivity_events e "
        f"JOIN devices d ON d.id = e.device_id WHERE d.site_id = {n}.id "
        "AND e.state = 'offline' HAVING MIN(e.at_s) IS NOT NULL",
    )
    runs = {
        "INSERT": ("TRUE", f"{log}VALUES ({_epoch(n + '.started_at', dialect)}, {FOREVER})"),
        "UPDATE": ("TRUE", fill(f"{log}VALUES ({_RUN_LO}, {FOREVER})")),
        "DELETE": ("TRUE", f"{log}VALUES ({_epoch(o + '.started_at', dialect)}, {FOREVER})"),
    }
    return {
        "connectivity_events": events,
        "devices": {"UPDATE": device},
        "sites": {"UPDATE": site},
        "ingester_runs": runs,
    }


def upgrade() -> None:
    op.create_table(
        "stored_days",
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("computed_at", fangxin.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tz", "day", name=op.f("pk_stored_days")),
    )
    op.create_table(
        "device_days",
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("offline_s", sa.Float(), nullable=False),
        sa.Column("business_offline_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tz", "day", "device_id", name=op.f("pk_device_days")),
    )
    op.create_table(
        "camera_day_sites",
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("offline_s", sa.Float(), nullable=False),
        sa.Column("unknown_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tz", "day", "site_id", name=op.f("pk_camera_day_sites")),
    )
    op.create_table(
        "stored_day_stale",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lo_s", sa.Float(), nullable=False),
        sa.Column("hi_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_day_stale")),
    )
    dialect = op.get_bind().dialect.name
    triggers.create("camera_stale", _statements(dialect, "OLD", "NEW"), dialect)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    triggers.drop("camera_stale", _statements(dialect, "OLD", "NEW"), dialect)
    op.drop_table("stored_day_stale")
    op.drop_table("camera_day_sites")
    op.drop_table("device_days")
    op.drop_table("stored_days")
