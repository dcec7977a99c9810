import datetime

from app import __version__


def test_health_is_public_and_needs_no_database(make_app):
    app = make_app(database_url="postgresql+psycopg2://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/health")
    assert response.status_code == 200
    body = response.json
    assert {k: v for k, v in body.items() if k != "timestamp"} == {"status": "healthy",
                                                                   "service": "stateset-sequencer",
                                                                   "version": __version__}
    assert datetime.datetime.fromisoformat(body["timestamp"]).tzinfo is not None  # the original's field
    assert response.headers["X-Request-ID"]


def test_ready_reports_connected_and_current(client):
    response = client.get("/ready")
    assert response.status_code == 200, response.json
    body = response.json
    assert {k: body[k] for k in ("status", "database", "migrations")} == {"status": "ready", "database": "connected",
                                                                          "migrations": "current"}
    # The original's fields, added beside ours.
    assert body["response_time_ms"] >= 0 and set(body["pool"]) == {"status", "utilization", "active", "idle"}


def test_ready_is_503_with_json_when_database_unreachable(make_app):
    app = make_app(database_url="postgresql+psycopg2://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    assert response.json["code"] == "DATABASE_UNAVAILABLE"
    assert set(response.json) == {"error", "code", "request_id"}


def test_request_id_is_echoed(client):
    response = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_unknown_path_is_json_404(client):
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert response.json["code"] == "NOT_FOUND"
    assert response.json["request_id"] == response.headers["X-Request-ID"]


def test_ready_is_503_while_the_schema_is_behind_head(database_server_url, make_app):
    from tests.support.pg import create_database
    from tests.support.pg import drop_database

    url = create_database(database_server_url, prefix="seqbehind")
    try:
        app = make_app(database_url=url)
        response = app.test_client().get("/ready")
        assert response.status_code == 503 and response.json["code"] == "MIGRATIONS_PENDING"
        assert "current: None" in response.json["error"]
        app.extensions["sequencer"].engine.dispose()
    finally:
        drop_database(database_server_url, url)
