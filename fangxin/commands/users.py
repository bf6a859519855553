"""`fangxin users add|list`: dashboard login accounts."""

from __future__ import annotations

import click
from sqlalchemy import select

from fangxin.commands.common import sessions, settings_of
from fangxin.service.models import User


@click.group("users")
def users() -> None:
    """Manage dashboard login accounts."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "regulator"]), required=True)
@click.option("--district", default=None, help="Limit a regulator to one district.")
@click.password_option(help="Prompted for (twice) when not given.")
@click.pass_context
def users_add(
    ctx: click.Context, username: str, role: str, district: str | None, password: str
) -> None:
    """Create a dashboard account."""
    # Lazy: service.users computes a scrypt hash when imported; only this command needs it.
    from fangxin.service.users import add_user

    with sessions(settings_of(ctx))() as session:
        try:
            add_user(session, username, password, role, district)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    scope = f" in {district}" if district else ""
    click.echo(f"user {username} ({role}{scope}) created")


@users.command("set-password")
@click.argument("username")
@click.password_option(help="Prompted for (twice) when not given.")
@click.pass_context
def users_set_password(ctx: click.Context, username: str, password: str) -> None:
    """Change a dashboard password; the account's open sessions end."""
    from fangxin.service.users import set_password

    with sessions(settings_of(ctx))() as session:
        try:
            set_password(session, username, password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(f"password of {username} changed; its sessions are signed out")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List dashboard accounts."""
    with sessions(settings_of(ctx))() as session:
        for user in session.scalars(select(User).order_by(User.username)):
            click.echo(f"{user.username}\t{user.role}\t{user.district or '-'}")


def register(main: click.Group) -> None:
    """Add the users commands to the `fangxin` group."""
    main.add_command(users)
