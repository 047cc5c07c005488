"""kubectl command lines, parsed into what the ``k8s`` executor and its policy analyser need.

One parser serves both: the analyser classifies the parsed command (``read`` or ``write``), the
executor turns the same parsed command into Kubernetes API calls. Nothing here runs a program;
an unsupported verb, resource, flag or pipeline stage is an ``InvalidTask`` that lists what is
supported.

Supported (``kubectl`` in front is optional)::

    get RESOURCE[,RESOURCE...] [NAME] [-n NS | -A] [-o wide|json|yaml|name] [-l SEL]
        [--field-selector SEL] [--sort-by JSONPATH] [--no-headers]          read
    describe pod NAME [-n NS]                                               read
    logs [pod/]POD [-n NS] [-c CONTAINER] [--tail N] [--since 10m]
        [-p|--previous] [--timestamps] [--limit-bytes N]                    read
    top pods [NAME] [-n NS | -A] [-l SEL] [--sort-by cpu|memory] [--no-headers]   read
    rollout history|status deployment/NAME [-n NS]                          read
    rollout restart deployment/NAME [-n NS]                                 write
    rollout undo deployment/NAME [--to-revision N] [-n NS]                  write
    scale deployment/NAME --replicas N [-n NS]                              write

A trailing pipeline of ``| tail -N``, ``| head -N`` and ``| grep [-i] [-v] [-F] [-w] PATTERN``
stages is applied in-process to the printed lines (see ``LineFilter``); ``;``, ``&&``,
redirections and any other program are refused.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contract import RiskClass
from executors._errors import InvalidTask

#: Canonical resource names and the spellings kubectl accepts for them.
RESOURCE_ALIASES: dict[str, tuple[str, ...]] = {
    "pods": ("pod", "po"),
    "services": ("service", "svc"),
    "endpoints": ("endpoint", "ep"),
    "events": ("event", "ev"),
    "deployments": ("deployment", "deploy", "deployments.apps", "deployment.apps"),
    "replicasets": ("replicaset", "rs", "replicasets.apps", "replicaset.apps"),
    "nodes": ("node", "no"),
    "namespaces": ("namespace", "ns"),
}
_CANONICAL = {alias: name for name, aliases in RESOURCE_ALIASES.items() for alias in (name, *aliases)}
#: Resources that live in a namespace (the others are cluster-scoped).
NAMESPACED = frozenset({"pods", "services", "endpoints", "events", "deployments", "replicasets"})

#: ``operation -> risk``; an operation is the verb, or ``rollout <action>``.
OPERATIONS: dict[str, RiskClass] = {
    "get": RiskClass.READ,
    "describe": RiskClass.READ,
    "logs": RiskClass.READ,
    "top": RiskClass.READ,
    "rollout history": RiskClass.READ,
    "rollout status": RiskClass.READ,
    "rollout restart": RiskClass.WRITE,
    "rollout undo": RiskClass.WRITE,
    "scale": RiskClass.WRITE,
}
_ROLLOUT_ACTIONS = ("history", "status", "restart", "undo")

# DNS-1123 subdomain names (pods, deployments, ...) and label names (namespaces); checked before a
# name goes into an API path.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_CONTAINER = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")

# Flags that take a value, per operation family; booleans are listed separately. Flags that would
# pick another cluster or identity (--context, --kubeconfig, --server, --token, --as) are refused
# on purpose: the cluster comes from the task's connection.
_COMMON_VALUE = {"-n": "namespace", "--namespace": "namespace"}
_VALUE_FLAGS: dict[str, dict[str, str]] = {
    "get": {
        **_COMMON_VALUE,
        "-o": "output",
        "--output": "output",
        "-l": "selector",
        "--selector": "selector",
        "--field-selector": "field_selector",
        "--sort-by": "sort_by",
    },
    "describe": dict(_COMMON_VALUE),
    "logs": {
        **_COMMON_VALUE,
        "-c": "container",
        "--container": "container",
        "--tail": "tail",
        "--since": "since",
        "--limit-bytes": "limit_bytes",
    },
    "top": {**_COMMON_VALUE, "-l": "selector", "--selector": "selector", "--sort-by": "sort_by"},
    "rollout": {**_COMMON_VALUE, "--to-revision": "to_revision"},
    "scale": {**_COMMON_VALUE, "--replicas": "replicas"},
}
_BOOL_FLAGS: dict[str, dict[str, str]] = {
    "get": {"-A": "all_namespaces", "--all-namespaces": "all_namespaces", "--no-headers": "no_headers"},
    "describe": {},
    "logs": {"-p": "previous", "--previous": "previous", "--timestamps": "timestamps"},
    "top": {"-A": "all_namespaces", "--all-namespaces": "all_namespaces", "--no-headers": "no_headers"},
    "rollout": {},
    "scale": {},
}
_REFUSED_FLAGS = {
    "--context": "the cluster comes from the task's connection, not from the command",
    "--cluster": "the cluster comes from the task's connection, not from the command",
    "--kubeconfig": "the cluster comes from the task's connection, not from the command",
    "--server": "the cluster comes from the task's connection, not from the command",
    "-s": "the cluster comes from the task's connection, not from the command",
    "--token": "credentials come from the task's connection, not from the command",
    "--user": "credentials come from the task's connection, not from the command",
    "--as": "impersonation is not supported",
    "--as-group": "impersonation is not supported",
    "-f": "following or watching does not end; a task must",
    "--follow": "following or watching does not end; a task must",
    "-w": "following or watching does not end; a task must",
    "--watch": "following or watching does not end; a task must",
}
OUTPUT_FORMATS = ("wide", "json", "yaml", "name")


@dataclass(frozen=True)
class LineFilter:
    """One ``| tail``, ``| head`` or ``| grep`` stage, applied to printed lines."""

    program: str
    count: int = 0
    pattern: re.Pattern[str] | None = None
    invert: bool = False
    text: str = ""

    def keep(self, lines: Sequence[str]) -> list[int]:
        """Indices of ``lines`` this stage lets through, in order."""
        if self.program == "tail":
            return list(range(max(0, len(lines) - self.count), len(lines)))
        if self.program == "head":
            return list(range(min(self.count, len(lines))))
        assert self.pattern is not None
        return [i for i, line in enumerate(lines) if bool(self.pattern.search(line)) is not self.invert]

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class KubectlCommand:
    """A parsed kubectl command line. ``namespace`` is the ``-n`` flag only (see ``namespace_for``)."""

    operation: str
    resources: tuple[str, ...] = ()
    name: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    output: str | None = None
    selector: str | None = None
    field_selector: str | None = None
    sort_by: str | None = None
    no_headers: bool = False
    container: str | None = None
    tail: int | None = None
    since_seconds: int | None = None
    limit_bytes: int | None = None
    previous: bool = False
    timestamps: bool = False
    replicas: int | None = None
    to_revision: int | None = None
    filters: tuple[LineFilter, ...] = field(default_factory=tuple)

    @property
    def risk(self) -> RiskClass:
        return OPERATIONS[self.operation]

    @property
    def namespaced(self) -> bool:
        return any(resource in NAMESPACED for resource in self.resources)

    def namespace_for(self, params_namespace: str | None, default: str) -> str:
        """The namespace the command acts in.

        ``-n`` in the command and ``params.namespace`` both name it; when both are given they
        must agree (neither silently wins: a mismatch is an ``InvalidTask``). Without either, the
        connection's (or kubeconfig context's) ``default``.
        """
        if params_namespace is not None:
            if not isinstance(params_namespace, str) or not _NAMESPACE.match(params_namespace):
                raise InvalidTask(f"params.namespace {params_namespace!r} is not a valid namespace name")
            if self.namespace is not None and self.namespace != params_namespace:
                raise InvalidTask(
                    f"the command says -n {self.namespace} but params.namespace is {params_namespace!r}; "
                    "give one, or make them agree"
                )
        return self.namespace or params_namespace or default

    def subject(self, namespace: str | None) -> str:
        """The normalised task an environment's deny patterns are matched against."""
        parts = ["kubectl", self.operation]
        if self.resources:
            parts.append(",".join(self.resources) + (f"/{self.name}" if self.name else ""))
        elif self.name:
            parts.append(self.name)
        if self.all_namespaces:
            parts.append("--all-namespaces")
        elif self.namespaced and namespace:
            parts.append(f"-n {namespace}")
        if self.replicas is not None:
            parts.append(f"--replicas={self.replicas}")
        if self.to_revision is not None:
            parts.append(f"--to-revision={self.to_revision}")
        return " ".join(parts)


