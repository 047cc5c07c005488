"""kubectl, docker, podman, crictl (``executors._policy.shell.containers``)."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

CASES = [
    ("kubectl get pods -A -o wide", READ),
    ("kubectl -n shop get deploy web -o jsonpath='{.status.readyReplicas}'", READ),
    ("kubectl get pods -l app=web --field-selector=status.phase!=Running", READ),
    ("kubectl describe node worker-1", READ),
    ("kubectl logs deploy/web -c app --since=10m --timestamps", READ),
    ("kubectl top nodes", READ),
    ("kubectl get events -w --field-selector type=Warning", READ),
    ("kubectl get secrets", READ),
    ("kubectl describe secret db", READ),
    ("kubectl auth can-i list pods", READ),
    ("kubectl api-resources --namespaced=true", READ),
    ("kubectl version --client", READ),
    ("kubectl get --raw /readyz", READ),
    ("docker ps -a", READ),
    ("docker logs -f --tail 50 web", READ),
    ("docker inspect --format '{{.State.Health.Status}}' web", READ),
    ("docker container ls --filter status=exited", READ),
    ("docker image ls", READ),
    ("docker system df -v", READ),
    ("docker top web", READ),
    ("podman ps", READ),
    ("crictl pods", READ),
    ("crictl logs --tail 100 abc", READ),
    ("kubectl get secret db -o yaml", APPROVAL),
    ("kubectl get secrets -o jsonpath='{.items[*].data}'", APPROVAL),
    ("kubectl get all,secret -o json", APPROVAL),
    ("kubectl get --raw /api/v1/namespaces/shop/secrets", APPROVAL),
    ("kubectl apply -f deploy.yaml", APPROVAL),
    ("kubectl rollout restart deploy/web", APPROVAL),
    ("kubectl scale deploy/web --replicas=0", APPROVAL),
    ("kubectl exec web -- ls", APPROVAL),
    ("kubectl port-forward svc/web 8080:80", APPROVAL),
    ("kubectl cp web:/etc/x /tmp/x", APPROVAL),
    ("kubectl --kubeconfig /tmp/kc get pods", APPROVAL),
    ("kubectl -s https://10.0.0.1 get pods", APPROVAL),
    ("kubectl --as=system:admin get pods", APPROVAL),
    ("kubectl auth reconcile -f rbac.yaml", APPROVAL),
    ("kubectl cluster-info dump --output-directory=/tmp/dump", APPROVAL),
    ("kubectl get pods --profile=cpu --profile-output=/tmp/p", APPROVAL),
    ("kubectl debug node/x -it --image=busybox", APPROVAL),
    ("kubectl delete pod web-1", APPROVAL),
    ("docker -H tcp://10.0.0.1:2375 ps", APPROVAL),
    ("docker --config /tmp/cfg ps", APPROVAL),
    ("docker run --rm alpine id", APPROVAL),
    ("docker exec web ls", APPROVAL),
    ("docker rm -f web", APPROVAL),
    ("docker system prune -af", APPROVAL),
    ("docker top web aux e", APPROVAL),
    ("crictl -r unix:///tmp/x.sock ps", APPROVAL),
    ("crictl stopp abc", APPROVAL),
    ("kubectl exec web -- rm -rf /", denied("shell.rm-root")),
    ("docker exec web -- sh -c 'rm -rf /'", denied("shell.rm-root")),
    ("kubectl get pods -o go-template-file=/etc/shadow", denied("shell.credential-file")),
    ("kubectl get -f /root/.kube/config", denied("shell.credential-file")),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_container_clis(command: str, expected: str) -> None:
    check(command, expected)
