"""Container and cluster CLIs: kubectl, docker, podman, crictl.

``read`` only with their showing verbs (``get``, ``describe``, ``logs``, ``ps``, ``inspect``...),
each with its option allow-list. Options that talk to another server (``--server``, ``-H``) or
read a configuration that can run programs (``--kubeconfig``'s exec plugins, docker's
``--config`` credential helpers) are not on the lists. ``exec`` runs a command: it is judged, and
needs an approval whatever it is. ``kubectl get secret -o yaml`` prints secret values.
"""

from __future__ import annotations

from typing import ClassVar

from executors._policy.shell._family import Command, Family, Judge, check_options, find_verb
from executors._policy.shell._options import OptionTable, table

_ELSEWHERE = "talks to a server other than the configured one"
_RUNS_CONFIG = "reads a configuration that can run programs"
_KUBECTL_GLOBAL = (
    "-n= --namespace= --context= --cluster= --user= --request-timeout= -v= --v= --match-server-version "
    "--insecure-skip-tls-verify --tls-server-name= --certificate-authority= --client-certificate= --client-key= "
    "--disable-compression --warnings-as-errors -h --help"
)
_KUBECTL_REFUSED = {"-s": _ELSEWHERE, "--server": _ELSEWHERE, "--kubeconfig": _RUNS_CONFIG, "--token": _ELSEWHERE,
                    "--cache-dir": "writes a cache", "--profile": "writes a profile",
                    "--profile-output": "writes a profile", "--log-file": "writes a log file",
                    "--as": "acts as another user", "--as-group": "acts as another group",
                    "-k": "runs kustomize", "--kustomize": "runs kustomize"}  # fmt: skip
_KUBECTL_LIST = (
    "-o= --output= -l= --selector= -A --all-namespaces -w --watch --watch-only --field-selector= --sort-by= "
    "--show-labels --no-headers -L= --label-columns= --show-kind --ignore-not-found --chunk-size= --raw= "
    "--subresource= --output-watch-events --template= --show-managed-fields -f= --filename= -R --recursive"
)


def _kubectl(spec: str, reads: str = "") -> OptionTable:
    return table(f"{_KUBECTL_GLOBAL} {spec}", reads=reads, refused=_KUBECTL_REFUSED)


KUBECTL: dict[str, OptionTable] = {
    "get": _kubectl(_KUBECTL_LIST, reads="-f --filename"),
    "describe": _kubectl(
        "-l= --selector= -A --all-namespaces --show-events? -f= --filename= -R --recursive --chunk-size=",
        reads="-f --filename",
    ),
    "logs": _kubectl(
        "-c= --container= --tail= --since= --since-time= --timestamps -p --previous --all-containers "
        "--prefix --limit-bytes= --max-log-requests= --pod-running-timeout= --ignore-errors -f "
        "--follow -l= --selector="
    ),
    "top": _kubectl(
        "--containers --use-protocol-buffers --sort-by= --no-headers -l= --selector= -A --all-namespaces --sum"
    ),
    "explain": _kubectl("--recursive --api-version= -o= --output="),
    "version": _kubectl("--client --short -o= --output="),
    "api-resources": _kubectl("--namespaced? --verbs= --api-group= -o= --output= --sort-by= --cached --no-headers"),
    "api-versions": _kubectl(""),
    "cluster-info": _kubectl(""),
    "events": _kubectl("--for= --types= -w --watch -A --all-namespaces -o= --output= --no-headers --chunk-size="),
    "auth": _kubectl("--list -A --all-namespaces --no-headers -q --quiet --subresource= -o= --output="),
}
KUBECTL_DESTRUCTIVE = frozenset({"delete", "drain", "replace"})
_KUBECTL_VALUED = frozenset(o for t in KUBECTL.values() for o in t.valued) | {
    "-s",
    "--server",
    "--kubeconfig",
    "--token",
    "--as",
    "--as-group",
}
#: ``-o`` forms whose template or column list is in a file the command reads.
_FILE_OUTPUTS = ("jsonpath-file=", "go-template-file=", "custom-columns-file=", "templatefile=")
_DOCKER_GLOBAL = "--context= -c= -D --debug -l= --log-level= --tls --tlsverify --tlscacert= --tlscert= --tlskey= --help"
_DOCKER_REFUSED = {
    "-H": "talks to another container engine",
    "--host": "talks to another container engine",
    "--config": "reads a client configuration that can run credential helpers",
    "--url": "talks to another container engine",
    "--remote": "talks to another container engine",
}