def supported_operations() -> str:
    return ", ".join(OPERATIONS)


def parse_kubectl(command: str) -> KubectlCommand:
    """Parse ``command`` (one kubectl command, optionally piped into tail/head/grep).

    Raises:
        InvalidTask: the command is empty, malformed or not supported; the message says what is.
    """
    stages = _split_pipeline(command)
    words = stages[0]
    if words and words[0] == "kubectl":
        words = words[1:]
    if not words:
        raise InvalidTask(f"a k8s task needs a kubectl command; supported: {supported_operations()}")
    filters = tuple(_parse_filter(stage) for stage in stages[1:])
    verb, rest = words[0], words[1:]
    if verb == "rollout":
        if not rest or rest[0] not in _ROLLOUT_ACTIONS:
            given = rest[0] if rest else "nothing"
            raise InvalidTask(
                f"kubectl rollout {given} is not supported; supported: "
                + ", ".join(f"rollout {action}" for action in _ROLLOUT_ACTIONS)
            )
        operation, family, rest = f"rollout {rest[0]}", "rollout", rest[1:]
    elif verb in OPERATIONS:
        operation, family = verb, verb
    else:
        raise InvalidTask(f"kubectl {verb} is not supported; supported: {supported_operations()}")

    options, positionals = _parse_flags(rest, family, operation)
    converted = _convert(options, operation)
    plain = {key: value for key, value in options.items() if key not in converted and key != "since"}
    return KubectlCommand(
        operation=operation, filters=filters, **plain, **_operands(operation, positionals), **converted
    )


