"""`fangxin signing-key ...`: generate, list, rotate and retire certificate signing keys.

Rotation keeps old signatures verifiable: every key that ever signed stays published at
/.well-known/fangxin-keys.json (a retired key signs nothing new but still verifies).
"""

from __future__ import annotations

import click

from fangxin.commands.common import sessions
from fangxin.config import ConfigError, Settings
from fangxin.trace.certificates import signing


def register(main: click.Group) -> None:
    """Add the signing-key commands to the `fangxin` command."""

    @main.group("signing-key")
    def signing_key() -> None:
        """Manage the Ed25519 keys that sign 合格证."""

    @signing_key.command("generate")
    def generate() -> None:
        """Print a new key for FANGXIN_SIGNING_KEY (nothing is stored)."""
        key = signing.generate()
        click.echo(f"FANGXIN_SIGNING_KEY={key.export()}")
        click.echo(f"key id: {key.key_id}", err=True)

    @signing_key.command("list")
    @click.pass_obj
    def list_keys(settings: Settings) -> None:
        """List published keys; * marks the key in use."""
        try:
            current = signing.signer_from_settings(settings).key_id
        except ConfigError:
            current = None
        with sessions(settings)() as session:
            for row in signing.public_keys(session):
                mark = "*" if row.key_id == current else " "
                retired = row.retired_at.isoformat() if row.retired_at else "-"
                click.echo(f"{mark} {row.key_id}\t{row.created_at.isoformat()}\tretired {retired}")

    @signing_key.command("rotate")
    @click.pass_obj
    def rotate(settings: Settings) -> None:
        """Development: replace the data dir's key; the old one is retired but still verifies."""
        if settings.signing_key or settings.production:
            raise click.ClickException(
                "the key comes from FANGXIN_SIGNING_KEY: run `fangxin signing-key generate`, "
                "set the new value and restart; then retire the old key id"
            )
        old = signing.signer_from_settings(settings)
        new = signing.generate()
        with sessions(settings)() as session:
            signing.ensure_registered(session, old)
            signing.retire(session, old.key_id)
            signing.ensure_registered(session, new)
            signing.write_key_file(settings.data_dir / signing.DEV_KEY_FILE, new)
            session.commit()
        click.echo(f"retired {old.key_id}; signing with {new.key_id}")

    @signing_key.command("retire")
    @click.argument("key_id")
    @click.pass_obj
    def retire(settings: Settings, key_id: str) -> None:
        """Retire a published key: it signs nothing new but old signatures still verify."""
        with sessions(settings)() as session:
            if not signing.retire(session, key_id):
                raise click.ClickException(f"no published key {key_id}")
            session.commit()
        click.echo(f"retired {key_id}")