def _docker(spec: str) -> OptionTable:
    return table(f"{_DOCKER_GLOBAL} {spec}", refused=_DOCKER_REFUSED)


_PS = _docker("-a --all -q --quiet -n= --last= -l --latest -s --size --no-trunc -f= --filter= --format=")
_IMAGES = _docker("-a --all -q --quiet -f= --filter= --format= --digests --no-trunc --tree")
_INSPECT = _docker("-f= --format= -s --size --type=")
_LS = _docker("-q --quiet -f= --filter= --format= --no-trunc")
DOCKER: dict[str, OptionTable] = {
    "ps": _PS,
    "logs": _docker("-f --follow -n= --tail= --since= --until= -t --timestamps --details"),
    "inspect": _INSPECT,
    "stats": _docker("-a --all --no-stream --no-trunc --format="),
    "images": _IMAGES,
    "top": _docker(""),
    "info": _docker("-f= --format="),
    "version": _docker("-f= --format="),
    "events": _docker("--since= --until= -f= --filter= --format="),
    "port": _docker(""),
    "diff": _docker(""),
    "history": _docker("-H --human --no-trunc -q --quiet --format="),
    "container ls": _PS, "container ps": _PS, "container list": _PS, "container inspect": _INSPECT,
    "container top": _docker(""), "container port": _docker(""), "container diff": _docker(""),
    "container logs": _docker("-f --follow -n= --tail= --since= --until= -t --timestamps --details"),
    "container stats": _docker("-a --all --no-stream --no-trunc --format="),
    "image ls": _IMAGES, "image list": _IMAGES, "image inspect": _INSPECT,
    "image history": _docker("-H --human --no-trunc -q --quiet --format="),
    "network ls": _LS, "network list": _LS, "network inspect": _INSPECT,
    "volume ls": _LS, "volume list": _LS, "volume inspect": _INSPECT,
    "system df": _docker("-v --verbose --format="), "system info": _docker("-f= --format="),
    "system events": _docker("--since= --until= -f= --filter= --format="),
}  # fmt: skip
DOCKER_DESTRUCTIVE = frozenset({"rm", "rmi", "prune", "kill", "container rm", "container prune", "image rm",
                                "image prune", "volume rm", "volume prune", "network rm", "network prune",
                                "system prune"})  # fmt: skip
_DOCKER_GROUPS = frozenset({"container", "image", "network", "volume", "system"})
_DOCKER_VALUED = frozenset({"--context", "-c", "-l", "--log-level", "--tlscacert", "--tlscert", "--tlskey", "-H",
                            "--host", "--config", "--url"})  # fmt: skip
CRICTL = table(
    "-a --all -q --quiet -o= --output= -v --verbose --name= --label= --state= -s= --pod= -p= --image= --last= "
    "-l --latest --no-trunc -n= --tail= --since= --timestamps -t --previous -f --follow --id= --namespace= "
    "--digests --timeout= -D --debug -h --help",
    refused={"-r": "talks to another runtime", "--runtime-endpoint": "talks to another runtime",
             "-i": "talks to another runtime", "--image-endpoint": "talks to another runtime",
             "-c": "reads another configuration", "--config": "reads another configuration"},
)  # fmt: skip
CRICTL_READ = frozenset({"ps", "pods", "logs", "inspect", "inspectp", "inspecti", "stats", "statsp", "images",
                         "info", "version", "imagefsinfo"})  # fmt: skip
