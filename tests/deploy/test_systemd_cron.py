"""systemd units checked by `systemd-analyze verify` with the install prefix pointed at this checkout, and the
crontab alternative checked field by field."""

from __future__ import annotations

import re
import subprocess

import pytest

INSTALL_PREFIX = "/opt/stateset-sequencer"
UNITS = ("stateset-sequencer.service", "stateset-sequencer-anchor.service", "stateset-sequencer-anchor.timer")


def render_units(repo_root, out_dir, mutate=lambda text: text):
    for unit in UNITS:
        text = (repo_root / "deploy" / "systemd" / unit).read_text()
        assert INSTALL_PREFIX in text or unit.endswith(".timer")
        (out_dir / unit).write_text(mutate(text.replace(INSTALL_PREFIX, str(repo_root))))
    return [str(out_dir / unit) for unit in UNITS]


def verify(find_tool, paths):
    return subprocess.run([find_tool("systemd-analyze"), "verify", "--man=no", *paths], capture_output=True, text=True)


def test_units_verify_without_any_warning(repo_root, find_tool, tmp_path):
    assert (repo_root / ".venv" / "bin" / "stateset-sequencer-admin").exists(), "run `pip install -e .` first"
    result = verify(find_tool, render_units(repo_root, tmp_path))
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_verify_reports_a_misspelt_hardening_key(repo_root, find_tool, tmp_path):
    paths = render_units(repo_root, tmp_path, lambda t: t.replace("ProtectSystem=strict", "ProtectSystm=strict"))
    assert "Unknown key" in verify(find_tool, paths).stderr


def unit_settings(repo_root, unit) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (repo_root / "deploy" / "systemd" / unit).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_service_runs_gunicorn_hardened(repo_root):
    service = unit_settings(repo_root, "stateset-sequencer.service")
    assert service["ExecStart"] == [f"{INSTALL_PREFIX}/.venv/bin/gunicorn -c config/gunicorn.conf.py wsgi:app"]
    assert service["EnvironmentFile"] == ["/etc/stateset-sequencer/sequencer.env"]
    assert service["User"] == ["stateset-sequencer"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ProtectHome": "yes"}.items():
        assert service[key] == [value], key
    multiproc = [v for v in service["Environment"] if v.startswith("PROMETHEUS_MULTIPROC_DIR=")]
    assert [m.split("=", 1)[1] for m in multiproc] == service["ReadWritePaths"]
    assert service["ReadWritePaths"] == ["/run/" + service["RuntimeDirectory"][0]]


def test_anchor_is_a_oneshot_started_by_the_timer(repo_root):
    anchor = unit_settings(repo_root, "stateset-sequencer-anchor.service")
    timer = unit_settings(repo_root, "stateset-sequencer-anchor.timer")
    assert anchor["Type"] == ["oneshot"]
    assert anchor["ExecStart"] == [f"{INSTALL_PREFIX}/.venv/bin/stateset-sequencer-admin anchor --once"]
    assert timer["Unit"] == ["stateset-sequencer-anchor.service"]
    assert timer["WantedBy"] == ["timers.target"]


def cron_field_ok(field: str, low: int, high: int) -> bool:
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base == "*":
            continue
        bounds = base.split("-")
        if not all(b.isdigit() and low <= int(b) <= high for b in bounds) or len(bounds) > 2:
            return False
    return True


@pytest.mark.parametrize("field,low,high,ok", [("*/5", 0, 59, True), ("61", 0, 59, False), ("1-5", 0, 6, True),
                                               ("*/0", 0, 59, False)])
def test_cron_field_checker(field, low, high, ok):
    assert cron_field_ok(field, low, high) is ok


def test_crontab_line_is_well_formed(repo_root):
    lines = [line for line in (repo_root / "deploy" / "cron" / "stateset-sequencer-anchor.cron").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    jobs = [line for line in lines if not re.match(r"^[A-Z_]+=", line)]
    assert len(jobs) == 1
    minute, hour, dom, month, dow, user, command = jobs[0].split(None, 6)
    ranges = [(minute, 0, 59), (hour, 0, 23), (dom, 1, 31), (month, 1, 12), (dow, 0, 7)]
    assert all(cron_field_ok(field, low, high) for field, low, high in ranges)
    assert user == "stateset-sequencer"
    assert "stateset-sequencer-admin anchor --once" in command
    assert "flock -n" in command
    subprocess.run(["sh", "-n", "-c", command], check=True)


def test_watermark_crontab_line_is_well_formed(repo_root):
    lines = [line for line in (repo_root / "deploy" / "cron" / "stateset-sequencer-watermark.cron").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    jobs = [line for line in lines if not re.match(r"^[A-Z_]+=", line)]
    assert len(jobs) == 1
    minute, hour, dom, month, dow, user, command = jobs[0].split(None, 6)
    ranges = [(minute, 0, 59), (hour, 0, 23), (dom, 1, 31), (month, 1, 12), (dow, 0, 7)]
    assert all(cron_field_ok(field, low, high) for field, low, high in ranges)
    assert user == "stateset-sequencer" and "%" not in command, "cron turns % into a newline"
    assert 'stateset-sequencer-admin export-watermark --out "$WATERMARK_DIR/latest.json"' in command
    assert "WATERMARK_DIR=/var/backups/stateset-sequencer/watermarks" in lines
    subprocess.run(["sh", "-n", "-c", command], check=True)


def test_env_example_sets_only_settings_the_app_reads(repo_root, known_setting_names):
    lines = (repo_root / "deploy/systemd/sequencer.env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert "DATABASE_URL" in names
    assert "VES_SEQUENCER_SIGNING_KEY" in names, "the server refuses to start without a receipt key"
    assert not (names - known_setting_names)
    assert "PROMETHEUS_MULTIPROC_DIR" not in names
