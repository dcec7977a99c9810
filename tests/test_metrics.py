import uuid

from tests.controls import api_key
from tests.controls import auth

GUIDE_METRICS = ["sequencer_events_ingested_total", "sequencer_events_rejected_total", "sequencer_sequence_head",
                 "sequencer_ingest_latency_ms", "sequencer_db_connections", "sequencer_commitments_total"]


def test_metrics_endpoint_is_open_and_lists_guide_metrics(client):
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    for name in GUIDE_METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert "sequencer_db_pool_size" in text
    assert "sequencer_anchor_unanchored_commitments" in text


def test_metrics_can_require_an_admin_key(make_app, engine):
    app = make_app(metrics_require_auth=True)
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    reader = api_key(engine, uuid.uuid4(), "read")
    assert client.get("/metrics", headers=auth(reader)).status_code == 403
    assert client.get("/metrics", headers=auth("test-bootstrap-admin-key-0123456789")).status_code == 200
