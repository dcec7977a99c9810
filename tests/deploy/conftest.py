"""Fixtures for the deployment-artifact tests: repository paths, rendered configs, a TLS certificate, servers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
PGSERVER_BIN = next(iter(sorted((ROOT / ".venv" / "lib").glob("python3*/site-packages/pgserver/pginstall/bin"))), None)

NGINX_PLACEHOLDERS = (
    "user nginx;",
    "/run/nginx.pid",
    "/var/log/nginx/",
    "/var/cache/nginx/",
    "server sequencer:8080;",
    "listen 80;",
    "listen [::]:80;",
    "listen 443 ssl http2;",
    "listen [::]:443 ssl http2;",
    "/etc/nginx/certs/",
)


def tool(name: str) -> str:
    """Absolute path of a required external tool; a missing tool is a failure naming the Debian package."""
    path = shutil.which(name, path=f"{VENV_BIN}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    assert path, f"{name} is not installed (CI installs it with apt-get; see docs/DEPLOYMENT.md)"
    return path


def render_nginx_conf(work_dir: Path, upstream: str | list[str], http_port: int, https_port: int,
                      cert_dir: Path) -> Path:
    """Render nginx/nginx.conf for an unprivileged loopback run by replacing its documented placeholders; several
    `upstream` addresses become one `server` line each (several sequencer instances).

    Every placeholder MUST occur in the production file, so the test fails if the two drift apart.
    """
    text = (ROOT / "nginx" / "nginx.conf").read_text()
    replacements = {
        "user nginx;": "",
        "/run/nginx.pid": str(work_dir / "nginx.pid"),
        "/var/log/nginx/": f"{work_dir}/",
        "/var/cache/nginx/": f"{work_dir}/",
        "server sequencer:8080;": " ".join(f"server {address};" for address in
                                           ([upstream] if isinstance(upstream, str) else upstream)),
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "/etc/nginx/certs/": f"{cert_dir}/",
    }
    assert set(replacements) == set(NGINX_PLACEHOLDERS)
    for placeholder, value in replacements.items():
        assert placeholder in text, f"nginx/nginx.conf no longer contains {placeholder!r}"
        text = text.replace(placeholder, value)
    rendered = work_dir / "nginx.conf"
    rendered.write_text(text)
    return rendered


@pytest.fixture(scope="session")
def tls_cert_dir(tmp_path_factory) -> Path:
    """A self-signed P-256 certificate for 127.0.0.1/localhost as fullchain.pem + privkey.pem."""
    cert_dir = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(cert_dir / "privkey.pem"), "-out", str(cert_dir / "fullchain.pem"), "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert_dir


def as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL server binaries refuse to run as root; run them as the `postgres` system user then."""
    if os.geteuid() == 0:
        return [tool("runuser"), "-u", "postgres", "--", *argv]
    return argv


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def find_tool():
    return tool


@pytest.fixture(scope="session")
def nginx_renderer():
    return render_nginx_conf


@pytest.fixture(scope="session")
def postgres_bin_dir() -> Path:
    """pgserver's PostgreSQL 16 binaries: pg_dump/pg_restore >= any test server, and `postgres -C`."""
    assert PGSERVER_BIN is not None and (PGSERVER_BIN / "postgres").exists(), "pgserver binaries are missing"
    return PGSERVER_BIN


@pytest.fixture(scope="session")
def postgres_user_command():
    return as_postgres_user


def setting_names_read_by_app() -> set[str]:
    """Environment variable names `app/config.py` reads, plus the process-level ones gunicorn and the image use."""
    import re

    source = (ROOT / "app" / "config.py").read_text()
    names = set(re.findall(r'env\.(?:get|int|float|bool|raw)\("([A-Z0-9_]+)"', source))
    names |= {"RUST_LOG", "LOG_LEVEL"}
    return names | {"WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}


@pytest.fixture(scope="session")
def known_setting_names() -> set[str]:
    names = setting_names_read_by_app()
    assert {"DATABASE_URL", "MAX_DB_CONNECTIONS", "TRUST_PROXY_HEADERS", "L2_CHAIN_ID"} <= names
    return names