def _split_pipeline(command: str) -> list[list[str]]:
    if "\n" in command.strip() or "\r" in command:
        raise InvalidTask("a k8s task runs one kubectl command (no newlines)")
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|;&<>()")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:  # unbalanced quotes
        raise InvalidTask(f"cannot parse the kubectl command: {exc}") from exc
    stages: list[list[str]] = [[]]
    for token in tokens:
        if token == "|":
            stages.append([])
        elif token and set(token) <= set("|;&<>()"):
            raise InvalidTask(
                f"{token!r} is not supported in a k8s task: no shell runs it; only "
                "'| tail -N', '| head -N' and '| grep PATTERN' may follow the kubectl command"
            )
        else:
            stages[-1].append(token)
    if any(not stage for stage in stages):
        raise InvalidTask("empty stage in the kubectl pipeline")
    return stages


def _parse_flags(words: list[str], family: str, operation: str) -> tuple[dict[str, Any], list[str]]:
    value_flags, bool_flags = _VALUE_FLAGS[family], _BOOL_FLAGS[family]
    options: dict[str, Any] = {}
    positionals: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-") or word == "-":
            positionals.append(word)
            continue
        name, separator, value = word.partition("=")
        has_value = bool(separator)
        if name.startswith("-") and not name.startswith("--") and len(name) > 2 and not has_value:
            # pflag shorthand with the value attached: -nproduction, -owide
            name, has_value, value = name[:2], True, name[2:]
        if name in _REFUSED_FLAGS:
            raise InvalidTask(f"kubectl {operation} {name}: {_REFUSED_FLAGS[name]}")
        if name in bool_flags:
            if has_value and value.lower() not in ("true", "false"):
                raise InvalidTask(f"kubectl {operation} {name} takes no value")
            options[bool_flags[name]] = not has_value or value.lower() == "true"
        elif name in value_flags:
            if not has_value:
                if index >= len(words):
                    raise InvalidTask(f"kubectl {operation} {name} needs a value")
                value = words[index]
                index += 1
            key = value_flags[name]
            if key in options and options[key] != value:
                raise InvalidTask(f"kubectl {operation}: {name} is given twice with different values")
            options[key] = value
        else:
            known = sorted({*value_flags, *bool_flags})
            raise InvalidTask(
                f"kubectl {operation}: flag {name} is not supported; supported flags: {', '.join(known) or 'none'}"
            )
    return options, positionals


