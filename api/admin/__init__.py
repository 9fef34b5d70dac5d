"""Admin commands: API keys. `python -m api.admin keys create --user alice` (or `flask --app api
keys create --user alice`) prints a new key once; Redis keeps only its hash."""

from __future__ import annotations

import click
from flask import Flask

from core.ground.settings import Settings
from core.services import auth
from core.storage.redis_client import make_redis


@click.group("keys")
def keys_cli() -> None:
    """Create, list and revoke API keys."""


@keys_cli.command("create")
@click.option("--user", "user_id", required=True, help="The user id the key authenticates as.")
@click.option("--name", default="", help="A label for the key, e.g. the client's name.")
def create(user_id: str, name: str) -> None:
    """Create a key and print it (it is shown only this once)."""
    settings = Settings()
    try:
        key = auth.create_api_key(make_redis(settings), settings, user_id, name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--user") from None
    click.echo(key)


@keys_cli.command("list")
@click.option("--user", "user_id", required=True)
def list_keys(user_id: str) -> None:
    """List a user's keys: id, created, name (never the secret)."""
    for info in auth.list_api_keys(make_redis(Settings()), user_id):
        click.echo(f"{info.key_id}\t{info.created_at}\t{info.name}")


@keys_cli.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after the prefix); it stops working at once."""
    if not auth.revoke_api_key(make_redis(Settings()), key_id):
        raise click.ClickException(f"no key {key_id}")
    click.echo(f"revoked {key_id}")


def register(app: Flask) -> None:
    """Add the `keys` group to `flask --app api ...`."""
    app.cli.add_command(keys_cli)


@click.group()
def main() -> None:
    """Discussion Orchestrator administration."""


main.add_command(keys_cli)
