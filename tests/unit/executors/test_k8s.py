"""The ``k8s`` executor: contract tests against recorded Kubernetes API responses, and real-cluster
tests that run when ``KUBECONFIG`` is set.

Contract tests: no API server can be had offline, so ``RecordedKubernetesAPI`` serves recorded
API objects (``k8s_recordings/``) over HTTP and the unmodified official client talks to it. They
check that we send the requests a real API server expects (paths, selectors, limits, patch bodies
and content types) and that we turn real API shapes into kubectl's tables and our data.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client as k8s

from contract import Approval
from executors import CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from executors.k8s import human_duration
from tests.environments import LOCAL_CONNECTIONS, write_environment
from tests.executor_servers import K8S_RECORDINGS, K8S_URL_VARIABLE, RecordedKubernetesAPI, published
from tests.spec_data import TASK_EXAMPLES

SPEC_EXAMPLES_FILE = TASK_EXAMPLES
APPROVAL = {"approved_by": "oncall", "reason": "contract test"}


@pytest.fixture(scope="session")
def recorded_api() -> Iterator[RecordedKubernetesAPI]:
    server = RecordedKubernetesAPI()
    with published(K8S_URL_VARIABLE, server.url):
        yield server
    server.close()


@pytest.fixture
def api(recorded_api: RecordedKubernetesAPI) -> RecordedKubernetesAPI:
    recorded_api.requests.clear()
    return recorded_api


def run(agent: CloudAgent, command: str, approval: dict | None = None, **task: object):
    given = Approval.model_validate(approval) if approval is not None else None
    return agent.run({"type": "k8s", "command": command, **task}, actor="test", approval=given)


# -- the recordings are real API shapes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("recording", "model"),
    [
        ("pods-production.json", "V1PodList"),
        ("pod-dependency-service-xxx.json", "V1Pod"),
        ("events-production.json", "CoreV1EventList"),
        ("services-production.json", "V1ServiceList"),
        ("endpoints-production.json", "V1EndpointsList"),
        ("deployments-production.json", "V1DeploymentList"),
        ("deployment-my-app.json", "V1Deployment"),
        ("replicasets-my-app.json", "V1ReplicaSetList"),
        ("scale-my-app.json", "V1Scale"),
        ("nodes.json", "V1NodeList"),
        ("status-404-pod.json", "V1Status"),
        ("status-403-kube-system.json", "V1Status"),
    ],
)
def test_every_recording_deserialises_into_the_clients_model(recording: str, model: str) -> None:
    data = json.loads((K8S_RECORDINGS / recording).read_text())
    obj = k8s.ApiClient().deserialize(json.dumps(data), model, content_type="application/json")
    assert type(obj).__name__ == model
    assert k8s.ApiClient().sanitize_for_serialization(obj)  # round-trips without loss of shape


def test_human_duration_matches_kubectl() -> None:
    cases = {
        0: "0s",
        45: "45s",
        119: "119s",
        120: "2m",
        310: "5m10s",
        600: "10m",
        10799: "179m",
        10800: "3h",
        11700: "3h15m",
        28800: "8h",
        47 * 3600: "47h",
        48 * 3600: "2d",
        50 * 3600: "2d2h",
        30 * 86400: "30d",
        800 * 86400: "2y70d",
        9 * 365 * 86400: "9y",
    }
    for seconds, printed in cases.items():
        assert human_duration(timedelta(seconds=seconds)) == printed, seconds


# -- the spec's commands, against the recordings -------------------------------------------------


@pytest.mark.integration
def test_get_pods_wide_prints_kubectls_table_and_returns_rows(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl get pods -n production -o wide", params={"namespace": "production"})
    assert result.status is TaskStatus.SUCCEEDED, result.error
    lines = result.output.splitlines()
    assert re.split(r"\s{3,}", lines[0]) == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    by_name = {row["name"]: row for row in result.data["items"]}
    assert by_name["payment-service-6f9d8c7b5-abcde"]["status"] == "CrashLoopBackOff"
    assert by_name["payment-service-6f9d8c7b5-abcde"]["restarts"] == 7
    assert by_name["payment-service-6f9d8c7b5-abcde"]["ready"] == "0/1"
    assert by_name["dependency-service-xxx"]["status"] == "Running"
    assert by_name["dependency-service-xxx"]["ready"] == "0/1"
    assert by_name["order-service-7c6b5d4f3-qwert"]["status"] == "Pending"
    assert by_name["my-app-pod"]["ready"] == "1/1"
    payment_line = next(line for line in lines if line.startswith("payment-service"))
    assert re.search(
        r"0/1\s+CrashLoopBackOff\s+7 \(\S+ ago\)\s+\S+\s+10\.244\.1\.31\s+node-1\s+<none>\s+<none>$", payment_line
    )
    assert "<none>" in next(line for line in lines if line.startswith("order-service"))  # no IP, no node yet
    [request] = api.requests_to("/api/v1/namespaces/production/pods")
    assert request["query"]["limit"] == "10000"  # the environment's max_rows, asked of the server


@pytest.mark.integration
def test_top_pods_reads_metrics_k8s_io(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl top pods -n production")
    assert result.ok, result.error
    assert result.output.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    rows = {row["name"]: row for row in result.data["items"]}
    assert rows["payment-service-6f9d8c7b5-abcde"]["cpu_millicores"] == 913  # 912003411n, rounded up
    assert rows["payment-service-6f9d8c7b5-abcde"]["memory_bytes"] == 250012 * 1024
    assert re.search(r"^payment-service-6f9d8c7b5-abcde\s+913m\s+244Mi$", result.output, re.MULTILINE)
    assert api.requests_to("/apis/metrics.k8s.io/v1beta1/namespaces/production/pods")


@pytest.mark.integration
def test_top_pods_piped_into_grep_keeps_the_matching_rows(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl top pods -n production | grep payment-service")
    assert result.ok, result.error
    assert result.output.count("\n") == 1 and result.output.startswith("payment-service-6f9d8c7b5-abcde")
    assert [row["name"] for row in result.data["items"]] == ["payment-service-6f9d8c7b5-abcde"]


@pytest.mark.integration
def test_events_sorted_by_last_timestamp_and_tailed(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl get events -n production --sort-by='.lastTimestamp' | tail -50")
    assert result.ok, result.error
    lines = result.output.splitlines()
    assert re.split(r"\s{3,}", lines[0]) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    stamps = [row["last_timestamp"] for row in result.data["items"]]
    assert stamps == sorted(stamps) and len(stamps) == 6
    assert "(x42 over" in next(line for line in lines if "BackOff" in line)
    assert "pod/payment-service-6f9d8c7b5-abcde" in result.output

    last_two = run(agent, "kubectl get events -n production --sort-by=.lastTimestamp | tail -2")
    assert [row["reason"] for row in last_two.data["items"]] == ["Unhealthy", "BackOff"]
    assert len(last_two.output.splitlines()) == 2  # the header went the way `tail` sends it


@pytest.mark.integration
def test_svc_and_endpoints_print_two_tables_with_kind_prefixes(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl get svc,endpoints -n production")
    assert result.ok, result.error
    services, endpoints = result.output.split("\n\n")
    assert re.split(r"\s{3,}", services.splitlines()[0]) == [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
    ]
    assert re.search(
        r"^service/gateway\s+LoadBalancer\s+10\.96\.0\.200\s+203\.0\.113\.10\s+80:31080/TCP,443:31443/TCP",
        services,
        re.MULTILINE,
    )
    assert re.search(r"^endpoints/my-app\s+10\.244\.1\.17:8080,10\.244\.2\.23:8080\s", endpoints, re.MULTILINE)
    assert re.search(r"^endpoints/dependency-service\s+<none>\s", endpoints, re.MULTILINE)
    kinds = [row["kind"] for row in result.data["items"]]
    assert kinds == ["Service"] * 4 + ["Endpoints"] * 4
    dependency = next(r for r in result.data["items"] if r["kind"] == "Endpoints" and r["name"] == "dependency-service")
    assert dependency["ready"] == [] and dependency["not_ready"] == ["10.244.2.40:9090"]


@pytest.mark.integration
def test_the_connections_namespace_is_the_default(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    # the spec's `kubectl get svc,endpoints` and `kubectl top pods` name no namespace
    assert run(agent, "kubectl get svc,endpoints").ok
    assert run(agent, "kubectl top pods").ok
    assert {r["path"] for r in api.requests} == {
        "/api/v1/namespaces/production/services",
        "/api/v1/namespaces/production/endpoints",
        "/apis/metrics.k8s.io/v1beta1/namespaces/production/pods",
    }


@pytest.mark.integration
def test_describe_pod_prints_state_conditions_and_its_events(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl describe pod dependency-service-xxx")
    assert result.ok, result.error
    text = result.output
    assert re.search(r"^Name:\s+dependency-service-xxx$", text, re.MULTILINE)
    assert re.search(r"^Namespace:\s+production$", text, re.MULTILINE)
    assert re.search(r"^Node:\s+node-2/10\.0\.1\.2$", text, re.MULTILINE)
    assert re.search(r"^Controlled By:\s+ReplicaSet/dependency-service-59c7d8f6b4$", text, re.MULTILINE)
    assert re.search(r"^    Ready:\s+False$", text, re.MULTILINE)
    assert re.search(r"^    Readiness:\s+http-get http://:9090/health", text, re.MULTILINE)
    assert re.search(r"^  Ready\s+False$", text, re.MULTILINE)
    assert re.search(
        r"^  Warning\s+Unhealthy\s+\S+ \(x204 over \S+\)\s+kubelet\s+Readiness probe failed", text, re.MULTILINE
    )
    assert result.data["pod"]["metadata"]["name"] == "dependency-service-xxx"
    assert [e["reason"] for e in result.data["events"]] == ["Started", "Unhealthy"]
    [events_request] = api.requests_to("/api/v1/namespaces/production/events")
    assert events_request["query"]["fieldSelector"].startswith(
        "involvedObject.name=dependency-service-xxx,involvedObject.namespace=production,involvedObject.kind=Pod"
    )


@pytest.mark.integration
def test_logs_of_a_deployment_read_one_of_its_pods(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    # What the verification catalog asks for a service (kubectl picks a pod of the deployment).
    result = run(agent, "kubectl logs -n production deployment/my-app --tail=500")
    assert result.ok, result.error
    assert result.data["pod"] == "my-app-pod" and result.data["lines"] == 300
    assert "Found 2 pods, using pod/my-app-pod" in result.notes
    [pods] = api.requests_to("/api/v1/namespaces/production/pods")
    assert pods["query"]["labelSelector"] == "app=my-app"
    [log] = api.requests_to("/api/v1/namespaces/production/pods/my-app-pod/log")
    assert log["query"]["tailLines"] == "500"

    other = run(agent, "kubectl logs -n production service/my-app")
    assert other.error is not None and other.error.code == "invalid_task"
    assert "deployment/NAME" in other.error.message


@pytest.mark.integration
def test_logs_tail_is_asked_of_the_server(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl logs -n production my-app-pod --tail=1000")
    assert result.ok, result.error
    assert result.output.startswith("2026-11-25T09:40:00.000Z INFO")
    assert result.data == {"pod": "my-app-pod", "namespace": "production", "container": None, "lines": 300}
    [request] = api.requests_to("/api/v1/namespaces/production/pods/my-app-pod/log")
    assert request["query"]["tailLines"] == "1000"
    assert int(request["query"]["limitBytes"]) == 1024 * 1024 + 1

    errors = run(agent, "kubectl logs my-app-pod -n production --since=1h -c my-app --timestamps | grep -c ERROR")
    assert errors.error.code == "invalid_task"  # grep -c is not supported: said, not guessed
    errors = run(agent, "kubectl logs my-app-pod -n production --since=1h -c my-app | grep ERROR")
    assert errors.ok and errors.data["lines"] == 30
    assert all("ERROR" in line for line in errors.output.splitlines())
    query = api.requests_to("/api/v1/namespaces/production/pods/my-app-pod/log")[-1]["query"]
    assert (query["sinceSeconds"], query["container"]) == ("3600", "my-app")


@pytest.mark.integration
def test_get_deployments_and_rollout_history(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    deployments = run(agent, "kubectl get deployments -n production")
    assert deployments.ok, deployments.error
    assert re.search(r"^my-app\s+2/2\s+2\s+2\s+\S+$", deployments.output, re.MULTILINE)
    assert re.search(r"^payment-service\s+0/1\s+1\s+0\s+\S+$", deployments.output, re.MULTILINE)

    history = run(agent, "kubectl rollout history deployment/my-app -n production")
    assert history.ok, history.error
    assert history.output.splitlines()[:2] == ["deployment.apps/my-app ", "REVISION   CHANGE-CAUSE"]
    assert re.search(
        r"^3\s+kubectl set image deployment/my-app my-app=registry.example.com/my-app:2.4.1$",
        history.output,
        re.MULTILINE,
    )
    assert [row["revision"] for row in history.data["items"]] == [1, 2, 3]
    [rs_request] = api.requests_to("/apis/apps/v1/namespaces/production/replicasets")
    assert rs_request["query"]["labelSelector"] == "app=my-app"

    status = run(agent, "kubectl rollout status deployment/my-app -n production")
    assert status.output == 'deployment "my-app" successfully rolled out\n'
    assert status.data["done"] is True


@pytest.mark.integration
def test_rollout_restart_needs_an_approval_then_patches_the_template(
    agent: CloudAgent, api: RecordedKubernetesAPI
) -> None:
    command = "kubectl rollout restart deployment/my-app -n production"
    refused = run(agent, command)
    assert refused.status is TaskStatus.APPROVAL_REQUIRED
    assert not api.requests  # nothing reached the cluster

    result = run(agent, command, approval=APPROVAL)
    assert result.ok, result.error
    assert result.output == "deployment.apps/my-app restarted\n"
    assert result.risk == "write" and result.approved_by == "oncall"
    [patch] = api.requests_to("/apis/apps/v1/namespaces/production/deployments/my-app", "PATCH")
    assert patch["content_type"] == "application/strategic-merge-patch+json"
    restarted_at = patch["body"]["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert abs(datetime.fromisoformat(restarted_at.replace("Z", "+00:00")) - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.integration
def test_rollout_undo_patches_the_previous_revisions_template(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl rollout undo deployment/my-app -n production", approval=APPROVAL)
    assert result.ok, result.error
    assert result.output == "deployment.apps/my-app rolled back\n"
    assert (result.data["revision"], result.data["from_revision"]) == (2, 3)
    [patch] = api.requests_to("/apis/apps/v1/namespaces/production/deployments/my-app", "PATCH")
    assert patch["content_type"] == "application/json-patch+json"
    template, annotations = patch["body"][0], patch["body"][1]
    assert template["path"] == "/spec/template"
    assert template["value"]["spec"]["containers"][0]["image"] == "registry.example.com/my-app:2.4.0"
    assert "pod-template-hash" not in template["value"]["metadata"]["labels"]
    assert annotations["value"]["deployment.kubernetes.io/revision"] == "3"  # kept, as kubectl does
    assert annotations["value"]["kubernetes.io/change-cause"].endswith("my-app:2.4.0")

    to_one = run(agent, "kubectl rollout undo deployment/my-app --to-revision=1 -n production", approval=APPROVAL)
    assert to_one.ok and to_one.data["revision"] == 1
    missing = run(agent, "kubectl rollout undo deployment/my-app --to-revision=9 -n production", approval=APPROVAL)
    assert missing.error.code == "not_found" and "revision 9" in missing.error.message
    current = run(agent, "kubectl rollout undo deployment/my-app --to-revision=3 -n production", approval=APPROVAL)
    assert "skipped rollback" in current.output


@pytest.mark.integration
def test_scale_patches_the_scale_subresource(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl scale deployment/my-app --replicas=3 -n production", approval=APPROVAL)
    assert result.ok, result.error
    assert result.output == "deployment.apps/my-app scaled\n"
    [patch] = api.requests_to("/apis/apps/v1/namespaces/production/deployments/my-app/scale", "PATCH")
    assert patch["body"] == {"spec": {"replicas": 3}}


@pytest.mark.integration
def test_output_formats_json_yaml_and_name(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    as_json = run(agent, "kubectl get pods -n production -o json")
    assert as_json.ok, as_json.error
    document = json.loads(as_json.output)
    assert document["kind"] == "List" and document["items"][0]["kind"] == "Pod"
    assert as_json.data == document
    single = run(agent, "kubectl get deployment my-app -n production -o yaml")
    assert single.output.startswith("apiVersion: apps/v1\nkind: Deployment\n")
    names = run(agent, "kubectl get svc -n production -o name")
    assert names.output.splitlines() == [
        "service/my-app",
        "service/payment-service",
        "service/dependency-service",
        "service/gateway",
    ]


@pytest.mark.integration
def test_get_nodes_is_cluster_scoped(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl get nodes -o wide")
    assert result.ok, result.error
    node_1 = r"^node-1\s+Ready\s+control-plane\s+\S+\s+v1\.31\.4\s+10\.0\.1\.1\s+<none>\s+Debian"
    assert re.search(node_1, result.output, re.MULTILINE)
    assert api.requests_to("/api/v1/nodes")


@pytest.mark.integration
def test_every_spec_example_of_this_type_runs_unchanged(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    examples = json.loads(SPEC_EXAMPLES_FILE.read_text()) if SPEC_EXAMPLES_FILE.exists() else []
    examples = [task for task in examples if task.get("type") == "k8s"]
    if not examples:
        pytest.skip("the spec's task examples are not on this machine")
    for task in examples:
        approval = Approval.model_validate(APPROVAL) if "restart" in task["command"] else None
        result = agent.run(task, actor="test", approval=approval)
        assert result.ok, (task, result.error)
        assert result.output and result.data, task


# -- failure modes: each a specific error, never a traceback ------------------------------------


@pytest.mark.integration
def test_a_missing_pod_is_not_found(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl describe pod no-such-pod -n production")
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "not_found"
    assert result.error.message == 'pods "no-such-pod" not found'


@pytest.mark.integration
def test_forbidden_is_permission_denied_with_the_servers_words(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl get pods -n kube-system")
    assert result.error.code == "forbidden"
    assert 'cannot list resource "pods" in API group "" in the namespace "kube-system"' in result.error.message


@pytest.mark.integration
def test_an_unreachable_api_server_is_unreachable(agent: CloudAgent) -> None:
    result = run(agent, "kubectl get pods", params={"connection": "unreachable"}, timeout=5)
    assert result.error.code == "unreachable"
    assert "Connection refused" in result.error.message


@pytest.mark.integration
def test_a_missing_metrics_api_is_not_found(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl top pods -n staging")
    assert result.error.code == "not_found"
    assert "metrics-server" in result.error.message


@pytest.mark.integration
def test_a_slow_api_server_is_a_timeout(agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    result = run(agent, "kubectl get pods -n slow", timeout=1)
    assert result.status is TaskStatus.TIMED_OUT
    assert result.error.code == "timed_out"
    assert result.duration_ms < 2500


def test_no_kubernetes_configuration_at_all_is_a_configuration_error(
    config_dir: Path, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config, and this is not a pod
    connections = {key: value for key, value in LOCAL_CONNECTIONS.items() if key != "k8s"}
    write_environment(config_dir, "bare", agents=["agent-bare-001"], connections=connections)
    catalog = EnvironmentCatalog.load(config_dir, default_agent="agent-bare-001")
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'bare.sqlite3'}")) as bare:
        result = run(bare, "kubectl get pods")
    assert result.error.code == "configuration_error"
    assert "set KUBECONFIG, run inside a cluster, or configure a k8s connection" in result.error.message


def test_unsupported_verbs_list_the_supported_ones(agent: CloudAgent) -> None:
    result = run(agent, "kubectl delete pod my-app-pod -n production")
    assert result.error.code == "invalid_task"
    supported = "supported: get, describe, logs, top, rollout history, rollout status, rollout restart"
    assert supported in result.error.message


def test_conflicting_namespaces_are_refused(agent: CloudAgent) -> None:
    result = run(agent, "kubectl get pods -n production", params={"namespace": "kube-system"})
    assert result.error.code == "invalid_task"
    assert "make them agree" in result.error.message


# -- environments ------------------------------------------------------------------------------


@pytest.fixture
def small_agent(config_dir: Path, state_dir: Path, recorded_api: RecordedKubernetesAPI) -> Iterator[CloudAgent]:
    write_environment(
        config_dir, "small", agents=["agent-small-001"], limits={"max_rows": 2}, policy={"max_risk": "read"}
    )
    catalog = EnvironmentCatalog.load(config_dir, default_agent="agent-small-001")
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'small.sqlite3'}")) as running:
        yield running


@pytest.mark.integration
def test_writes_are_refused_where_the_environment_allows_reads_only(
    small_agent: CloudAgent, api: RecordedKubernetesAPI
) -> None:
    result = run(small_agent, "kubectl scale deployment/my-app --replicas=0 -n production", approval=APPROVAL)
    assert result.status is TaskStatus.DENIED
    assert not api.requests


@pytest.mark.integration
def test_max_rows_is_the_list_limit(small_agent: CloudAgent, api: RecordedKubernetesAPI) -> None:
    run(small_agent, "kubectl get pods -n production")
    [request] = api.requests_to("/api/v1/namespaces/production/pods")
    assert request["query"]["limit"] == "2"


# -- a real cluster, when there is one -----------------------------------------------------------

real_cluster = pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG is not set: no real cluster")


@pytest.fixture
def cluster_agent(config_dir: Path, state_dir: Path) -> Iterator[CloudAgent]:
    """An environment with no k8s connection configured: the executor falls back to KUBECONFIG."""
    connections = {key: value for key, value in LOCAL_CONNECTIONS.items() if key != "k8s"}
    write_environment(config_dir, "cluster", agents=["agent-cluster-001"], connections=connections)
    catalog = EnvironmentCatalog.load(config_dir, default_agent="agent-cluster-001")
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'cluster.sqlite3'}")) as running:
        yield running


@real_cluster
@pytest.mark.integration
def test_real_cluster_reads(cluster_agent: CloudAgent) -> None:
    pods = run(cluster_agent, "kubectl get pods -A -o wide")
    assert pods.ok, pods.error
    for command in (
        "kubectl get nodes",
        "kubectl get svc,endpoints -n default",
        "kubectl get deployments -A",
        "kubectl get events -A --sort-by=.lastTimestamp | tail -5",
        "kubectl get namespaces",
    ):
        result = run(cluster_agent, command)
        assert result.ok, (command, result.error)
    if pods.data["items"]:
        first = pods.data["items"][0]
        described = run(cluster_agent, f"kubectl describe pod {first['name']} -n {first['namespace']}")
        assert described.ok, described.error
        logs = run(cluster_agent, f"kubectl logs {first['name']} -n {first['namespace']} --tail=5")
        assert logs.ok or logs.error.code in ("bad_query", "not_found"), logs.error
    missing = run(cluster_agent, "kubectl describe pod cloud-agent-no-such-pod-0 -n default")
    assert missing.error.code == "not_found"


@real_cluster
@pytest.mark.integration
def test_real_cluster_top_pods_or_a_clear_error(cluster_agent: CloudAgent) -> None:
    result = run(cluster_agent, "kubectl top pods -A")
    assert result.ok or (result.error.code == "not_found" and "metrics-server" in result.error.message)
