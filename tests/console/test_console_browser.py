"""The console in headless Chromium against a real gunicorn: log in, streams, live tail, verification in the browser,
a tampered payload caught by exactly one check, hostile data rendered as text, scope-dependent admin actions."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
import sqlalchemy as sa
from selenium.webdriver.common.by import By

from tests.console.conftest import assert_no_dialog_and_no_console_errors
from tests.console.conftest import checks
from tests.console.conftest import log_in
from tests.console.conftest import screenshot
from tests.console.conftest import wait_for
from tests.controls import api_key

pytestmark = pytest.mark.slow

ALL_SIGNED_CHECKS = {"payload-hash", "signing-hash", "agent-signature", "receipt-hash", "receipt-signature",
                     "commitment-inclusion"}


def _rows(driver, table_id: str):
    return driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")


def _open_stream(driver, store_id):
    link = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"#streams tr[data-store='{store_id}'] a"))[0]
    link.click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "page-status") and "of head" in d.find_element(
        By.ID, "page-status").text)


def _open_event(driver, sequence: int):
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"#events tr[data-sequence='{sequence}'] a"))[0].click()


def test_log_in_see_the_stream_tail_a_new_event_and_verify_it(browser, console_stream, console_server):
    console_stream.ingest({"total": "10.99"}, {"total": "5.00"})
    log_in(browser, console_server.url, console_stream.key)
    assert browser.execute_script("return window.localStorage.length") == 0
    assert browser.execute_script("return sessionStorage.getItem('stateset-console-api-key')") == console_stream.key
    assert console_stream.key not in browser.current_url
    rows = wait_for(browser, lambda d: [r for r in _rows(d, "streams")
                                        if r.get_attribute("data-store") == str(console_stream.store_id)])
    assert rows[0].find_element(By.CSS_SELECTOR, "td.head").text == "2"
    screenshot(browser, "streams")

    _open_stream(browser, console_stream.store_id)
    assert len(_rows(browser, "events")) == 2
    browser.find_element(By.ID, "live-tail").click()
    wait_for(browser, lambda d: "tailing" in d.find_element(By.ID, "tail-state").text)
    time.sleep(0.5)
    _, receipts = console_stream.ingest({"total": "7.25", "note": "arrived live"}, entity_id="order-2")
    arrived = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#events tr[data-sequence='3']"), timeout=20)
    assert "order-2" in arrived[0].text
    assert receipts[0]["sequenceNumber"] == 3
    screenshot(browser, "live-tail")

    console_stream.commit()
    _open_event(browser, 3)
    statuses = checks(browser)
    assert {name: statuses[name] for name in ALL_SIGNED_CHECKS} == dict.fromkeys(ALL_SIGNED_CHECKS, "pass")
    assert statuses["checkpoint-inclusion"] in ("pass", "skip")
    caveat = browser.find_element(By.ID, "caveat").text
    assert "cannot audit it independently" in caveat and "ves-verify" in caveat
    assert '"arrived live"' in browser.find_element(By.ID, "payload").text
    screenshot(browser, "event-verified")
    assert_no_dialog_and_no_console_errors(browser)
    assert console_stream.key not in console_server.log_text()


def test_a_tampered_payload_fails_exactly_the_payload_check(browser, console_stream, console_server, engine):
    events, _ = console_stream.ingest({"total": "10.99"}, {"total": "20.00"})
    console_stream.commit()
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        changed = conn.execute(sa.text(
            "UPDATE events SET payload = CAST(:p AS jsonb) WHERE tenant_id = :t AND store_id = :s AND event_id = :e"),
            {"p": '{"total": "99999.99"}', "t": console_stream.tenant_id, "s": console_stream.store_id,
             "e": uuid.UUID(events[1]["event_id"])}).rowcount
    assert changed == 1
    log_in(browser, console_server.url, console_stream.key)
    _open_stream(browser, console_stream.store_id)
    _open_event(browser, 2)
    statuses = checks(browser)
    assert statuses["payload-hash"] == "fail"
    assert {name: statuses[name] for name in ALL_SIGNED_CHECKS - {"payload-hash"}} == dict.fromkeys(
        ALL_SIGNED_CHECKS - {"payload-hash"}, "pass")
    screenshot(browser, "event-tampered")
    _open_untampered = browser.find_element(By.LINK_TEXT, "← stream")
    _open_untampered.click()
    _open_event(browser, 1)
    assert set(checks(browser).values()) <= {"pass", "skip"}


HOSTILE = ['<img src=x onerror="window.__pwned=1;alert(1)">', "</script><script>window.__pwned=2;alert(2)</script>",
           "<svg onload=alert(3)>", "javascript:alert(4)", '"><iframe src=javascript:alert(5)>']


def test_hostile_payloads_entity_ids_and_event_types_render_as_text(browser, console_stream, console_server):
    console_stream.ingest({"html": HOSTILE[0], "script": HOSTILE[1], HOSTILE[2]: HOSTILE[3]},
                          entity_id=HOSTILE[4], event_type="<b>order.created</b>", entity_type="<i>order</i>")
    log_in(browser, console_server.url, console_stream.key)
    _open_stream(browser, console_stream.store_id)
    row = _rows(browser, "events")[0]
    assert HOSTILE[4] in row.text and "<b>order.created</b>" in row.text
    _open_event(browser, 1)
    statuses = checks(browser)
    assert statuses["payload-hash"] == "pass" and statuses["agent-signature"] == "pass"
    payload_text = browser.find_element(By.ID, "payload").text
    assert HOSTILE[0].replace('"', '\\"') in payload_text
    for tag in ("img", "iframe", "svg", "b", "i"):
        assert browser.find_elements(By.CSS_SELECTOR, f"main {tag}") == [], tag
    assert len(browser.find_elements(By.TAG_NAME, "script")) == 1
    assert browser.execute_script("return window.__pwned === undefined")
    assert_no_dialog_and_no_console_errors(browser)


def test_admin_actions_appear_only_for_keys_that_may_do_them(browser, console_stream, console_server, engine):
    read_only = api_key(engine, console_stream.tenant_id, "read")
    log_in(browser, console_server.url, read_only)
    browser.get(console_server.url + "/console/#/keys")
    wait_for(browser, lambda d: _rows(d, "agent-keys"))
    assert browser.find_elements(By.CSS_SELECTOR, ".admin-action") == []
    assert browser.find_elements(By.ID, "api-keys") == []
    screenshot(browser, "keys-read-only")

    browser.find_element(By.ID, "logout").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "api-key"))
    assert browser.execute_script("return sessionStorage.length") == 0
    log_in(browser, console_server.url, console_stream.key)
    browser.get(console_server.url + "/console/#/keys")
    wait_for(browser, lambda d: _rows(d, "api-keys"))
    assert browser.find_elements(By.CSS_SELECTOR, "#agent-keys .admin-action")
    assert browser.find_elements(By.CSS_SELECTOR, "#api-keys .admin-action")
    screenshot(browser, "keys-admin")


def test_a_store_scoped_key_sees_only_its_store(browser, console_stream, console_server, engine):
    other_store = uuid.uuid4()
    console_stream.ingest({"n": 1})
    console_stream.client.ingest([console_stream.signer.build_event(other_store, "order", "o", "order.created",
                                                                    {"n": 2})], agent_id=console_stream.signer.agent_id)
    scoped = api_key(engine, console_stream.tenant_id, "read", store_ids=[console_stream.store_id])
    log_in(browser, console_server.url, scoped)
    rows = wait_for(browser, lambda d: _rows(d, "streams"))
    assert [r.get_attribute("data-store") for r in rows] == [str(console_stream.store_id)]
    browser.get(console_server.url + f"/console/#/stream/{other_store}")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".error"))
    assert "403" in browser.find_element(By.CSS_SELECTOR, ".error").text


def test_the_live_tail_stops_while_the_tab_is_hidden(browser, console_stream, console_server):
    console_stream.ingest({"n": 1})
    log_in(browser, console_server.url, console_stream.key)
    _open_stream(browser, console_stream.store_id)
    browser.find_element(By.ID, "live-tail").click()
    wait_for(browser, lambda d: "tailing" in d.find_element(By.ID, "tail-state").text)
    browser.execute_script("Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
                           "document.dispatchEvent(new Event('visibilitychange'));")
    wait_for(browser, lambda d: "paused" in d.find_element(By.ID, "tail-state").text)
    console_stream.ingest({"n": 2})
    time.sleep(2.0)
    assert browser.find_elements(By.CSS_SELECTOR, "#events tr[data-sequence='2']") == []
    browser.execute_script("Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});"
                           "document.dispatchEvent(new Event('visibilitychange'));")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#events tr[data-sequence='2']"), timeout=20)


def test_a_bad_key_is_refused_and_forgotten(browser, console_server):
    log_in_page = console_server.url + "/console/"
    browser.get(log_in_page)
    wait_for(browser, lambda d: d.find_elements(By.ID, "api-key"))[0].send_keys("ssk_not-a-real-key")
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    error = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".error"))[0]
    assert "401" in error.text
    assert browser.execute_script("return sessionStorage.length") == 0
    assert requests.get(console_server.url + "/api/v1/whoami", timeout=5).status_code == 401


def test_the_console_proves_an_event_in_the_served_checkpoint(browser, console_stream, console_server):
    """Against the real log endpoints: the verifier key (whose base64 may hold "+"), the signed checkpoint and the
    RFC 9162 inclusion proof, all checked in the browser."""
    console_stream.ingest({"total": "1.00"}, {"total": "2.00"})
    log_in(browser, console_server.url, console_stream.key)
    _open_stream(browser, console_stream.store_id)
    _open_event(browser, 2)
    assert checks(browser)["checkpoint-inclusion"] == "pass"
    detail = browser.find_element(By.CSS_SELECTOR, "#checks li[data-check=checkpoint-inclusion]")
    assert "size 2" in detail.get_attribute("textContent")


def test_the_event_type_filter_reads_on_until_a_page_of_matches(browser, console_stream, console_server):
    """60 events of one type, then 60 of another: filtering on the second reads past the first page of the stream
    and shows only matching events, 50 of them, with a next page from the one after the last shown."""
    console_stream.ingest(*[{"n": n} for n in range(60)], event_type="order.created")
    console_stream.ingest(*[{"n": n} for n in range(60)], event_type="order.shipped")
    log_in(browser, console_server.url, console_stream.key)
    browser.get(console_server.url + f"/console/#/stream/{console_stream.store_id}?event_type=order.shipped")
    wait_for(browser, lambda d: d.find_elements(By.ID, "page-status") and
             "of type order.shipped" in d.find_element(By.ID, "page-status").text, timeout=30)
    rows = _rows(browser, "events")
    assert len(rows) == 50
    assert {row.find_elements(By.TAG_NAME, "td")[1].text for row in rows} == {"order.shipped"}
    assert [int(r.get_attribute("data-sequence")) for r in rows] == list(range(61, 111))
    assert "from=111" in browser.find_element(By.ID, "next-page").get_attribute("href")
    browser.find_element(By.ID, "next-page").click()
    wait_for(browser, lambda d: [int(r.get_attribute("data-sequence")) for r in _rows(d, "events")] ==
             list(range(111, 121)), timeout=30)
