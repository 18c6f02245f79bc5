"""The Helm chart, rendered by real Helm (helm-python-sdk) and checked against the Kubernetes
JSON schemas (kubernetes-validate), as an install would see it."""

from __future__ import annotations

import base64
import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

import firebreak.dead_letters.store  # registers the dead-letter metrics
import firebreak.metrics  # noqa: F401  (registers the rest)
from firebreak.cli import parse_args
from firebreak.settings import GRPC_SERVICES, SERVICES, Settings

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "deploy" / "helm" / "firebreak"
KUBERNETES_VERSION = kubernetes_validate.utils.latest_version()
RELEASE = "fb"
NAMESPACE = "incidents"

VALUES: dict[str, Any] = {
    "secret": {
        "adminKey": "an-admin-key-of-enough-length",
        "linkSecret": "a-link-secret-of-at-least-32-characters",
        "evidenceMasterKey": base64.b64encode(b"m" * 32).decode(),
        "evidenceSigningKey": base64.b64encode(b"s" * 32).decode(),
        "scopeTokenKey": base64.b64encode(b"t" * 32).decode(),
        "scopeTokenPublicKey": base64.b64encode(b"p" * 32).decode(),
        "natsPasswords": {service: f"nats-password-of-{service}" for service in SERVICES},
        "databaseUrls": {
            service: f"postgresql://firebreak@postgres:5432/firebreak_{service}"
            for service in SERVICES
        },
    }
}

Manifest = dict[str, Any]


def with_values(**overrides: Any) -> dict[str, Any]:
    """The test values with `overrides` merged in (nested dicts merge, the rest replaces)."""
    values = copy.deepcopy(VALUES)

    def merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(values, overrides)
    return values


def render(values: dict[str, Any] | None = None, *, release: str = RELEASE) -> list[Manifest]:
    with helm.Chart.load(CHART) as chart:
        files = chart.render(
            VALUES if values is None else values,
            name=release,
            namespace=NAMESPACE,
            is_install=True,
        )
    return [
        document
        for path, text in sorted(files.items())
        if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text)
        if document
    ]


def notes(values: dict[str, Any]) -> str:
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return files["firebreak/templates/NOTES.txt"]


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    """Objects of one kind by their component label (Services: not the headless ones)."""
    return {
        manifest["metadata"]["labels"]["app.kubernetes.io/component"]: manifest
        for manifest in manifests
        if manifest["kind"] == kind and not is_headless(manifest)
    }


def is_headless(manifest: Manifest) -> bool:
    return manifest["metadata"]["labels"].get("firebreak.io/headless") == "true"


