"""The kubectl command parser shared by the ``k8s`` executor and its policy analyser."""

from __future__ import annotations

import pytest

from executors import InvalidTask, RiskClass
from executors.k8s._kubectl import apply_filters, parse_kubectl


@pytest.mark.parametrize(
    ("command", "operation", "resources", "name", "namespace", "risk"),
    [
        ("kubectl get pods -n production -o wide", "get", ("pods",), None, "production", RiskClass.READ),
        ("kubectl top pods -n production", "top", ("pods",), None, "production", RiskClass.READ),
        (
            "kubectl get events -n production --sort-by='.lastTimestamp' | tail -50",
            "get",
            ("events",),
            None,
            "production",
            RiskClass.READ,
        ),
        (
            "kubectl get svc,endpoints -n production",
            "get",
            ("services", "endpoints"),
            None,
            "production",
            RiskClass.READ,
        ),
        (
            "kubectl describe pod dependency-service-xxx",
            "describe",
            ("pods",),
            "dependency-service-xxx",
            None,
            RiskClass.READ,
        ),
        (
            "kubectl logs -n production my-app-pod --tail=1000",
            "logs",
            ("pods",),
            "my-app-pod",
            "production",
            RiskClass.READ,
        ),
        (
            "kubectl rollout restart deployment/my-app -n production",
            "rollout restart",
            ("deployments",),
            "my-app",
            "production",
            RiskClass.WRITE,
        ),
        ("kubectl rollout undo deployment/my-app", "rollout undo", ("deployments",), "my-app", None, RiskClass.WRITE),
        (
            "kubectl rollout history deployment my-app",
            "rollout history",
            ("deployments",),
            "my-app",
            None,
            RiskClass.READ,
        ),
        ("kubectl scale deployment/my-app --replicas=3", "scale", ("deployments",), "my-app", None, RiskClass.WRITE),
        ("get deploy -nprod", "get", ("deployments",), None, "prod", RiskClass.READ),
        ("kubectl get po/web-1 --namespace=shop", "get", ("pods",), "web-1", "shop", RiskClass.READ),
    ],
)
def test_the_spec_and_fix_catalog_commands_parse(
    command: str, operation: str, resources: tuple, name: str | None, namespace: str | None, risk: RiskClass
) -> None:
    parsed = parse_kubectl(command)
    assert (parsed.operation, parsed.resources, parsed.name, parsed.namespace, parsed.risk) == (
        operation,
        resources,
        name,
        namespace,
        risk,
    )


def test_flag_values_are_typed() -> None:
    logs = parse_kubectl("kubectl logs pod/web-1 -c app --tail 200 --since=1h30m -p --timestamps")
    typed = (logs.container, logs.tail, logs.since_seconds, logs.previous, logs.timestamps)
    assert typed == ("app", 200, 5400, True, True)
    assert parse_kubectl("kubectl scale deployment/x --replicas 0").replicas == 0
    assert parse_kubectl("kubectl rollout undo deployment/x --to-revision=2").to_revision == 2
    assert parse_kubectl("kubectl get events --sort-by='{.lastTimestamp}'").sort_by == "{.lastTimestamp}"


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("kubectl delete pod web-1", "supported: get, describe, logs, top, rollout history"),
        ("kubectl exec -it web-1 -- sh", "kubectl exec is not supported"),
        ("kubectl get secrets", "resource type 'secrets' is not supported"),
        ("kubectl rollout pause deployment/x", "rollout restart"),
        ("kubectl get pods; rm -rf /", "';' is not supported"),
        ("kubectl get pods && reboot", "'&&' is not supported"),
        ("kubectl get pods > /etc/passwd", "'>' is not supported"),
        ("kubectl get pods | sh", "'| sh' is not supported"),
        ("kubectl get pods | xargs kubectl delete pod", "'| xargs' is not supported"),
        ("kubectl get pods --context prod", "the cluster comes from the task's connection"),
        ("kubectl get pods --kubeconfig /tmp/other", "the cluster comes from the task's connection"),
        ("kubectl get pods --as system:admin", "impersonation"),
        ("kubectl logs -f web-1", "does not end"),
        ("kubectl get pods -w", "does not end"),
        ("kubectl get pods ../../secrets", "not a valid Kubernetes object name"),
        ("kubectl get pods -n ../x", "not a valid namespace name"),
        ("kubectl get pods -n a --namespace b", "given twice"),
        ("kubectl get pods -A -n x", "not both"),
        ("kubectl get pods -o jsonpath='{.items}'", "-o jsonpath"),
        ("kubectl scale deployment/x", "--replicas"),
        ("kubectl logs", "needs one resource"),
        ("kubectl logs service/x", "logs of a pod"),
        ("kubectl get pods --tail=3", "flag --tail is not supported"),
        ("kubectl get pods | grep -P x", "grep -P is not supported"),
        ("kubectl get pods | grep '['", "not a valid regular expression"),
        ("kubectl", "needs a kubectl command"),
        ("kubectl get pods 'unbalanced", "cannot parse"),
    ],
)
def test_unsupported_or_unsafe_commands_are_invalid_with_a_clear_message(command: str, says: str) -> None:
    with pytest.raises(InvalidTask, match=None) as raised:
        parse_kubectl(command)
    assert says in str(raised.value)


def test_the_pipeline_is_applied_to_lines_in_order() -> None:
    lines = ["NAME  STATUS", "web-1  Running", "web-2  CrashLoopBackOff", "api-1  Running", "api-2  Error"]
    assert apply_filters(lines, parse_kubectl("get pods | tail -2").filters) == [3, 4]
    assert apply_filters(lines, parse_kubectl("get pods | head -n 2").filters) == [0, 1]
    assert apply_filters(lines, parse_kubectl("get pods | grep -v Running").filters) == [0, 2, 4]
    assert apply_filters(lines, parse_kubectl("get pods | grep -i RUNNING | head -1").filters) == [1]
    assert apply_filters(lines, parse_kubectl("get pods | grep -E 'web|api' | tail -1").filters) == [4]
    assert apply_filters(lines, parse_kubectl("get pods | grep -F 'web-1'").filters) == [1]
    assert apply_filters(lines, parse_kubectl("get pods | grep -w Run").filters) == []
    assert apply_filters(lines, parse_kubectl("get pods | grep -w Error").filters) == [4]
    assert apply_filters(lines, parse_kubectl("get pods | tail").filters) == [0, 1, 2, 3, 4]


def test_namespace_from_the_command_and_from_params_must_agree() -> None:
    both = parse_kubectl("kubectl get pods -n production -o wide")
    assert both.namespace_for("production", default="default") == "production"
    assert parse_kubectl("kubectl get pods").namespace_for("staging", default="default") == "staging"
    assert parse_kubectl("kubectl get pods").namespace_for(None, default="team-a") == "team-a"
    with pytest.raises(InvalidTask, match="give one, or make them agree"):
        both.namespace_for("kube-system", default="default")
    with pytest.raises(InvalidTask, match="not a valid namespace"):
        both.namespace_for("Bad_Name", default="default")
