"""Every metric the alert rules and the Grafana dashboard query is exported by a real gunicorn's /metrics.

Labelled metrics appear in multiprocess output only after their first sample; for those, a declaration with the
same labels in app/metrics.py counts (they cannot be produced here without ingesting events)."""

from __future__ import annotations

import json
import re

import pytest
import requests
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import start_gunicorn

APP_METRIC = re.compile(r"\b((?:sequencer|flask)_[a-z0-9_]+)\b")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def queried_metric_names(repo_root) -> dict[str, set[str]]:
    """Base metric name -> where it is queried ("alerts.yml", dashboard panel titles)."""
    used: dict[str, set[str]] = {}
    rules = yaml.safe_load((repo_root / "deploy/prometheus/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            for name in APP_METRIC.findall(rule["expr"]):
                used.setdefault(base_name(name), set()).add(f"alert {rule['alert']}")
    dashboard = json.loads((repo_root / "deploy/grafana/sequencer-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in APP_METRIC.findall(target["expr"]):
                used.setdefault(base_name(name), set()).add(f"panel {panel['title']}")
    for variable in dashboard["templating"]["list"]:
        for name in APP_METRIC.findall(str(variable.get("query", ""))):
            used.setdefault(base_name(name), set()).add(f"variable {variable['name']}")
    return used


def declared_labelled_metrics() -> set[str]:
    import app.metrics as metrics

    return {base_name(m._name) for m in vars(metrics).values()
            if isinstance(m, MetricWrapperBase) and m._labelnames}


@pytest.fixture(scope="module")
def scraped_names(database_url):
    with start_gunicorn(database_url, workers=2) as server:
        for path in ("/api/v1/ves/sequencer", "/api/v1/head", "/ready"):
            requests.get(server.url + path, timeout=10)
        body = requests.get(server.url + "/metrics", timeout=10).text
    return {base_name(sample.name) for family in text_string_to_metric_families(body) for sample in family.samples}


def test_base_name_strips_prometheus_suffixes():
    assert base_name("sequencer_ingest_latency_ms_bucket") == "sequencer_ingest_latency_ms"
    assert base_name("sequencer_events_ingested_total") == "sequencer_events_ingested"
    assert base_name("sequencer_db_connections") == "sequencer_db_connections"


def test_dashboard_and_alerts_query_the_guide_metrics(repo_root):
    used = queried_metric_names(repo_root)
    assert {"sequencer_events_ingested", "sequencer_events_rejected", "sequencer_sequence_head",
            "sequencer_ingest_latency_ms", "sequencer_db_connections", "sequencer_db_pool_size",
            "sequencer_anchor_oldest_unanchored_age_seconds"} <= set(used)


def test_every_queried_metric_is_exported(repo_root, scraped_names):
    declared = declared_labelled_metrics()
    missing = {name: sorted(where) for name, where in queried_metric_names(repo_root).items()
               if name not in scraped_names and name not in declared}
    assert not missing, f"queried but not exported: {missing}"


def test_unlabelled_sequencer_metrics_are_in_the_scrape(scraped_names):
    for name in ("sequencer_db_pool_size", "sequencer_db_connections", "sequencer_ingest_latency_ms",
                 "flask_http_request_duration_seconds", "flask_http_request"):
        assert name in scraped_names, name
