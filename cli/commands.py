"""The `python -m cli` commands (click). Every command talks to the service's public API."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from cli import render
from cli.actions import parse_fields, run_action
from cli.client import Client, CliError
from cli.watch import Watcher

DEFAULT_URL = f"http://localhost:{os.environ.get('SERVICE_PORT', '5000')}"


def _client(ctx: click.Context) -> Client:
    return ctx.find_object(Client)  # type: ignore[return-value]


def _out(text: str) -> None:
    click.echo(text)


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


class Group(click.Group):
    """Shows CliError as a one-line message with exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(1)


@click.group(cls=Group)
@click.option("--url", envvar="ORCHESTRATOR_URL", default=DEFAULT_URL, show_default=True,
              help="The service's base URL (env ORCHESTRATOR_URL).")
@click.option("--token", envvar="ORCHESTRATOR_TOKEN", default=None,
              help="API key or JWT, sent as a bearer token (env ORCHESTRATOR_TOKEN).")
@click.option("--timeout", type=float, default=15.0, show_default=True,
              help="Seconds to wait for each HTTP request.")
@click.pass_context
def main(ctx: click.Context, url: str, token: str | None, timeout: float) -> None:
    """Discussion Orchestrator command line: create, list, show, watch, post, vote,
    moderate and export discussions."""
    ctx.obj = Client(url, token, timeout)