def _operands(operation: str, positionals: list[str]) -> dict[str, Any]:
    if operation == "get":
        if not positionals:
            raise InvalidTask("kubectl get needs a resource type, e.g. kubectl get pods")
        if len(positionals) > 2:
            raise InvalidTask(f"kubectl get takes a resource type and at most one name, not {positionals[2:]}")
        if "/" in positionals[0] and len(positionals) == 1:
            kind, _, slashed = positionals[0].partition("/")
            return {"resources": (_resource(kind, "get"),), "name": _checked_name(slashed)}
        resources = tuple(dict.fromkeys(_resource(kind, "get") for kind in positionals[0].split(",")))
        named = _checked_name(positionals[1]) if len(positionals) == 2 else None
        if named is not None and len(resources) > 1:
            raise InvalidTask("kubectl get with a name takes one resource type")
        return {"resources": resources, "name": named}
    if operation == "describe":
        kind, name = _kind_and_name(positionals, operation, default_kind=None)
        if kind != "pods":
            raise InvalidTask(f"kubectl describe supports pods only, not {kind}")
        return {"resources": ("pods",), "name": name}
    if operation == "logs":
        kind, name = _kind_and_name(positionals, operation, default_kind="pods")
        if kind not in ("pods", "deployments"):
            raise InvalidTask(
                f"kubectl logs reads the logs of a pod (pod/NAME or NAME) or of one of a deployment's pods "
                f"(deployment/NAME), not of {kind}"
            )
        return {"resources": (kind,), "name": name}
    if operation == "top":
        if not positionals or _CANONICAL.get(positionals[0]) != "pods":
            given = positionals[0] if positionals else "nothing"
            raise InvalidTask(f"kubectl top supports pods only, not {given}")
        if len(positionals) > 2:
            raise InvalidTask(f"kubectl top pods takes at most one pod name, not {positionals[2:]}")
        pod = _checked_name(positionals[1]) if len(positionals) == 2 else None
        return {"resources": ("pods",), "name": pod}
    # rollout * and scale act on one deployment
    kind, name = _kind_and_name(positionals, operation, default_kind=None)
    if kind != "deployments":
        raise InvalidTask(f"kubectl {operation} supports deployments only (deployment/NAME), not {kind}")
    return {"resources": ("deployments",), "name": name}


def _kind_and_name(positionals: list[str], operation: str, default_kind: str | None) -> tuple[str, str]:
    if len(positionals) == 1 and "/" in positionals[0]:
        kind, _, name = positionals[0].partition("/")
        return _resource(kind, operation), _checked_name(name)
    if len(positionals) == 2:
        return _resource(positionals[0], operation), _checked_name(positionals[1])
    if len(positionals) == 1 and default_kind is not None:
        return default_kind, _checked_name(positionals[0])
    example = "deployment/NAME" if default_kind is None and operation != "describe" else "pod NAME"
    raise InvalidTask(f"kubectl {operation} needs one resource to act on, e.g. kubectl {operation} {example}")


def _resource(kind: str, operation: str) -> str:
    canonical = _CANONICAL.get(kind.lower())
    if canonical is None:
        raise InvalidTask(
            f"kubectl {operation}: resource type {kind!r} is not supported; supported: {', '.join(RESOURCE_ALIASES)}"
        )
    return canonical


def _checked_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidTask(f"{name!r} is not a valid Kubernetes object name")
    return name


def _convert(options: dict[str, Any], operation: str) -> dict[str, Any]:
    """Typed values for the flags that take numbers, durations or a fixed set of words."""
    converted: dict[str, Any] = {}
    namespace = options.get("namespace")
    if namespace is not None and not _NAMESPACE.match(namespace):
        raise InvalidTask(f"{namespace!r} is not a valid namespace name")
    if options.get("all_namespaces") and namespace is not None:
        raise InvalidTask("give either -n NAMESPACE or --all-namespaces, not both")
    output = options.get("output")
    if output is not None and output not in OUTPUT_FORMATS:
        raise InvalidTask(f"kubectl {operation} -o {output} is not supported; supported: {', '.join(OUTPUT_FORMATS)}")
    container = options.get("container")
    if container is not None and not _CONTAINER.match(container):
        raise InvalidTask(f"{container!r} is not a valid container name")
    for key in ("tail", "limit_bytes", "replicas", "to_revision"):
        if key in options:
            converted[key] = _integer(options[key], key, minimum=-1 if key == "tail" else 0)
    if converted.get("tail") == -1:
        converted["tail"] = None  # kubectl's default: every line
    if "since" in options:
        converted["since_seconds"] = _seconds(options["since"])
    if operation == "top" and options.get("sort_by") not in (None, "cpu", "memory"):
        raise InvalidTask("kubectl top --sort-by takes cpu or memory")
    if operation == "get" and options.get("sort_by") is not None:
        _jsonpath_keys(options["sort_by"])  # validated now, used by the executor
    if operation == "scale" and "replicas" not in options:
        raise InvalidTask("kubectl scale needs --replicas=N")
    return converted


