"""Prometheus config and alert rules checked by promtool (Debian package `prometheus`), alerts unit-tested with
`promtool test rules`, and the Grafana dashboard's structure."""

from __future__ import annotations

import json
import subprocess

import pytest


def promtool(find_tool, repo_root, *args):
    return subprocess.run([find_tool("promtool"), *args], cwd=repo_root / "deploy" / "prometheus",
                          capture_output=True, text=True)


def test_config_and_rules_pass_promtool_check(find_tool, repo_root):
    config = promtool(find_tool, repo_root, "check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool(find_tool, repo_root, "check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_alert_unit_tests_pass(find_tool, repo_root):
    result = promtool(find_tool, repo_root, "test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_cover_every_alert(repo_root):
    import yaml

    alerts = {rule["alert"] for group in yaml.safe_load((repo_root / "deploy/prometheus/alerts.yml").read_text())
              ["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((repo_root / "deploy/prometheus/alerts.test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert fired == alerts


def test_guide_thresholds_are_in_the_rules(repo_root):
    text = (repo_root / "deploy/prometheus/alerts.yml").read_text()
    assert "rate(sequencer_events_rejected_total[5m])) * 60 > 10" in text
    assert "histogram_quantile(0.99" in text and "sequencer_ingest_latency_ms_bucket" in text and "> 500" in text
    assert "sequencer_db_connections) / sum by (job, instance) (sequencer_db_pool_size) > 0.8" in text


def test_promtool_rejects_a_broken_expression(find_tool, repo_root, tmp_path):
    broken = (repo_root / "deploy/prometheus/alerts.yml").read_text().replace("> 500", "> > 500")
    (tmp_path / "alerts.yml").write_text(broken)
    result = subprocess.run([find_tool("promtool"), "check", "rules", str(tmp_path / "alerts.yml")],
                            capture_output=True, text=True)
    assert result.returncode != 0


@pytest.fixture(scope="module")
def dashboard(repo_root):
    return json.loads((repo_root / "deploy/grafana/sequencer-dashboard.json").read_text())


def test_dashboard_panels_are_well_formed(dashboard):
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(target["expr"] for target in panel["targets"])
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not (area & cells), f"panel {panel['title']} overlaps another"
        cells |= area
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "job"}