def _load(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        # YAML is a superset of JSON: one parser reads both.
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a mapping (the body of POST /v1/discussions)")
    return data


@main.command()
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--watch", "then_watch", is_flag=True, help="Watch it live once created.")
@click.option("--json", "as_json", is_flag=True, help="Print the created session as JSON.")
@click.pass_context
def create(ctx: click.Context, file: str, then_watch: bool, as_json: bool) -> None:
    """Create a discussion from a YAML or JSON FILE ('-' for standard input)."""
    if file != "-" and not Path(file).is_file():
        raise CliError(f"no such file: {file}")
    session = _client(ctx).post("/v1/discussions", _load(file))
    if as_json:
        _json(session)
    else:
        _out(session["id"])
        click.echo(f"created: {_client(ctx).url}/ui/discussions/{session['id']}", err=True)
    if then_watch:
        ctx.invoke(watch, discussion_id=session["id"])


@main.command("list")
@click.option("--active", is_flag=True, help="Only discussions that have not finished.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, active: bool, limit: int, as_json: bool) -> None:
    """List discussions, newest first."""
    client = _client(ctx)
    ids = client.get(f"/v1/discussions?state={'active' if active else 'all'}")["discussions"]
    sessions = []
    for did in ids[:limit]:
        try:
            sessions.append(client.session(did))
        except CliError:
            continue  # deleted between the two calls
    if as_json:
        _json([{k: v for k, v in s.items() if k != "messages"} for s in sessions])
        return
    if not sessions:
        _out("no discussions")
        return
    rows = [[s["id"], s["status"], s["protocol"], f"{s['current_round']}/{s['max_rounds']}",
             s["message_count"], s["topic"][:60]] for s in sessions]
    _out(render.table(rows, ["ID", "STATUS", "PROTOCOL", "ROUND", "MSGS", "TOPIC"]))


@main.command()
@click.argument("discussion_id")
@click.option("--json", "as_json", is_flag=True, help="The raw session JSON.")
@click.option("--last", type=click.IntRange(0, 100), default=10, show_default=True,
              help="How many of the latest messages to print.")
@click.pass_context
def show(ctx: click.Context, discussion_id: str, as_json: bool, last: int) -> None:
    """Show a discussion: status, participants and the latest messages."""
    session = _client(ctx).session(discussion_id)
    if as_json:
        _json(session)
        return
    _out(render.summary(session))
    people = {p["participant_id"]: p for p in session["participants"]}
    messages = session["messages"][-last:] if last else []
    if messages:
        _out("")
    for m in messages:
        _out(render.message(m, people))


@main.command()
@click.argument("discussion_id")
@click.option("--follow", is_flag=True, help="Keep watching after the discussion ends.")
@click.pass_context
def watch(ctx: click.Context, discussion_id: str, follow: bool) -> None:
    """Watch a discussion live: messages as they are committed, and a status line."""
    tty = sys.stdout.isatty()
    last_status = [""]

    def echo(line: str) -> None:
        click.echo(("\r\033[K" if tty else "") + line)
        if tty and last_status[0]:
            click.echo(last_status[0], nl=False)

    def status(line: str) -> None:
        if line == last_status[0]:
            return
        last_status[0] = line
        if tty:
            click.echo("\r\033[K" + line, nl=False)
        else:
            click.echo(f"-- {click.unstyle(line)}")

    session = Watcher(_client(ctx), discussion_id, echo, status, follow=follow).run()
    if tty:
        click.echo("")
    ctx.exit(0 if session.get("status") != "failed" else 2)


@main.command()
@click.argument("discussion_id")
@click.argument("text", required=False)
@click.option("--as", "participant_id", required=True,
              help="The participant id to post as (a person with write permission).")
@click.option("--type", "message_type", default="text", show_default=True,
              type=click.Choice(["text", "system", "proposal", "vote"]))
@click.pass_context
def post(ctx: click.Context, discussion_id: str, text: str | None, participant_id: str,
         message_type: str) -> None:
    """Post TEXT (or standard input) to a discussion as a participant."""
    content = text if text is not None else sys.stdin.read()
    if not content.strip():
        raise CliError("nothing to post")
    m = _client(ctx).post_message(discussion_id, participant_id, content.strip(), message_type)
    _out(f"posted #{m['seq']} {m['message_id']}")


@main.command()
@click.argument("discussion_id")
@click.argument("choice")
@click.option("--as", "participant_id", required=True, help="The voting participant's id.")
@click.option("--reason", default=None, help="The position stated with the vote.")
@click.option("-f", "--field", "pairs", multiple=True, help="Extra body field key=value.")
@click.pass_context
def vote(ctx: click.Context, discussion_id: str, choice: str, participant_id: str,
         reason: str | None, pairs: tuple[str, ...]) -> None:
    """Vote CHOICE (e.g. yes, no, abstain) in a consensus discussion."""
    offered = _client(ctx).actions()
    name = next((n for n in sorted(offered) if "vote" in n or "ballot" in n), None)
    if name is None:
        raise CliError("this service has no vote endpoint")
    schema = offered[name]["fields"]
    slot = next((k for k in ("vote", "choice", "decision", "value", "option") if k in schema),
                "vote")
    extra = {"reason": reason} if reason else {}
    _json(run_action(_client(ctx), discussion_id, name, participant_id,
                  {slot: choice, **extra, **parse_fields(pairs)}))


@main.command()
@click.argument("discussion_id")
@click.argument("action")
@click.option("--as", "participant_id", default=None, help="The moderator's participant id.")
@click.option("--target", default=None,
              help="The participant it concerns (floor, mute, unmute, ...).")
@click.option("--reason", default=None, help="Why (recorded with the action).")
@click.option("-f", "--field", "pairs", multiple=True, help="Body field key=value.")
@click.pass_context
def moderate(ctx: click.Context, discussion_id: str, action: str, participant_id: str | None,
             target: str | None, reason: str | None, pairs: tuple[str, ...]) -> None:
    """Run ACTION: pause, resume, cancel, or a moderation verb (floor, mute, approve, end, ...)."""
    extra = {"reason": reason} if reason else {}
    _json(run_action(_client(ctx), discussion_id, action, participant_id,
                     {**extra, **parse_fields(pairs)}, target))


@main.command()
@click.pass_context
def actions(ctx: click.Context) -> None:
    """List the vote, moderation and lifecycle actions this service offers."""
    offered = _client(ctx).actions()
    if not offered:
        _out("no actions offered")
    for name, spec in sorted(offered.items()):
        fields = ", ".join(f + ("*" if f in spec["required"] else "") for f in spec["fields"])
        verbs = (spec["fields"].get("action") or {}).get("enum")
        _out((f"{name}: {fields}" if fields else name)
             + (f"  (actions: {', '.join(verbs)})" if verbs else ""))


@main.command()
@click.argument("discussion_id")
@click.option("--format", "fmt", type=click.Choice(["json", "md"]), default="md",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file instead of standard output.")
@click.pass_context
def export(ctx: click.Context, discussion_id: str, fmt: str, output: str | None) -> None:
    """Export the whole transcript as Markdown or JSON (the service's export)."""
    query = "markdown" if fmt == "md" else "json"
    text = _client(ctx).send("GET", Client.path(discussion_id, f"/export?format={query}")).text
    if output:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text.rstrip("\n"))
