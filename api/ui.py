"""The viewer page: `/ui/` lists discussions, `/ui/discussions/{id}` watches one live.

Plain HTML, CSS and JavaScript shipped in `api/ui_static/`: no CDN, no build step. The pages
talk to the public API (REST and the WebSocket stream) exactly as any other client does, so
everything they show is also reachable with curl.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, redirect, request, send_from_directory

from core.ground.errors import BadRequest

STATIC = Path(__file__).with_name("ui_static")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder=str(STATIC),
               static_url_path="/static")


def _page(name: str) -> Any:
    resp = send_from_directory(STATIC, name, max_age=0)
    # The pages only load their own scripts and talk to this origin (and its WebSocket).
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


# The API docs pages (Swagger UI, ReDoc) run the packages' own bundled scripts, inline ones
# included; nothing may load from elsewhere. ReDoc's sidebar asks a CDN for Redocly's logo:
# `img-src` keeps that request from ever leaving the browser.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
DOCS_ENDPOINTS = ("redoc.", "swagger.")


def register_docs_policy(app: Flask) -> None:
    """Give the API docs pages a policy that keeps them offline."""

    @app.after_request
    def _docs_policy(resp: Response) -> Response:
        if (request.endpoint or "").startswith(DOCS_ENDPOINTS):
            resp.headers.setdefault("Content-Security-Policy", DOCS_POLICY)
        return resp


@bp.get("")
def _root() -> Any:
    return redirect("/ui/", code=308)


@bp.get("/")
def index() -> Any:
    """GET /ui/: the discussion list and the create-discussion form."""
    return _page("index.html")


@bp.get("/discussions/<discussion_id>")
def discussion(discussion_id: str) -> Any:
    """GET /ui/discussions/{id}: one discussion, live (the page reads the id from its URL)."""
    if not _ID.match(discussion_id):
        raise BadRequest("malformed discussion id")
    return _page("discussion.html")