def headless_services(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {
        manifest["metadata"]["labels"]["app.kubernetes.io/component"]: manifest
        for manifest in manifests
        if manifest["kind"] == "Service" and is_headless(manifest)
    }


def container(deployment: Manifest) -> Manifest:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env_of(workload: Manifest) -> dict[str, Any]:
    return {item["name"]: item for item in container(workload)["env"]}


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return render()


def test_lint_passes_strictly() -> None:
    report = helm.lint(CHART, VALUES, strict=True, kube_version=f"v{KUBERNETES_VERSION}.0")
    problems = [message for message in report["messages"] if message["severity"] >= 2]
    assert report["errors"] == [] and problems == []


@pytest.mark.parametrize(
    "values_file", ["values.yaml", "values-production.yaml"], ids=["defaults", "production"]
)
def test_every_object_is_valid_kubernetes(values_file: str) -> None:
    values = VALUES
    if values_file != "values.yaml":
        values = yaml.safe_load((CHART / values_file).read_text())
    rendered = render(values)
    kinds = {manifest["kind"] for manifest in rendered}
    assert {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "Job"} <= kinds
    for manifest in rendered:
        # strict: unknown fields are errors too, as the API server would reject them
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_each_service_has_its_own_deployment_service_and_account(
    manifests: list[Manifest],
) -> None:
    for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"):
        assert set(of_kind(manifests, kind)) == set(SERVICES), kind
    for name, deployment in of_kind(manifests, "Deployment").items():
        assert container(deployment)["args"] == ["serve", name]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["app.kubernetes.io/component"] == name
        service = of_kind(manifests, "Service")[name]
        assert service["spec"]["selector"] == selector


def test_replicas_are_set_per_service() -> None:
    rendered = render(with_values(services={"triage": {"replicas": 5}, "intake": {"replicas": 0}}))
    replicas = {
        name: deployment["spec"]["replicas"]
        for name, deployment in of_kind(rendered, "Deployment").items()
    }
    assert replicas == {name: 1 for name in SERVICES} | {"triage": 5, "intake": 0}


def test_autoscaling_replaces_the_fixed_replica_count() -> None:
    autoscaling = {"enabled": True, "minReplicas": 2, "maxReplicas": 9}
    rendered = render(with_values(services={"notify": {"autoscaling": autoscaling}}))
    [autoscaler] = of_kind(rendered, "HorizontalPodAutoscaler").values()
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-firebreak-notify"
    assert (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"]) == (2, 9)
    deployments = of_kind(rendered, "Deployment")
    assert "replicas" not in deployments["notify"]["spec"]
    assert deployments["review"]["spec"]["replicas"] == 1


def test_probes_speak_grpc_health_or_http(manifests: list[Manifest]) -> None:
    for name, deployment in of_kind(manifests, "Deployment").items():
        spec = container(deployment)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if name == "gateway":
                assert spec[probe]["httpGet"]["port"] == "http"
            elif probe == "livenessProbe":
                # Alive even while its database is away (firebreak.grpc_server.LIVENESS_SERVICE).
                assert spec[probe]["grpc"] == {"port": 50051, "service": "liveness"}
            else:
                assert spec[probe]["grpc"] == {"port": 50051}
        if name == "gateway":
            assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
        else:
            assert env_of(deployment)["FIREBREAK_GRPC_LISTEN_ADDR"]["value"] == "[::]:50051"


def test_pods_are_locked_down(manifests: list[Manifest]) -> None:
    workloads = [*of_kind(manifests, "Deployment").values(), *of_kind(manifests, "Job").values()]
    assert len(workloads) == len(SERVICES) + 1
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        security = container(workload)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        # the only writable place is a size-limited emptyDir (and evidence's blob store)
        volume, *evidence_store = pod["volumes"]
        assert volume["emptyDir"]["sizeLimit"]
        mounts = [mount["name"] for mount in container(workload)["volumeMounts"]]
        assert mounts == [volume["name"], *(store["name"] for store in evidence_store)]
        is_evidence = workload["metadata"]["labels"]["app.kubernetes.io/component"] == "evidence"
        assert len(evidence_store) == (1 if is_evidence and workload["kind"] == "Deployment" else 0)
        resources = container(workload)["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"]
        assert resources["limits"]["memory"]
    for account in of_kind(manifests, "ServiceAccount").values():
        assert account["automountServiceAccountToken"] is False


def test_network_policies_admit_only_the_callers_that_need_it(
    manifests: list[Manifest],
) -> None:
    policies = of_kind(manifests, "NetworkPolicy")
    assert set(policies) == {*SERVICES, "migrate"}
    scrape = {"ports": [{"port": "metrics", "protocol": "TCP"}]}
    # the gateway takes traffic from anywhere, on its HTTP port; every pod is scraped
    assert policies["gateway"]["spec"]["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}]},
        scrape,
    ]
    for name in GRPC_SERVICES:
        *rules, metrics_rule = policies[name]["spec"]["ingress"]
        assert metrics_rule == scrape
        assert {port["port"] for rule in rules for port in rule["ports"]} == {"grpc"}
        callers = [
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            for rule in rules
            for peer in rule["from"]
        ]
        # the gateway calls intake, triage (commands), notify (schedules, policies), evidence
        # (items streamed in and out) and review
        assert callers == ["gateway"]
    restricted = render(with_values(networkPolicy={"gatewayFrom": [{"podSelector": {}}]}))
    assert of_kind(restricted, "NetworkPolicy")["gateway"]["spec"]["ingress"][0]["from"] == [
        {"podSelector": {}}
    ]
    assert of_kind(render(with_values(networkPolicy={"enabled": False})), "NetworkPolicy") == {}


def test_network_policies_let_pods_out_only_where_they_need_to(
    manifests: list[Manifest],
) -> None:
    dns = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    database = {"ports": [{"port": 5432, "protocol": "TCP"}]}
    nats = {"ports": [{"port": 4222, "protocol": "TCP"}]}
    deliveries = {"ports": [{"port": port, "protocol": "TCP"} for port in (25, 465, 587, 443)]}
    gateway_to_services = [
        {
            "ports": [{"port": "grpc", "protocol": "TCP"}],
            "to": [{"podSelector": {"matchLabels": selector_labels(callee)}}],
        }
        for callee in sorted(GRPC_SERVICES)
    ]
    policies = of_kind(manifests, "NetworkPolicy")
    for name, policy in policies.items():
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        # no collector rule without a collector
        expected: list[Manifest] = [dns, database] if name == "migrate" else [dns, database, nats]
        if name == "gateway":
            expected.extend(gateway_to_services)  # only the gateway calls the services
        if name == "notify":
            expected.append(deliveries)  # only notify mails and posts to the outside
        assert policy["spec"]["egress"] == expected, name

    collector = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "otel"}}}
    traced = with_values(
        telemetry={"otlpEndpoint": "http://collector.otel:4317"},
        networkPolicy={
            "egress": {
                "collector": {"ports": [{"port": 4317, "protocol": "TCP"}], "to": [collector]}
            }
        },
    )
    for policy in of_kind(render(traced), "NetworkPolicy").values():
        assert {"ports": [{"port": 4317, "protocol": "TCP"}], "to": [collector]} in policy["spec"][
            "egress"
        ]


