"""The viewer page's routes and assets (served by the API, offline, no build step)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "api" / "ui_static"


def test_pages_are_served_with_a_strict_policy(client) -> None:
    for path in ("/ui/", "/ui/discussions/disc_abc123"):
        resp = client.get(path)
        assert resp.status_code == 200
        assert resp.mimetype == "text/html"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert b'id="transcript"' in client.get("/ui/discussions/disc_abc123").data
    assert b'id="create"' in client.get("/ui/").data
    resp = client.get("/ui")
    assert resp.status_code == 308 and resp.headers["Location"].endswith("/ui/")


@pytest.mark.parametrize(("name", "mimetype"), [
    ("ui.css", "text/css"), ("common.js", "text/javascript"),
    ("discussion.js", "text/javascript"), ("actions.js", "text/javascript"),
    ("index.js", "text/javascript"), ("transcript.js", "text/javascript"),
    ("compose.js", "text/javascript"),
])
def test_assets_are_served(client, name: str, mimetype: str) -> None:
    resp = client.get(f"/ui/static/{name}")
    assert resp.status_code == 200
    assert resp.mimetype == mimetype


def test_bad_paths_get_json_errors(client) -> None:
    resp = client.get("/ui/discussions/" + "x" * 65)
    assert resp.status_code == 400 and resp.is_json
    assert resp.get_json()["error"] == "bad_request"
    resp = client.get("/ui/discussions/bad%20id")
    assert resp.status_code == 400 and resp.is_json
    resp = client.get("/ui/static/nope.js")
    assert resp.status_code == 404 and resp.is_json
    resp = client.get("/ui/static/../../core/settings.py")
    assert resp.status_code == 404


def test_assets_load_nothing_from_elsewhere() -> None:
    """Offline: no CDN, no remote fonts or scripts; every asset the pages name exists."""
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path.name
        assert "@import" not in text and "url(http" not in text, path.name
    for page in ("index.html", "discussion.html"):
        html = (STATIC / page).read_text()
        for ref in re.findall(r'(?:src|href)="/ui/static/([^"]+)"', html):
            assert (STATIC / ref).is_file(), ref


def test_every_form_control_has_a_label() -> None:
    for page in ("index.html", "discussion.html"):
        html = (STATIC / page).read_text()
        ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html)
        assert ids
        for control in ids:
            assert f'for="{control}"' in html, f"{page}: #{control} has no label"
