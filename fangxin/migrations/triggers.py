"""Row triggers that log writes into a table, the same on SQLite and PostgreSQL (0018, 0019)."""

from __future__ import annotations

from alembic import op

# table -> verb -> (when, the statement logging the row); OLD and NEW name the row.
Statements = dict[str, dict[str, tuple[str, str]]]


def changed(columns: tuple[str, ...], dialect: str) -> str:
    """Return a WHEN condition: any of columns differs between {o} and {n} (NULLs compared)."""
    differ = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return " OR ".join(f"{{o}}.{c} {differ} {{n}}.{c}" for c in columns)


def create(prefix: str, statements: Statements, dialect: str) -> None:
    """Create one trigger per table and verb (SQLite) or one function per table (PostgreSQL)."""
    for table, verbs in statements.items():
        if dialect != "postgresql":
            for verb, (when, statement) in verbs.items():
                op.execute(
                    f"CREATE TRIGGER {prefix}_{table}_{verb.lower()} AFTER {verb} ON {table} "
                    f"FOR EACH ROW WHEN {when.replace('TRUE', '1')} BEGIN {statement}; END"
                )
            continue
        branches = " ".join(
            f"{'IF' if i == 0 else 'ELSIF'} TG_OP = '{verb}' AND ({when}) THEN {statement};"
            for i, (verb, (when, statement)) in enumerate(verbs.items())
        )
        op.execute(
            f"CREATE FUNCTION {prefix}_{table}() RETURNS trigger AS $$ BEGIN "
            f"{branches} END IF; RETURN NULL; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {prefix}_{table} AFTER {' OR '.join(verbs)} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {prefix}_{table}()"
        )


def drop(prefix: str, statements: Statements, dialect: str) -> None:
    """Drop what create made."""
    for table, verbs in statements.items():
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER {prefix}_{table} ON {table}")
            op.execute(f"DROP FUNCTION {prefix}_{table}()")
            continue
        for verb in verbs:
            op.execute(f"DROP TRIGGER {prefix}_{table}_{verb.lower()}")
