"""A real gunicorn and a real headless Chromium (Debian's chromium + chromium-driver, installed by
bin/install-test-tools; never downloaded at test time) for the console tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from app.client import AgentSigner
from app.client import SequencerClient
from tests.controls import BOOTSTRAP_KEY
from tests.controls import api_key
from tests.support.servers import start_gunicorn

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT_DIR = os.environ.get("CONSOLE_SCREENSHOT_DIR")
"""When set (e.g. to docs/console), the browser tests save the screenshots docs/CONSOLE.md shows there."""


@pytest.fixture(scope="package")
def console_server(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "VES_SEQUENCER_SIGNING_KEY": "33" * 32, "LOG_LEVEL": "info",
           "LONG_POLL_MAX_SECONDS": "5"}  # aborted tails end quickly, so the server stops quickly
    with start_gunicorn(database_url, env=env, workers=2) as server:
        yield server


def new_browser(ignore_certificate_errors: bool = False) -> webdriver.Chrome:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: bin/install-test-tools installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    if ignore_certificate_errors:
        options.add_argument("--ignore-certificate-errors")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser():
    driver = new_browser()
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class ConsoleStream:
    """A fresh tenant and store with an admin key, a registered agent and helpers to ingest and commit."""

    url: str
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    key: str
    signer: AgentSigner
    client: SequencerClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.key}"}

    def ingest(self, *payloads, entity_id="order-1", event_type="order.created", entity_type="order"):
        events = [self.signer.build_event(self.store_id, entity_type, entity_id, event_type, payload, ves_version=2)
                  for payload in payloads]
        result = self.client.ingest(events, agent_id=self.signer.agent_id)
        assert len(result.receipts) == len(events)
        return events, result.receipts

    def commit(self):
        response = requests.post(f"{self.url}/api/v1/ves/commitments", json={
            "tenant_id": str(self.tenant_id), "store_id": str(self.store_id)}, headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def console_stream(console_server, engine):
    tenant_id, store_id, agent_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    key = api_key(engine, tenant_id, "admin")
    signer = AgentSigner(os.urandom(32), tenant_id, agent_id, key_id=1)
    client = SequencerClient(console_server.url, key)
    client.register_signer(signer)
    return ConsoleStream(console_server.url, tenant_id, store_id, key, signer, client)


def wait_for(driver, predicate, timeout: float = 15.0):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: predicate(d))


def log_in(driver, base_url: str, key: str) -> None:
    driver.get(base_url.rstrip("/") + "/console")
    field = wait_for(driver, lambda d: d.find_elements(By.ID, "api-key"))[0]
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "scope"))


def checks(driver) -> dict[str, str]:
    """`{check id: status}` once no check is pending."""
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#checks li") and
             not d.find_elements(By.CSS_SELECTOR, "#checks li[data-status=pending]"), timeout=30)
    return {item.get_attribute("data-check"): item.get_attribute("data-status")
            for item in driver.find_elements(By.CSS_SELECTOR, "#checks li")}


def assert_no_dialog_and_no_console_errors(driver) -> None:
    with contextlib.suppress(NoAlertPresentException):
        alert = driver.switch_to.alert
        raise AssertionError(f"a dialog opened: {alert.text!r}")
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
              and entry.get("source") != "network"]  # a 404 for a not-yet-committed proof is an answer, not an error
    assert errors == []


def screenshot(driver, name: str) -> None:
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOT_DIR) / f"{name}.png"))
