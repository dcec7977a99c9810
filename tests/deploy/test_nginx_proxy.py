"""nginx/nginx.conf in front of a real gunicorn: TLS works, HTTP redirects, limits hold, and the client address the
app logs is the forwarded one exactly when TRUST_PROXY_HEADERS=1 (nginx overwrites any client X-Forwarded-For)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.support.servers import free_port
from tests.support.servers import start_gunicorn

CLIENT_ADDRESS = "127.0.0.5"
SPOOFED_ADDRESS = "203.0.113.9"


@contextlib.contextmanager
def running_nginx(find_tool, nginx_renderer, upstream_port: int | list[int], cert_dir):
    """nginx/nginx.conf on free loopback ports in front of gunicorn at `upstream_port` (or at each of several)."""
    work_dir = Path(tempfile.mkdtemp(prefix="seqnginx-"))
    os.chmod(work_dir, 0o755)
    http_port, https_port = free_port(), free_port()
    ports = [upstream_port] if isinstance(upstream_port, int) else upstream_port
    conf = nginx_renderer(work_dir, [f"127.0.0.1:{port}" for port in ports], http_port, https_port, cert_dir)
    nginx = find_tool("nginx")
    base = [nginx, "-c", str(conf), "-p", str(work_dir), "-e", str(work_dir / "error.log")]
    check = subprocess.run(base + ["-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    subprocess.run(base, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 10
        while not (work_dir / "nginx.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield http_port, https_port, work_dir
    finally:
        subprocess.run(base + ["-s", "quit"], capture_output=True)
        deadline = time.monotonic() + 10
        while (work_dir / "nginx.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(work_dir, ignore_errors=True)


def request(port, method, path, cert_dir=None, headers=None, body=None):
    """One request from CLIENT_ADDRESS (not 127.0.0.1), so the app can tell the client from nginx."""
    if cert_dir is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(CLIENT_ADDRESS, 0))
    else:
        context = ssl.create_default_context(cafile=str(cert_dir / "fullchain.pem"))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context,
                                           source_address=(CLIENT_ADDRESS, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        tls_version = conn.sock.version() if cert_dir else None
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read(), tls_version
    finally:
        conn.close()


def access_line(server, user_agent, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.log_text().splitlines():
            if user_agent in line and line.startswith("{"):
                entry = json.loads(line)
                if entry.get("user_agent") == user_agent:
                    return entry
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {user_agent}:\n{server.log_text()[-2000:]}")


@pytest.fixture(scope="module")
def trusting_stack(database_url, find_tool, nginx_renderer, tls_cert_dir):
    with start_gunicorn(database_url, env={"TRUST_PROXY_HEADERS": "1"}, workers=2) as server:
        with running_nginx(find_tool, nginx_renderer, server.port, tls_cert_dir) as (http_port, https_port, _):
            yield server, http_port, https_port


def test_https_reaches_gunicorn_with_modern_tls_and_hsts(trusting_stack, tls_cert_dir):
    _, _, https_port = trusting_stack
    status, headers, body, tls_version = request(https_port, "GET", "/health", tls_cert_dir)
    assert status == 200
    assert json.loads(body)["status"] == "healthy"
    assert tls_version in {"TLSv1.2", "TLSv1.3"}
    assert headers["Strict-Transport-Security"].startswith("max-age=63072000")
    assert "nginx/" not in headers.get("Server", "")


def test_tls_1_1_is_refused(trusting_stack, tls_cert_dir):
    _, _, https_port = trusting_stack
    context = ssl.create_default_context(cafile=str(tls_cert_dir / "fullchain.pem"))
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    conn = http.client.HTTPSConnection("127.0.0.1", https_port, timeout=5, context=context)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        conn.request("GET", "/health")
    conn.close()


def test_plain_http_redirects_to_https(trusting_stack):
    _, http_port, _ = trusting_stack
    status, headers, _, _ = request(http_port, "GET", "/api/v1/head?x=1")
    assert status == 301
    assert headers["Location"] == "https://127.0.0.1/api/v1/head?x=1"


def test_metrics_are_not_served_through_the_proxy(trusting_stack, tls_cert_dir):
    _, _, https_port = trusting_stack
    assert request(https_port, "GET", "/metrics", tls_cert_dir)[0] == 404


def test_body_over_ten_megabytes_is_refused_at_the_edge(trusting_stack, tls_cert_dir):
    _, _, https_port = trusting_stack
    body = b"{" + b" " * (10 * 1024 * 1024) + b"}"
    status = request(https_port, "POST", "/api/v1/ves/events/ingest", tls_cert_dir,
                     headers={"Content-Type": "application/json"}, body=body)[0]
    assert status == 413


def test_app_sees_the_forwarded_client_when_trusting_proxy_headers(trusting_stack, tls_cert_dir):
    server, _, https_port = trusting_stack
    user_agent = f"deploy-test-{uuid.uuid4()}"
    status = request(https_port, "GET", "/health", tls_cert_dir,
                     headers={"User-Agent": user_agent, "X-Forwarded-For": SPOOFED_ADDRESS})[0]
    assert status == 200
    assert access_line(server, user_agent)["remote_addr"] == CLIENT_ADDRESS


def test_app_sees_nginx_when_not_trusting_proxy_headers(database_url, find_tool, nginx_renderer, tls_cert_dir):
    with start_gunicorn(database_url, env={"TRUST_PROXY_HEADERS": "0"}, workers=1) as server:
        with running_nginx(find_tool, nginx_renderer, server.port, tls_cert_dir) as (_, https_port, _):
            user_agent = f"deploy-test-{uuid.uuid4()}"
            status = request(https_port, "GET", "/health", tls_cert_dir, headers={"User-Agent": user_agent})[0]
            assert status == 200
            assert access_line(server, user_agent)["remote_addr"] == "127.0.0.1"