CRICTL_DESTRUCTIVE = frozenset({"rm", "rmp", "rmi", "stop", "stopp"})
_CRICTL_VALUED = frozenset({"-r", "--runtime-endpoint", "-i", "--image-endpoint", "-c", "--config", "--timeout"})


class ContainerClis(Family):
    """The validator of kubectl, docker, podman and crictl."""

    names: ClassVar[frozenset[str]] = frozenset({"kubectl", "docker", "podman", "crictl"})

    def validate(self, command: Command, judge: Judge) -> None:
        if command.name == "kubectl":
            self._kubectl(command, judge)
        elif command.name == "crictl":
            self._crictl(command, judge)
        else:
            self._docker(command, judge)

    def _kubectl(self, command: Command, judge: Judge) -> None:
        position, word = find_verb(command.args, _KUBECTL_VALUED)
        verb = word.value if word is not None else None
        if verb in KUBECTL_DESTRUCTIVE:
            judge.destructive(f"kubectl {verb} removes things")
            return
        if verb == "exec":
            _exec(command, judge)
            return
        if verb not in KUBECTL:
            judge.write(f"kubectl {word.text if word else '(no verb)'} is not a read-only kubectl command")
            return
        rest = command.args[position + 1 :]
        if verb == "cluster-info" and rest:
            judge.write("kubectl cluster-info dump writes the cluster's state out")
            return
        if verb == "auth" and (not rest or rest[0].value not in ("can-i", "whoami")):
            judge.write("kubectl auth other than can-i and whoami changes roles")
            return
        parsed = check_options(command, judge, KUBECTL[verb])
        if parsed is None:
            return
        if any("secret" in (raw.value or "secret") for raw in parsed.values("--raw")):
            judge.write("kubectl get --raw of secrets prints their values")
        for output in parsed.values("-o", "--output"):
            text = output.value or ""
            kind = text.partition("=")[0]
            if f"{kind}=" in _FILE_OUTPUTS:
                judge.reads([output.tail(len(kind) + 1)])
            if verb == "get" and kind not in ("wide", "name") and _names_secrets(parsed.operands):
                judge.write("kubectl get secret with this output prints the secrets' values")

    def _docker(self, command: Command, judge: Judge) -> None:
        position, word = find_verb(command.args, _DOCKER_VALUED)
        verb = word.value if word is not None else None
        if verb in _DOCKER_GROUPS and position + 1 < len(command.args):
            verb = f"{verb} {command.args[position + 1].value}"
        if verb in ("exec", "container exec"):
            _exec(command, judge)
            return
        if verb in DOCKER_DESTRUCTIVE:
            judge.destructive(f"{command.name} {verb} removes things")
            return
        if verb not in DOCKER:
            judge.write(f"{command.name} {verb or '(no verb)'} is not a read-only {command.name} command")
            return
        parsed = check_options(command, judge, DOCKER[verb])
        if parsed is None:
            return
        if verb.endswith("top") and len(parsed.operands) > 2:
            judge.write(f"{command.name} top passes ps options, which can show processes' environments")

    def _crictl(self, command: Command, judge: Judge) -> None:
        _, word = find_verb(command.args, _CRICTL_VALUED)
        verb = word.value if word is not None else None
        if verb in CRICTL_DESTRUCTIVE:
            judge.destructive(f"crictl {verb} removes things")
        elif verb == "exec":
            _exec(command, judge)
        elif verb not in CRICTL_READ:
            judge.write(f"crictl {verb or '(no verb)'} is not a read-only crictl command")
        else:
            check_options(command, judge, CRICTL)


def _exec(command: Command, judge: Judge) -> None:
    judge.write(f"{command.name} exec runs a command in a container")
    dash = next((i for i, w in enumerate(command.args) if w.text == "--"), None)
    if dash is not None:
        judge.argv(command.args[dash + 1 :], command.depth, reads_stdin=False)


def _names_secrets(operands: list) -> bool:
    for operand in operands:
        text = (operand.value or "*").lower()
        if any(part.split("/")[0] in ("secret", "secrets", "*") for part in text.split(",")):
            return True
    return False
