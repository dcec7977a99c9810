"""Kubernetes manifests: schema validation with kubernetes-validate (bundled OpenAPI schemas, offline, --strict)
plus cross-references no schema can check (selectors, ports, referenced ConfigMaps/Secrets and keys)."""

from __future__ import annotations

import configparser
import inspect
import re
import subprocess

import pytest
import yaml
from sqlalchemy.engine import make_url

KUBERNETES_VERSION = "1.30.0"


@pytest.fixture(scope="module")
def manifest_files(repo_root):
    files = sorted((repo_root / "deploy" / "k8s").glob("*.yaml"))
    assert len(files) >= 10
    return files


@pytest.fixture(scope="module")
def resources(manifest_files):
    """(kind, name) -> resource, across every manifest file."""
    found = {}
    for path in manifest_files:
        for doc in yaml.safe_load_all(path.read_text()):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} defined twice"
            assert doc["metadata"].get("namespace", "stateset") == "stateset" or doc["kind"] == "Namespace"
            found[key] = doc
    return found


def kubernetes_validate(find_tool, paths):
    return subprocess.run([find_tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, *map(str, paths)],
                          capture_output=True, text=True)


def test_every_manifest_passes_strict_schema_validation(find_tool, manifest_files):
    result = kubernetes_validate(find_tool, manifest_files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_validation_rejects_an_unknown_field(find_tool, repo_root, tmp_path):
    broken = (repo_root / "deploy" / "k8s" / "deployment.yaml").read_text().replace("replicas: 3", "replicaz: 3")
    (tmp_path / "deployment.yaml").write_text(broken)
    assert kubernetes_validate(find_tool, [tmp_path / "deployment.yaml"]).returncode != 0


def test_expected_resources_exist(resources):
    assert {
        ("Namespace", "stateset"), ("ConfigMap", "sequencer-config"), ("Secret", "sequencer-secrets"),
        ("Deployment", "sequencer"), ("Service", "sequencer-service"), ("Ingress", "sequencer-ingress"),
        ("HorizontalPodAutoscaler", "sequencer-hpa"), ("PodDisruptionBudget", "sequencer-pdb"),
        ("StatefulSet", "postgres"), ("Service", "postgres-service"), ("CronJob", "sequencer-anchor"),
        ("Job", "sequencer-migrate"), ("ConfigMap", "pgbouncer-config"), ("Deployment", "pgbouncer"),
        ("Service", "pgbouncer-service"), ("Secret", "pgbouncer-secrets"), ("PodDisruptionBudget", "pgbouncer-pdb"),
    } <= set(resources)


def pod_specs(resources):
    """(kind/name, pod template) of every workload."""
    for (kind, name), doc in resources.items():
        if kind in ("Deployment", "StatefulSet", "Job"):
            yield f"{kind}/{name}", doc["spec"]["template"]
        elif kind == "CronJob":
            yield f"{kind}/{name}", doc["spec"]["jobTemplate"]["spec"]["template"]


def test_workload_selectors_match_their_pod_labels(resources):
    for kind in ("Deployment", "StatefulSet"):
        for (k, name), doc in resources.items():
            if k == kind:
                selector = doc["spec"]["selector"]["matchLabels"]
                labels = doc["spec"]["template"]["metadata"]["labels"]
                assert selector.items() <= labels.items(), f"{kind}/{name}"


def test_services_select_pods_on_ports_they_expose(resources):
    templates = dict(pod_specs(resources))
    for (kind, name), doc in resources.items():
        if kind != "Service":
            continue
        matching = [t for t in templates.values() if doc["spec"]["selector"].items() <= t["metadata"]["labels"].items()]
        assert matching, f"Service/{name} selects no pods"
        container_ports = {p["containerPort"] for t in matching for c in t["spec"]["containers"] for p in c["ports"]}
        for port in doc["spec"]["ports"]:
            assert port["targetPort"] in container_ports, f"Service/{name} targets {port['targetPort']}"


def test_ingress_hpa_pdb_and_statefulset_references_resolve(resources):
    ingress = resources[("Ingress", "sequencer-ingress")]
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = resources[("Service", backend["name"])]
    assert backend["port"]["number"] in {p["port"] for p in service["spec"]["ports"]}

    target = resources[("HorizontalPodAutoscaler", "sequencer-hpa")]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) in resources

    deployment = resources[("Deployment", "sequencer")]
    pdb = resources[("PodDisruptionBudget", "sequencer-pdb")]
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] < resources[("HorizontalPodAutoscaler", "sequencer-hpa")]["spec"]["minReplicas"]

    statefulset = resources[("StatefulSet", "postgres")]
    headless = resources[("Service", statefulset["spec"]["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None"


def test_referenced_configmaps_secrets_keys_and_volumes_exist(resources):
    for where, template in pod_specs(resources):
        spec = template["spec"]
        volume_names = {v["name"] for v in spec.get("volumes", [])}
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                data = resources[("ConfigMap", volume["configMap"]["name"])]["data"]
                assert {item["key"] for item in volume["configMap"].get("items", [])} <= set(data), where
            if "secret" in volume:
                data = resources[("Secret", volume["secret"]["secretName"])]["stringData"]
                assert {item["key"] for item in volume["secret"].get("items", [])} <= set(data), where
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in resources, where
                if "secretRef" in source:
                    assert ("Secret", source["secretRef"]["name"]) in resources, where
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in resources[("Secret", ref["name"])]["stringData"], where
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volume_names or mount["name"] in {
                    c["metadata"]["name"] for c in resources.get(("StatefulSet", "postgres"), {})["spec"].get(
                        "volumeClaimTemplates", [])}, f"{where}: {mount['name']}"


def test_configmap_and_secret_hold_only_settings_the_app_reads(resources, known_setting_names):
    config = resources[("ConfigMap", "sequencer-config")]["data"]
    secret = resources[("Secret", "sequencer-secrets")]["stringData"]
    assert not (set(config) - known_setting_names)
    assert not (set(secret) - known_setting_names)
    assert not (set(config) & set(secret))
    assert config["MAX_BODY_SIZE_BYTES"] == "10485760"
    assert config["SCHEMA_VALIDATION_MODE"] in {"disabled", "warn", "enforce", "strict", "required"}
    assert "DATABASE_URL" in secret and "SEQUENCER_PRIVATE_KEY" in secret
    assert "VES_SEQUENCER_SIGNING_KEY" in secret, "the server refuses to start without a receipt key"


def test_sequencer_pods_are_probed_limited_and_non_root(resources):
    pod = resources[("Deployment", "sequencer")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert pod["affinity"]["podAntiAffinity"]
    multiproc = resources[("ConfigMap", "sequencer-config")]["data"]["PROMETHEUS_MULTIPROC_DIR"]
    assert multiproc in {m["mountPath"] for m in container["volumeMounts"]}


def test_every_container_has_resource_limits(resources):
    for where, template in pod_specs(resources):
        for container in template["spec"]["containers"]:
            assert container["resources"]["limits"]["memory"], where


def test_cronjob_anchors_and_job_migrates(resources):
    cron = resources[("CronJob", "sequencer-anchor")]
    (anchor,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert anchor["command"] == ["stateset-sequencer-admin", "anchor", "--once"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (migrate,) = resources[("Job", "sequencer-migrate")]["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["alembic", "upgrade", "head"]
    assert resources[("ConfigMap", "sequencer-config")]["data"]["DB_MIGRATE_ON_STARTUP"] == "0"


def test_postgres_configmap_carries_the_drop_in_file_verbatim(resources, repo_root):
    data = resources[("ConfigMap", "postgres-config")]["data"]
    drop_in = (repo_root / "deploy" / "postgres" / "postgresql.conf.d" / "sequencer.conf").read_text()
    assert data["sequencer.conf"] == drop_in
    assert "include 'sequencer.conf'" in data["postgresql.conf"]


def pgbouncer_ini(resources) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(inline_comment_prefixes=None)
    parser.read_string(resources[("ConfigMap", "pgbouncer-config")]["data"]["pgbouncer.ini"])
    return parser


def service_address(resources, host: str, port: int) -> tuple[str, int]:
    """`(service name, target port)` of the Service `host` names, checking that it exposes `port`."""
    service = resources[("Service", host)]
    (exposed,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    return host, exposed["targetPort"]


def test_sequencer_pools_go_through_pgbouncer_and_listen_goes_directly_to_postgres(resources):
    secret = resources[("Secret", "sequencer-secrets")]["stringData"]
    pooled, direct = make_url(secret["DATABASE_URL"]), make_url(secret["DATABASE_LISTEN_URL"])
    assert service_address(resources, pooled.host, pooled.port) == ("pgbouncer-service", 6432)
    assert service_address(resources, direct.host, direct.port) == ("postgres-service", 5432)
    ini = pgbouncer_ini(resources)
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert int(ini["pgbouncer"]["listen_port"]) == 6432
    target = dict(part.split("=", 1) for part in ini["databases"][pooled.database].split())
    assert service_address(resources, target["host"], int(target["port"])) == ("postgres-service", 5432)
    assert target["dbname"] == direct.database == pooled.database
    userlist = resources[("Secret", "pgbouncer-secrets")]["stringData"]["userlist.txt"]
    assert re.match(rf'^"{pooled.username}" "', userlist), "PgBouncer must know the sequencer's user"


def test_pgbouncer_configmap_is_the_compose_file_with_the_kubernetes_host(resources, repo_root):
    shipped = (repo_root / "deploy" / "pgbouncer" / "pgbouncer.ini").read_text()
    in_cluster = resources[("ConfigMap", "pgbouncer-config")]["data"]["pgbouncer.ini"]
    assert in_cluster == shipped.replace("host=postgres port=5432", "host=postgres-service port=5432")
    assert in_cluster != shipped


def test_postgres_and_pgbouncer_admit_exactly_the_pods_that_use_them(resources):
    def admitted(policy: str) -> set[str]:
        rules = resources[("NetworkPolicy", policy)]["spec"]["ingress"]
        return {peer["podSelector"]["matchLabels"]["app"] for rule in rules for peer in rule["from"]}

    assert admitted("pgbouncer-from-sequencer-only") == {"sequencer", "sequencer-anchor", "sequencer-migrate"}
    assert {"sequencer", "pgbouncer"} <= admitted("postgres-from-sequencer-only")


POSTGRES_RESERVED = 3 + 5
"""superuser_reserved_connections (default 3) plus an operator's psql sessions and a backup."""


def test_connection_budget_holds_at_the_hpas_maximum_replicas(resources):
    """docs/DEPLOYMENT.md, "Scaling out": at the HPA's maximum plus the rollout surge, every worker's pool fits
    PgBouncer's max_client_conn (the guide's PGBOUNCER_MAX_CONNECTIONS = 200) with the anchoring and migration jobs,
    and PostgreSQL's max_connections holds every PgBouncer's server pool plus every worker's direct LISTEN
    connection."""
    from app.startup import open_database

    config = resources[("ConfigMap", "sequencer-config")]["data"]
    workers, threads, pool = (int(config[name]) for name in ("WEB_CONCURRENCY", "WEB_THREADS", "MAX_DB_CONNECTIONS"))
    assert threads <= pool
    deployment = resources[("Deployment", "sequencer")]["spec"]
    pods = resources[("HorizontalPodAutoscaler", "sequencer-hpa")]["spec"]["maxReplicas"] + int(
        deployment["strategy"]["rollingUpdate"]["maxSurge"])
    anchoring = inspect.signature(open_database).parameters["pool_size"].default
    migration = 1
    ini = pgbouncer_ini(resources)["pgbouncer"]
    assert int(ini["max_client_conn"]) == 200
    assert pods * workers * pool + anchoring + migration <= int(ini["max_client_conn"])
    bouncers = resources[("Deployment", "pgbouncer")]["spec"]["replicas"]
    assert int(ini["default_pool_size"]) + int(ini["reserve_pool_size"]) <= int(ini["max_db_connections"])
    server_side = bouncers * int(ini["max_db_connections"])
    listeners = pods * workers
    conf = resources[("ConfigMap", "postgres-config")]["data"]["sequencer.conf"]
    max_connections = int(re.search(r"^max_connections = (\d+)", conf, re.M).group(1))
    assert server_side + listeners + POSTGRES_RESERVED <= max_connections