def test_the_migration_job_reaches_only_dns_and_the_databases(manifests: list[Manifest]) -> None:
    [job] = of_kind(manifests, "Job").values()
    policy = of_kind(manifests, "NetworkPolicy")["migrate"]
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == []  # it serves nothing
    assert policy["spec"]["egress"] == [
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {"ports": [{"port": 5432, "protocol": "TCP"}]},
    ]
    # A hook before the Job (which runs before the release's other objects exist on install).
    hook, job_hook = policy["metadata"]["annotations"], job["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == job_hook["helm.sh/hook"]
    assert int(hook["helm.sh/hook-weight"]) < int(job_hook["helm.sh/hook-weight"])
    assert "hook-succeeded" in hook["helm.sh/hook-delete-policy"]
    # Its run is traced when there is a collector: it may reach that too, and nothing else.
    traced = render(with_values(telemetry={"otlpEndpoint": "http://collector.otel:4317"}))
    egress = of_kind(traced, "NetworkPolicy")["migrate"]["spec"]["egress"]
    assert [rule["ports"][0]["port"] for rule in egress] == [53, 5432, 4317]
    without_job = render(with_values(migrations={"enabled": False}))
    assert "migrate" not in of_kind(without_job, "NetworkPolicy")
    assert set(of_kind(without_job, "NetworkPolicy")) == set(SERVICES)


def test_production_example_narrows_every_destination_but_deliveries() -> None:
    rendered = render(yaml.safe_load((CHART / "values-production.yaml").read_text()))
    for name, policy in of_kind(rendered, "NetworkPolicy").items():
        rules = policy["spec"]["egress"]
        open_rules = [rule for rule in rules if not rule.get("to")]
        assert open_rules == ([rules[-1]] if name == "notify" else []), name
        assert all(rule["ports"] for rule in rules)  # never every port


def selector_labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "firebreak",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": component,
    }


def test_the_api_description_can_be_turned_off(manifests: list[Manifest]) -> None:
    def docs_setting(rendered: list[Manifest]) -> dict[str, str | None]:
        return {
            name: env_of(deployment).get("FIREBREAK_API_DOCS", {}).get("value")
            for name, deployment in of_kind(rendered, "Deployment").items()
        }

    only_gateway: dict[str, str | None] = dict.fromkeys(GRPC_SERVICES)
    assert docs_setting(manifests) == {**only_gateway, "gateway": "true"}
    assert docs_setting(render(with_values(apiDocs=False))) == {**only_gateway, "gateway": "false"}


