"""The console through the shipped nginx/nginx.conf (TLS, real gunicorn), and with the whole server under a path
prefix (`location /sequencer/ { proxy_pass http://upstream/; }`): the page, its API calls and its verification all
work, because the console addresses the API relative to its own URL."""

from __future__ import annotations

import os
import uuid

import pytest
from selenium.webdriver.common.by import By

from app.client import AgentSigner
from app.client import SequencerClient
from tests.console.conftest import checks
from tests.console.conftest import log_in
from tests.console.conftest import new_browser
from tests.console.conftest import wait_for
from tests.controls import api_key
from tests.deploy.test_nginx_proxy import running_nginx
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow

PREFIX = "/sequencer/"


def _prefixed_renderer(render):
    """nginx/nginx.conf with its one `location /` moved under PREFIX (nginx strips the prefix)."""

    def render_with_prefix(work_dir, upstream, http_port, https_port, cert_dir):
        conf = render(work_dir, upstream, http_port, https_port, cert_dir)
        text = conf.read_text()
        assert text.count("location / {") == 1 and text.count("proxy_pass http://sequencer_upstream;") == 1
        text = text.replace("location / {", f"location {PREFIX} {{").replace(
            "proxy_pass http://sequencer_upstream;", "proxy_pass http://sequencer_upstream/;")
        conf.write_text(text)
        return conf

    return render_with_prefix


@pytest.fixture(scope="module")
def stream_on_server(database_url, engine):
    with start_gunicorn(database_url, env={"VES_SEQUENCER_SIGNING_KEY": "44" * 32, "TRUST_PROXY_HEADERS": "1",
                                           "LONG_POLL_MAX_SECONDS": "5"}, workers=2) as server:
        tenant, store, agent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        key = api_key(engine, tenant, "admin")
        signer = AgentSigner(os.urandom(32), tenant, agent, key_id=1)
        client = SequencerClient(server.url, key)
        client.register_signer(signer)
        client.ingest([signer.build_event(store, "order", "o-1", "order.created", {"n": 1}, ves_version=2)],
                      agent_id=agent)
        yield server, key, store


@pytest.mark.parametrize("prefix", ["/", PREFIX], ids=["root", "prefix"])
def test_console_logs_in_lists_and_verifies_through_nginx(stream_on_server, find_tool, nginx_renderer, tls_cert_dir,
                                                           prefix):
    server, key, store = stream_on_server
    renderer = nginx_renderer if prefix == "/" else _prefixed_renderer(nginx_renderer)
    with running_nginx(find_tool, renderer, server.port, tls_cert_dir) as (_, https_port, _):
        browser = new_browser(ignore_certificate_errors=True)
        try:
            base = f"https://127.0.0.1:{https_port}{prefix}"
            log_in(browser, base, key)
            assert browser.current_url.startswith(base + "console/")
            row = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#streams tr[data-store='{store}'] a"))
            row[0].click()
            wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#events tr[data-sequence='1'] a"))[0].click()
            statuses = checks(browser)
            assert statuses["payload-hash"] == statuses["agent-signature"] == statuses["receipt-signature"] == "pass"
        finally:
            browser.quit()
