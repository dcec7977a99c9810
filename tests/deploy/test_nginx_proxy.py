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


ERROR_KEYS = {"error", "code", "request_id"}


def assert_json_error(status: int, headers: dict, body: bytes, expected_status: int, expected_code: str) -> dict:
    assert status == expected_status, (status, body[:300])
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    error = json.loads(body)
    assert set(error) == ERROR_KEYS and error["code"] == expected_code, error
    return error


def raw_tls_exchange(port: int, cert_dir, raw: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes over TLS (requests http.client would refuse to send) and parse the one response."""
    import socket

    context = ssl.create_default_context(cafile=str(cert_dir / "fullchain.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        with context.wrap_socket(plain, server_hostname="localhost") as sock:
            sock.sendall(raw)
            data = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except (TimeoutError, ssl.SSLError, ConnectionResetError):
                    break
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(headers.get("Content-Length", len(body)))
    return int(lines[0].split(" ")[1]), headers, body[:length]


def test_metrics_are_not_served_through_the_proxy(trusting_stack, tls_cert_dir):
    _, _, https_port = trusting_stack
    status, headers, body, _ = request(https_port, "GET", "/metrics", tls_cert_dir)
    assert_json_error(status, headers, body, 404, "NOT_FOUND")


def test_body_over_ten_megabytes_is_refused_at_the_edge(trusting_stack, tls_cert_dir):
    _, _, https_port = trusting_stack
    body = b"{" + b" " * (10 * 1024 * 1024) + b"}"
    status, headers, answer, _ = request(https_port, "POST", "/api/v1/ves/events/ingest", tls_cert_dir,
                                         headers={"Content-Type": "application/json"}, body=body)
    assert_json_error(status, headers, answer, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(("name", "raw", "expected_status", "expected_code"), [
    ("malformed_request_line", b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST"),
    ("garbage", b"\x01\x02 nonsense\r\n\r\n", 400, "BAD_REQUEST"),
    ("header_too_large", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"z" * 20_000 + b"\r\n\r\n", 431,
     "HEADERS_TOO_LARGE"),
    ("uri_too_long", b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI_TOO_LONG"),
    # nginx passes these on; gunicorn refuses them (limit_request_fields = 100) and answers in the JSON shape too.
    ("too_many_headers_for_gunicorn", b"GET /health HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-F-%d: 1\r\n" % i for i in range(150)) + b"Connection: close\r\n\r\n", 431,
     "HEADERS_TOO_LARGE"),
])
def test_errors_the_proxy_or_gunicorn_answer_themselves_are_json(trusting_stack, tls_cert_dir, name, raw,
                                                                 expected_status, expected_code):
    _, _, https_port = trusting_stack
    status, headers, body = raw_tls_exchange(https_port, tls_cert_dir, raw)
    assert b"<html" not in body.lower()
    assert_json_error(status, headers, body, expected_status, expected_code)


def test_a_client_request_id_never_reaches_a_proxy_error_body(trusting_stack, tls_cert_dir):
    _, _, https_port = trusting_stack
    status, headers, body, _ = request(https_port, "GET", "/metrics", tls_cert_dir,
                                       headers={"X-Request-ID": 'x","code":"INJECTED'})
    error = assert_json_error(status, headers, body, 404, "NOT_FOUND")
    assert "INJECTED" not in body.decode() and len(error["request_id"]) == 32


def test_an_unreachable_sequencer_is_a_json_503(find_tool, nginx_renderer, tls_cert_dir):
    with running_nginx(find_tool, nginx_renderer, free_port(), tls_cert_dir) as (_, https_port, _):
        status, headers, body, _ = request(https_port, "GET", "/api/v1/ves/head", tls_cert_dir)
    assert_json_error(status, headers, body, 503, "UPSTREAM_UNAVAILABLE")
    assert headers.get("Retry-After") == "1"


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