def test_the_gateway_is_told_where_every_service_it_calls_is(manifests: list[Manifest]) -> None:
    gateway = of_kind(manifests, "Deployment")["gateway"]
    env = {
        item["name"]: item.get("value")
        for item in gateway["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for callee in ("intake", "triage", "notify", "evidence", "review"):
        assert env[f"FIREBREAK_{callee.upper()}_ADDR"].endswith(f"-{callee}-headless:50051")


def test_the_gateway_reaches_every_replica_through_a_headless_service(
    manifests: list[Manifest],
) -> None:
    headless = headless_services(manifests)
    assert set(headless) == set(SERVICES)
    deployments = of_kind(manifests, "Deployment")
    gateway_env = env_of(deployments["gateway"])
    for name, service in headless.items():
        assert service["spec"]["clusterIP"] == "None"  # DNS answers with every ready pod
        selector = deployments[name]["spec"]["selector"]["matchLabels"]
        assert service["spec"]["selector"] == selector
        ports = {port["name"]: port for port in service["spec"]["ports"]}
        assert ports["metrics"]["targetPort"] == "metrics"
        if name != "gateway":
            assert ports["grpc"]["port"] == 50051 and ports["grpc"]["appProtocol"] == "grpc"
            address = gateway_env[f"FIREBREAK_{name.upper()}_ADDR"]["value"]
            assert address == f"{service['metadata']['name']}:50051"


def test_every_pod_serves_metrics_for_prometheus(manifests: list[Manifest]) -> None:
    for name, deployment in of_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true", name
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9464"
        assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
        ports = {port["name"]: port["containerPort"] for port in container(deployment)["ports"]}
        assert ports["metrics"] == 9464
        env = env_of(deployment)
        assert env["FIREBREAK_METRICS_PORT"]["value"] == "9464"
        assert env["FIREBREAK_METRICS_HOST"]["value"] == "0.0.0.0"  # reachable from outside
    assert [manifest for manifest in manifests if manifest["kind"] == "ServiceMonitor"] == []
    quiet = render(with_values(metrics={"podAnnotations": False, "port": 9100}))
    for deployment in of_kind(quiet, "Deployment").values():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert not any(key.startswith("prometheus.io/") for key in annotations)
        assert env_of(deployment)["FIREBREAK_METRICS_PORT"]["value"] == "9100"


def test_a_service_monitor_is_made_only_when_asked_for() -> None:
    monitor_values = {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}
    rendered = render(with_values(metrics=monitor_values))
    [monitor] = [manifest for manifest in rendered if manifest["kind"] == "ServiceMonitor"]
    # A CRD, unknown to kubernetes-validate: checked here against what the operator reads.
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "30s"
    selected = [
        service
        for service in rendered
        if service["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items()
        <= service["metadata"]["labels"].items()
    ]
    # every pod once: through its headless Service only
    assert sorted(service["metadata"]["name"] for service in selected) == sorted(
        f"{RELEASE}-firebreak-{name}-headless" for name in SERVICES
    )
    assert all(
        any(port["name"] == endpoint["port"] for port in service["spec"]["ports"])
        for service in selected
    )


def test_alerts_are_made_only_when_asked_for_and_watch_metrics_that_exist(
    manifests: list[Manifest],
) -> None:
    assert [manifest for manifest in manifests if manifest["kind"] == "PrometheusRule"] == []
    rendered = render(with_values(metrics={"alerts": {"enabled": True}}))
    [rule] = [manifest for manifest in rendered if manifest["kind"] == "PrometheusRule"]
    # A CRD, unknown to kubernetes-validate: checked here against what the operator reads.
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = {alert["alert"]: alert for group in rule["spec"]["groups"] for alert in group["rules"]}
    forged = alerts["FirebreakEventForAnotherClient"]
    assert 'reason="client_mismatch"' in forged["expr"]
    assert forged["labels"]["severity"] == "critical"
    assert "{{ $labels.service }}" in forged["annotations"]["summary"]
    # Every metric an alert watches is one the code exports (a counter's name without _total).
    exported = {metric.name for metric in REGISTRY.collect()}
    watched = {
        name.removesuffix("_total")
        for alert in alerts.values()
        for name in re.findall(r"firebreak_[a-z_]+", alert["expr"])
    }
    assert watched and watched <= exported, watched - exported


def test_each_release_has_its_own_stream_and_subjects(manifests: list[Manifest]) -> None:
    def bus_env(rendered: list[Manifest]) -> set[tuple[str, str]]:
        envs = [env_of(deployment) for deployment in of_kind(rendered, "Deployment").values()]
        return {
            (env["FIREBREAK_STREAM_NAME"]["value"], env["FIREBREAK_SUBJECT_PREFIX"]["value"])
            for env in envs
        }

    assert bus_env(manifests) == {(f"{RELEASE}-firebreak", f"{RELEASE}-firebreak.events.v1.")}
    other = render(release="other")
    assert bus_env(other) == {("other-firebreak", "other-firebreak.events.v1.")}
    kept = {"streamName": "FIREBREAK", "subjectPrefix": "firebreak.events.v1."}
    assert bus_env(render(with_values(jetstream=kept))) == {("FIREBREAK", "firebreak.events.v1.")}
    for deployment in of_kind(manifests, "Deployment").values():
        env = env_of(deployment)
        assert env["FIREBREAK_STREAM_MAX_BYTES"]["value"] == "1073741824"
        assert env["FIREBREAK_MAX_DELIVERIES"]["value"] == "5"
        assert "FIREBREAK_DURABLE_PREFIX" not in env  # durables belong to their stream
    prefixed = render(with_values(jetstream={"durablePrefix": "blue-"}))
    for deployment in of_kind(prefixed, "Deployment").values():
        assert env_of(deployment)["FIREBREAK_DURABLE_PREFIX"]["value"] == "blue-"


def test_configuration_comes_from_the_secret(manifests: list[Manifest]) -> None:
    [secret] = [manifest for manifest in manifests if manifest["kind"] == "Secret"]
    secret_name = secret["metadata"]["name"]
    assert secret["stringData"]["admin-key"] == VALUES["secret"]["adminKey"]
    assert secret["stringData"]["link-secret"] == VALUES["secret"]["linkSecret"]
    for name, deployment in of_kind(manifests, "Deployment").items():
        env = env_of(deployment)
        own_database = f"FIREBREAK_{name.upper()}_DATABASE_URL"
        from_secret = {
            variable: item["valueFrom"]["secretKeyRef"]
            for variable, item in env.items()
            if "secretKeyRef" in item.get("valueFrom", {})
        }
        expected = {"FIREBREAK_NATS_PASSWORD", own_database}
        # only the gateway signs scope tokens; the services verify them
        expected.add(
            "FIREBREAK_SCOPE_TOKEN_KEY" if name == "gateway" else "FIREBREAK_SCOPE_TOKEN_PUBLIC_KEY"
        )
        if name == "gateway":
            expected.add("FIREBREAK_ADMIN_KEY")
        if name in ("gateway", "notify"):
            expected.add("FIREBREAK_LINK_SECRET")
        if name == "evidence":
            expected |= {"FIREBREAK_EVIDENCE_MASTER_KEY", "FIREBREAK_EVIDENCE_SIGNING_KEY"}
        # each service sees its own database only, only the gateway the admin key, and only
        # notify (signs acknowledge links) and the gateway (checks them) the link secret
        assert set(from_secret) == expected
        assert {reference["name"] for reference in from_secret.values()} == {secret_name}
        assert {reference["key"] for reference in from_secret.values()} <= set(secret["stringData"])
        assert env["OTEL_SERVICE_NAME"]["value"] == f"firebreak-{name}"
    gateway_env = env_of(of_kind(manifests, "Deployment")["gateway"])
    intake, review = (f"{RELEASE}-firebreak-{name}-headless:50051" for name in ("intake", "review"))
    assert gateway_env["FIREBREAK_INTAKE_ADDR"]["value"] == intake
    assert gateway_env["FIREBREAK_REVIEW_ADDR"]["value"] == review


def test_evidence_keeps_its_blobs_on_a_persistent_volume(manifests: list[Manifest]) -> None:
    [claim] = [manifest for manifest in manifests if manifest["kind"] == "PersistentVolumeClaim"]
    assert claim["metadata"]["name"] == f"{RELEASE}-firebreak-evidence"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    deployments = of_kind(manifests, "Deployment")
    evidence = deployments["evidence"]
    pod = evidence["spec"]["template"]["spec"]
    [store] = [volume for volume in pod["volumes"] if "persistentVolumeClaim" in volume]
    assert store["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    [mount] = [m for m in container(evidence)["volumeMounts"] if m["name"] == store["name"]]
    env = env_of(evidence)
    assert env["FIREBREAK_EVIDENCE_DIR"]["value"] == mount["mountPath"]
    # A ReadWriteOnce volume cannot follow a rolling update onto another node.
    assert evidence["spec"]["strategy"] == {"type": "Recreate"}
    # Both ends enforce the same limit, printed as an integer (not 2.147483648e+09).
    for name in ("gateway", "evidence"):
        assert env_of(deployments[name])["FIREBREAK_EVIDENCE_MAX_BYTES"]["value"] == "2147483648"
    [secret] = [manifest for manifest in manifests if manifest["kind"] == "Secret"]
    assert secret["stringData"]["evidence-master-key"] == VALUES["secret"]["evidenceMasterKey"]

    shared = render(
        with_values(
            evidence={
                "persistence": {"existingClaim": "evidence-nfs", "accessModes": ["ReadWriteMany"]}
            }
        )
    )
    assert [m for m in shared if m["kind"] == "PersistentVolumeClaim"] == []
    evidence = of_kind(shared, "Deployment")["evidence"]
    claims = [
        volume["persistentVolumeClaim"]["claimName"]
        for volume in evidence["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in volume
    ]
    assert claims == ["evidence-nfs"] and "strategy" not in evidence["spec"]


def test_acknowledge_links_point_at_the_public_url() -> None:
    def public_urls(values: dict[str, Any]) -> dict[str, str | None]:
        return {
            name: env_of(deployment).get("FIREBREAK_PUBLIC_URL", {}).get("value")
            for name, deployment in of_kind(render(values), "Deployment").items()
        }

    # Unset, with no ingress: nothing to say (the setting's own default applies).
    assert set(public_urls(VALUES).values()) == {None}
    explicit = public_urls(with_values(publicUrl="https://ir.example.com"))
    assert explicit == {name: None for name in SERVICES} | {
        "gateway": "https://ir.example.com",
        "notify": "https://ir.example.com",
    }
    ingress = {"enabled": True, "host": "ir.example.com", "tls": [{"secretName": "tls"}]}
    assert public_urls(with_values(ingress=ingress))["notify"] == "https://ir.example.com"


def test_an_existing_secret_replaces_the_chart_made_one() -> None:
    rendered = render({"secret": {"existingSecret": "firebreak-connections"}})
    assert [manifest for manifest in rendered if manifest["kind"] == "Secret"] == []
    for deployment in [
        *of_kind(rendered, "Deployment").values(),
        *of_kind(rendered, "Job").values(),
    ]:
        names = {
            item["valueFrom"]["secretKeyRef"]["name"]
            for item in container(deployment)["env"]
            if "secretKeyRef" in item.get("valueFrom", {})
        }
        assert names == {"firebreak-connections"}


def test_a_missing_secret_value_stops_the_install_with_its_name() -> None:
    values = with_values()
    del values["secret"]["databaseUrls"]["review"]
    with pytest.raises(helm.HelmError, match=r"secret\.databaseUrls\.review is required"):
        render(values)


def test_telemetry_endpoint_is_configurable(manifests: list[Manifest]) -> None:
    for deployment in of_kind(manifests, "Deployment").values():
        env = env_of(deployment)
        assert env["OTEL_TRACES_EXPORTER"]["value"] == "none"
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
    endpoint = "http://otel-collector.observability:4317"
    rendered = render(
        with_values(
            telemetry={"otlpEndpoint": endpoint, "env": {"OTEL_TRACES_SAMPLER": "always_on"}}
        )
    )
    for deployment in of_kind(rendered, "Deployment").values():
        env = env_of(deployment)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == endpoint
        assert env["OTEL_TRACES_SAMPLER"]["value"] == "always_on"
        assert "OTEL_TRACES_EXPORTER" not in env


def test_migrations_run_as_a_hook_before_new_pods_and_after_the_secret(
    manifests: list[Manifest],
) -> None:
    [job] = of_kind(manifests, "Job").values()
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container(job)["args"] == ["migrate"]
    database_variables = {name for name in env_of(job) if name.endswith("_DATABASE_URL")}
    assert database_variables == {f"FIREBREAK_{name.upper()}_DATABASE_URL" for name in SERVICES}
    [secret] = [manifest for manifest in manifests if manifest["kind"] == "Secret"]
    secret_hook = secret["metadata"]["annotations"]
    assert "pre-install" in secret_hook["helm.sh/hook"]
    assert int(secret_hook["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])


def test_ingress_is_optional_and_points_at_the_gateway(manifests: list[Manifest]) -> None:
    assert of_kind(manifests, "Ingress") == {}
    rendered = render(with_values(ingress={"enabled": True, "host": "ir.example.com"}))
    [ingress] = of_kind(rendered, "Ingress").values()
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "ir.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == f"{RELEASE}-firebreak-gateway"


def test_production_example_scales_and_uses_replicated_jetstream() -> None:
    rendered = render(yaml.safe_load((CHART / "values-production.yaml").read_text()))
    autoscaled = set(of_kind(rendered, "HorizontalPodAutoscaler"))
    assert autoscaled == {"gateway", "intake", "triage", "notify"}
    deployments = of_kind(rendered, "Deployment")
    assert deployments["evidence"]["spec"]["replicas"] == 3
    for deployment in deployments.values():
        assert env_of(deployment)["FIREBREAK_STREAM_REPLICAS"]["value"] == "3"
        assert deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    budgets = of_kind(rendered, "PodDisruptionBudget")
    assert budgets["gateway"]["spec"]["minAvailable"] == 2
    assert "maxUnavailable" not in budgets["gateway"]["spec"]


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"services": {"triage": {"replicas": -1}}}, "/services/triage/replicas"),
        ({"services": {"billing": {"replicas": 1}}}, "billing"),
        ({"secret": {"adminKey": "too-short"}}, "/secret/adminKey"),
        ({"secret": {"linkSecret": "too-short"}}, "/secret/linkSecret"),
        ({"secret": {"evidenceMasterKey": "c2hvcnQ="}}, "/secret/evidenceMasterKey"),
        ({"evidence": {"persistence": {"accessModes": ["Sometimes"]}}}, "accessModes"),
        ({"publicUrl": "ir.example.com"}, "/publicUrl"),
        ({"streamReplicas": 0}, "/streamReplicas"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
        ({"telemetry": {"env": {"PATH": "/tmp"}}}, "PATH"),
        ({"metrics": {"port": 8080}}, "/metrics/port"),
        ({"jetstream": {"streamName": "fire.break"}}, "/jetstream/streamName"),
        ({"jetstream": {"subjectPrefix": "events.>"}}, "/jetstream/subjectPrefix"),
        ({"apiDocs": "no"}, "/apiDocs"),
        (
            {"networkPolicy": {"egress": {"nats": {"ports": [{"port": 0}], "to": []}}}},
            "/networkPolicy/egress/nats/ports/0/port",
        ),
    ],
    ids=[
        "negative-replicas",
        "unknown-service",
        "weak-admin-key",
        "weak-link-secret",
        "short-evidence-key",
        "unknown-access-mode",
        "public-url-without-scheme",
        "no-stream-replicas",
        "pull-policy",
        "root-user",
        "non-otel-telemetry-env",
        "metrics-on-the-http-port",
        "stream-name-with-a-dot",
        "subject-prefix-with-a-wildcard",
        "api-docs-not-a-boolean",
        "egress-port-zero",
    ],
)
def test_schema_rejects_bad_values(overrides: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=complaint):
        render(with_values(**overrides))
    report = helm.lint(CHART, with_values(**overrides))
    assert any(complaint in error for error in report["errors"])


def test_notes_tell_how_to_reach_the_api_and_find_the_admin_key() -> None:
    text = notes(VALUES)
    assert f"port-forward svc/{RELEASE}-firebreak-gateway 8080:8080" in text
    assert f"get secret {RELEASE}-firebreak-connections" in text
    assert "triage: 1 replica(s)" in text


def test_every_command_the_chart_runs_is_an_entry_point_of_the_package(
    manifests: list[Manifest],
) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    workloads = [*of_kind(manifests, "Deployment").values(), *of_kind(manifests, "Job").values()]
    for workload in workloads:
        spec = container(workload)
        [command] = spec["command"]
        assert command in scripts
        parse_args(spec["args"])  # exits (fails the test) on a command the CLI does not know
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["firebreak"]' in dockerfile


GRPC_TLS = {"grpc": {"tls": {"enabled": True, "existingSecret": "fb-grpc-tls"}}}


def test_grpc_mtls_mounts_the_secret_everywhere_and_probes_a_health_only_port() -> None:
    rendered = render(with_values(**GRPC_TLS))
    for manifest in rendered:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    for name, deployment in of_kind(rendered, "Deployment").items():
        pod, spec, env = (
            deployment["spec"]["template"]["spec"],
            container(deployment),
            env_of(deployment),
        )
        [volume] = [volume for volume in pod["volumes"] if volume["name"] == "grpc-tls"]
        assert volume["secret"]["secretName"] == "fb-grpc-tls"
        [mount] = [mount for mount in spec["volumeMounts"] if mount["name"] == "grpc-tls"]
        assert mount["readOnly"] is True
        files = {
            variable: env[variable]["value"]
            for variable in (
                "FIREBREAK_GRPC_TLS_CA",
                "FIREBREAK_GRPC_TLS_CERT",
                "FIREBREAK_GRPC_TLS_KEY",
            )
        }
        # cert-manager's key names, in the mounted Secret
        assert files == {
            "FIREBREAK_GRPC_TLS_CA": f"{mount['mountPath']}/ca.crt",
            "FIREBREAK_GRPC_TLS_CERT": f"{mount['mountPath']}/tls.crt",
            "FIREBREAK_GRPC_TLS_KEY": f"{mount['mountPath']}/tls.key",
        }
        plain = {variable: item["value"] for variable, item in env.items() if "value" in item}
        settings = Settings.from_environment({k: v for k, v in plain.items() if "GRPC" in k})
        assert settings.grpc_tls_key == Path(files["FIREBREAK_GRPC_TLS_KEY"])
        if name == "gateway":  # a client only: its probes are HTTP, as without TLS
            assert settings.grpc_health_port is None
            assert spec["readinessProbe"]["httpGet"]["port"] == "http"
            continue
        ports = {port["name"]: port["containerPort"] for port in spec["ports"]}
        assert ports["grpc-health"] == settings.grpc_health_port == 50052
        assert env["FIREBREAK_GRPC_LISTEN_ADDR"]["value"] == "[::]:50051"  # mTLS only there
        assert spec["startupProbe"]["grpc"] == {"port": 50052}
        assert spec["readinessProbe"]["grpc"] == {"port": 50052}
        assert spec["livenessProbe"]["grpc"] == {"port": 50052, "service": "liveness"}
    # No pod may reach the health port: the probes come from the node (networkpolicy.yaml).
    for policy in of_kind(rendered, "NetworkPolicy").values():
        opened = {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}
        assert opened <= {"http", "grpc", "metrics"}
    for service in [*of_kind(rendered, "Service").values(), *headless_services(rendered).values()]:
        assert 50052 not in {port["port"] for port in service["spec"]["ports"]}
    # Off (the default), nothing of it.
    for deployment in of_kind(render(), "Deployment").values():
        assert not {"FIREBREAK_GRPC_TLS_CA", "FIREBREAK_GRPC_HEALTH_PORT"} & set(env_of(deployment))


def test_grpc_mtls_without_its_secret_refuses_to_render() -> None:
    with pytest.raises(helm.HelmError, match=r"grpc\.tls\.enabled needs grpc\.tls\.existingSecret"):
        render(with_values(grpc={"tls": {"enabled": True}}))


INBOUND_MAIL = {"inboundMail": {"enabled": True, "domain": "incidents.firm.example"}}


def test_inbound_mail_gives_intake_an_smtp_port_and_a_service_of_its_own() -> None:
    rendered = render(with_values(**INBOUND_MAIL))
    for manifest in rendered:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    intake = of_kind(rendered, "Deployment")["intake"]
    ports = {port["name"]: port["containerPort"] for port in container(intake)["ports"]}
    plain = {name: item["value"] for name, item in env_of(intake).items() if "value" in item}
    settings = Settings.from_environment({k: v for k, v in plain.items() if "INBOUND" in k})
    assert ports["smtp"] == settings.inbound_smtp_port == 2525  # the pods may not bind 25
    assert settings.inbound_smtp_host == "0.0.0.0"
    assert settings.inbound_mail_domain == "incidents.firm.example"
    assert settings.inbound_mail_max_bytes == 10 * 1024 * 1024
    smtp = of_kind(rendered, "Service")["intake-smtp"]
    assert smtp["spec"]["type"] == "LoadBalancer"
    assert smtp["spec"]["selector"] == selector_labels("intake")
    assert smtp["spec"]["ports"] == [
        {"name": "smtp", "port": 25, "targetPort": "smtp", "protocol": "TCP"}
    ]
    (rule,) = [
        rule
        for rule in of_kind(rendered, "NetworkPolicy")["intake"]["spec"]["ingress"]
        if rule["ports"] == [{"port": "smtp", "protocol": "TCP"}]
    ]
    assert "from" not in rule  # mail comes from anywhere unless inboundMail.from narrows it
    # No other service takes mail.
    for name, deployment in of_kind(rendered, "Deployment").items():
        if name != "intake":
            assert "FIREBREAK_INBOUND_SMTP_PORT" not in env_of(deployment)
    # Off (the default), nothing of it.
    default = render()
    assert "FIREBREAK_INBOUND_SMTP_PORT" not in env_of(of_kind(default, "Deployment")["intake"])
    assert "intake-smtp" not in of_kind(default, "Service")
    with pytest.raises(helm.HelmError, match=r"inboundMail\.enabled needs inboundMail\.domain"):
        render(with_values(inboundMail={"enabled": True}))