def _integer(value: str, flag: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidTask(f"--{flag.replace('_', '-')} takes a whole number, not {value!r}") from None
    if number < minimum:
        raise InvalidTask(f"--{flag.replace('_', '-')} must be at least {minimum}")
    return number


def _seconds(value: str) -> int:
    match = _DURATION.match(value)
    if not value or match is None:
        raise InvalidTask(f"--since takes a duration like 30s, 10m or 1h, not {value!r}")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _jsonpath_keys(expression: str) -> list[str]:
    """``.lastTimestamp`` / ``{.metadata.creationTimestamp}`` as keys; a simple dotted path only."""
    path = expression.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if not re.fullmatch(r"(\.[A-Za-z0-9_-]+)+", path):
        raise InvalidTask(f"--sort-by takes a dotted field path like .lastTimestamp, not {expression!r}")
    return path[1:].split(".")


def sort_key(expression: str) -> Callable[[dict[str, Any]], tuple[bool, str]]:
    """A sort key for raw API objects from a ``--sort-by`` path (missing values sort first)."""
    keys = _jsonpath_keys(expression)

    def key(item: dict[str, Any]) -> tuple[bool, str]:
        value: Any = item
        for part in keys:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return (False, "")
        if isinstance(value, int | float):
            return (True, f"{value:020.6f}")
        return (True, str(value))

    return key


def _parse_filter(words: list[str]) -> LineFilter:
    program, args = words[0], words[1:]
    text = shlex.join(words)
    if program in ("tail", "head"):
        return LineFilter(program, count=_line_count(program, args), text=text)
    if program == "grep":
        return _parse_grep(args, text)
    raise InvalidTask(
        f"'| {program}' is not supported after a kubectl command; supported: '| tail -N', '| head -N', '| grep PATTERN'"
    )


def _line_count(program: str, args: list[str]) -> int:
    if not args:
        return 10
    spelled = " ".join(args)
    match = re.fullmatch(r"(?:-n\s*|--lines=|-)?(\d+)", spelled) or re.fullmatch(r"-n\s+(\d+)", spelled)
    if match is None:
        raise InvalidTask(f"'| {program} {spelled}' is not supported; write '| {program} -N' or '| {program} -n N'")
    return int(match.group(1))


def _parse_grep(args: list[str], text: str) -> LineFilter:
    flags = 0
    invert = fixed = word = False
    pattern: str | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "-e":
            if index >= len(args):
                raise InvalidTask("grep -e needs a pattern")
            pattern = args[index]
            index += 1
        elif arg.startswith("-") and len(arg) > 1 and pattern is None:
            for letter in arg[1:]:
                if letter == "i":
                    flags |= re.IGNORECASE
                elif letter == "v":
                    invert = True
                elif letter == "F":
                    fixed = True
                elif letter == "w":
                    word = True
                elif letter == "E":
                    pass  # patterns are extended regular expressions either way
                else:
                    raise InvalidTask(f"grep -{letter} is not supported; supported: -i -v -E -F -w -e")
        elif pattern is None:
            pattern = arg
        else:
            raise InvalidTask("grep after a kubectl command takes one pattern and no file names")
    if pattern is None:
        raise InvalidTask("grep needs a pattern")
    source = re.escape(pattern) if fixed else pattern
    if word:
        source = rf"(?<!\w)(?:{source})(?!\w)"
    try:
        compiled = re.compile(source, flags)
    except re.error as exc:
        raise InvalidTask(f"grep pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    return LineFilter("grep", pattern=compiled, invert=invert, text=text)


def apply_filters(lines: list[str], filters: Sequence[LineFilter]) -> list[int]:
    """Indices of ``lines`` that survive every stage of the pipeline, in order."""
    kept = list(range(len(lines)))
    for stage in filters:
        survivors = stage.keep([lines[i] for i in kept])
        kept = [kept[i] for i in survivors]
    return kept
