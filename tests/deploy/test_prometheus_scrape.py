"""A real Prometheus server (Debian package `prometheus`) scrapes a real gunicorn's /metrics, and `promtool check
metrics` lints the exposition. Strict parsers (Prometheus 3) refuse a Content-Type with a repeated parameter; the
2.x server here falls back silently but says so in its debug log, which this test reads."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time

import pytest
import requests
import yaml

from tests.support.servers import free_port
from tests.support.servers import start_gunicorn


def content_type_parameters(value: str) -> list[tuple[str, str]]:
    media_type, *parameters = value.split(";")
    assert media_type.strip() == "text/plain"
    return [tuple(part.strip().split("=", 1)) for part in parameters]


@pytest.fixture(scope="module")
def server(database_url):
    with start_gunicorn(database_url, workers=2) as running:
        for path in ("/api/v1/ves/sequencer", "/ready"):
            requests.get(running.url + path, timeout=10)
        yield running


def test_content_type_names_each_parameter_once(server):
    response = requests.get(server.url + "/metrics", timeout=10)
    parameters = content_type_parameters(response.headers["Content-Type"])
    names = [name.lower() for name, _ in parameters]
    assert len(names) == len(set(names)), response.headers["Content-Type"]
    assert dict(parameters)["charset"] == "utf-8"
    assert dict(parameters)["version"] in {"0.0.4", "1.0.0"}


GUIDE_NAMES_PROMTOOL_DISLIKES = {"sequencer_ingest_latency_ms metric names should not contain abbreviated units"}
"""Lint findings about names the deployment guide prescribes (dashboards and alerts query them)."""


def test_promtool_parses_the_exposition_and_finds_nothing_but_guide_names(server, find_tool):
    body = requests.get(server.url + "/metrics", timeout=10).content
    result = subprocess.run([find_tool("promtool"), "check", "metrics"], input=body, capture_output=True,
                            timeout=60)
    findings = set(filter(None, result.stderr.decode().splitlines()))
    assert result.returncode in (0, 3), result.stderr.decode()  # 1 would be a parse error, 3 lint findings
    assert findings <= GUIDE_NAMES_PROMTOOL_DISLIKES, findings - GUIDE_NAMES_PROMTOOL_DISLIKES


@pytest.mark.slow
def test_a_real_prometheus_scrapes_it_without_falling_back(server, find_tool, tmp_path):
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "sequencer", "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}]}],
    }))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [find_tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=debug"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        target, samples = _wait_for_scrapes(f"http://127.0.0.1:{port}", process, scrapes=3)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    log_text = log_path.read_text(errors="replace")
    assert target["health"] == "up" and target["lastError"] == "", target
    assert samples, "sequencer_db_pool_size was not ingested"
    assert "Invalid content type" not in log_text and "Content-Type" not in log_text, log_text[-3000:]


def _wait_for_scrapes(base: str, process: subprocess.Popen, scrapes: int, timeout: float = 60.0):
    """Wait until the target has been scraped `scrapes` times (1 s apart); return it and a query's result."""
    deadline = time.monotonic() + timeout
    seen, target = set(), None
    while time.monotonic() < deadline:
        assert process.poll() is None, "prometheus exited"
        with contextlib.suppress(requests.RequestException, KeyError, IndexError):
            target = requests.get(base + "/api/v1/targets", timeout=2).json()["data"]["activeTargets"][0]
            if target["health"] == "up":
                seen.add(target["lastScrape"])
            if len(seen) >= scrapes:
                query = requests.get(base + "/api/v1/query", params={"query": 'sequencer_db_pool_size{job="sequencer"}'},
                                     timeout=2).json()
                return target, query["data"]["result"]
        time.sleep(0.3)
    raise AssertionError(f"prometheus did not scrape {scrapes} times in {timeout}s; last target state: {target}")
