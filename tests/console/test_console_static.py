"""The console's files as served: strict security headers, a relative redirect, nothing but its own files, and
source rules that keep hostile data out of the DOM and the key out of URLs and persistent storage."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from app.console import STATIC_DIR

SCRIPTS = sorted(STATIC_DIR.glob("*.js"))


def test_console_redirects_relatively_so_a_path_prefix_survives(client):
    response = client.get("/console")
    assert response.status_code == 308
    assert response.headers["Location"] == "console/"


@pytest.mark.parametrize("path, media_type", [("/console/", "text/html"), ("/console/console.js", "text/javascript"),
                                              ("/console/ves.js", "text/javascript"),
                                              ("/console/api.js", "text/javascript"),
                                              ("/console/console.css", "text/css")])
def test_every_file_is_served_with_a_strict_policy(client, path, media_type):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == media_type
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/console/missing.js", "/console/Console.js", "/console/..%2Fwsgi.js",
                                  "/console/index.css", "/console/x.html", "/console/.env"])
def test_nothing_but_the_console_files_is_served(client, path):
    response = client.get(path)
    assert response.status_code in (400, 404)
    assert response.is_json and response.json["code"]


def test_the_page_needs_no_key_but_the_api_still_does(client):
    assert client.get("/console/").status_code == 200
    assert client.get("/api/v1/whoami").status_code == 401
    assert client.get("/api/v1/streams?tenant_id=11111111-1111-4111-8111-111111111111").status_code == 401


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_page_has_no_inline_script_or_style():
    parser = _Tags()
    parser.feed((STATIC_DIR / "index.html").read_text())
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    assert not [tag for tag, _ in parser.tags if tag == "style"]
    assert not [attrs for _, attrs in parser.tags if "style" in attrs or any(a.startswith("on") for a in attrs)]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_script_parses_strings_as_html_or_code_or_keeps_the_key_beyond_the_tab(script):
    source = script.read_text()
    forbidden = [r"\.innerHTML", r"\.outerHTML", r"insertAdjacentHTML", r"document\.write", r"\beval\(",
                 r"new Function", r"localStorage", r"document\.cookie", r"createContextualFragment",
                 r"DOMParser", r"setTimeout\(\s*['\"`]"]
    found = [pattern for pattern in forbidden if re.search(pattern, source)]
    assert found == []


def test_the_key_is_only_ever_sent_as_the_authorization_header():
    source = (STATIC_DIR / "api.js").read_text()
    assert "sessionStorage.setItem(KEY_ITEM, key)" in source
    assert 'headers.Authorization = "ApiKey " + key' in source
    assert source.count("storedKey()") == 2, "read once to send it, defined once"
    for script in SCRIPTS:
        assert "sessionStorage.getItem(KEY_ITEM)" not in script.read_text() or script.name == "api.js"


def test_whoami_reports_the_callers_scope(client, engine):
    import uuid

    from tests.controls import api_key
    from tests.controls import auth

    tenant, store = uuid.uuid4(), uuid.uuid4()
    key = api_key(engine, tenant, "read", store_ids=[store])
    body = client.get("/api/v1/whoami", headers=auth(key)).json
    assert body["tenant_id"] == str(tenant)
    assert body["store_ids"] == [str(store)]
    assert body["permissions"] == "read"
    assert set(body) == {"key_id", "tenant_id", "store_ids", "permissions", "agent_id"}


def test_console_enabled_0_turns_the_files_off_but_not_the_api(make_app):
    client = make_app(console_enabled=False).test_client()
    for path in ("/console", "/console/", "/console/console.js"):
        response = client.get(path)
        assert response.status_code == 404 and response.json["code"] == "NOT_FOUND"
    assert client.get("/health").status_code == 200
