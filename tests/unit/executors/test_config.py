"""Environments, agents, named connections and their ``${...}`` references, task types."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from executors import (
    AgentSettings,
    CloudAgent,
    ConfigurationError,
    EnvironmentCatalog,
    TaskStatus,
    UnknownAgent,
    UnknownEnvironment,
    UnknownExecutorType,
    executor_class,
    executor_types,
    open_audit_log,
    redact_text,
)
from tests.environments import write_environment, write_test_environments

KNOWN_AGENTS = "agent-local-001, agent-prod-001, agent-prod-002, agent-staging-001, local, prod, staging"


def _catalog_with(root: Path, **connection: object) -> EnvironmentCatalog:
    write_environment(root, "custom", agents=["agent-custom-001"], connections={"postgres": {"default": connection}})
    return EnvironmentCatalog.load(root)


def test_references_are_resolved_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CA_CFG_HOST", "db.internal")
    monkeypatch.setenv("CA_CFG_DB", "orders")
    monkeypatch.setenv("CA_CFG_EMPTY", "")
    monkeypatch.delenv("CA_CFG_PORT", raising=False)
    catalog = _catalog_with(
        tmp_path,
        host="${CA_CFG_HOST}",
        port="${CA_CFG_PORT:-6432}",
        dbname="app_${CA_CFG_DB}_ro",
        user="${CA_CFG_EMPTY:-reader}",
        sslmode="${CA_CFG_EMPTY}",
        options=["${CA_CFG_HOST}", 5],
    )

    settings = catalog.environment("custom").connection("postgres", None).settings

    assert settings == {
        "host": "db.internal",
        "port": "6432",
        "dbname": "app_orders_ro",
        "user": "reader",  # like the shell, ``:-`` also replaces an empty value
        "sslmode": "",
        "options": ["db.internal", 5],
    }


def test_a_missing_variable_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CA_CFG_MISSING", raising=False)
    catalog = _catalog_with(tmp_path, host="127.0.0.1", password="${CA_CFG_MISSING}")

    with pytest.raises(ConfigurationError) as caught:
        catalog.environment("custom").connection("postgres", "default")

    assert str(caught.value) == "connection custom/postgres/default needs the environment variable CA_CFG_MISSING"


def test_a_missing_variable_fails_the_task_not_the_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CA_CFG_MISSING", raising=False)
    catalog = _catalog_with(tmp_path, host="127.0.0.1", password="${CA_CFG_MISSING}")
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{tmp_path / 'a.db'}")) as agent:
        result = agent.run({"agent_id": "agent-custom-001", "type": "postgres", "command": "SELECT 1"})

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "configuration_error"
    assert "CA_CFG_MISSING" in result.error.message


def test_resolved_secrets_are_masked_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CA_CFG_SECRET", "resolved-secret-value-77")
    monkeypatch.setenv("CA_CFG_PUBLIC", "public-host-name-77")

    _catalog_with(tmp_path, host="${CA_CFG_PUBLIC}", password="${CA_CFG_SECRET}")

    assert redact_text("connect with resolved-secret-value-77 to public-host-name-77") == (
        "connect with *** to public-host-name-77"
    )


def test_an_authorization_header_registers_its_credential_not_its_scheme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CA_CFG_UNSET_TOKEN", raising=False)
    monkeypatch.setenv("CA_CFG_TOKEN", "header-token-value-81")
    connections = {
        "api": {
            "unset": {"headers": {"Authorization": "Bearer ${CA_CFG_UNSET_TOKEN:-}"}},
            "set": {"headers": {"Authorization": "Bearer ${CA_CFG_TOKEN}"}},
        }
    }
    write_environment(tmp_path, "custom", agents=["agent-custom-001"], connections=connections)

    EnvironmentCatalog.load(tmp_path)

    assert redact_text("sent Bearer header-token-value-81") == "sent Bearer ***"
    # The word alone is no secret: the inline net still sees and masks the token that follows it.
    assert redact_text("sent Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln") == "sent Authorization: Bearer ***"


def test_read_credentials_are_secrets_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CA_CFG_READ_PW", "read-password-value-78")
    monkeypatch.setenv("CA_CFG_REDIS_READ_PW", "redis-read-password-79")
    connections = {
        "postgres": {"default": {"host": "h", "read_user": "reader-name-80", "read_password": "${CA_CFG_READ_PW}"}},
        "redis": {"default": {"url": "redis://h:6379/0", "read_url": "redis://r:${CA_CFG_REDIS_READ_PW}@h:6379/0"}},
    }
    write_environment(tmp_path, "custom", agents=["agent-custom-001"], connections=connections)

    EnvironmentCatalog.load(tmp_path)  # no task has used them yet

    assert redact_text("read-password-value-78 redis-read-password-79 reader-name-80") == "*** *** reader-name-80"


def test_an_unknown_connection_lists_the_configured_ones(tmp_path: Path) -> None:
    write_test_environments(tmp_path)
    environment = EnvironmentCatalog.load(tmp_path).environment("local")

    with pytest.raises(ConfigurationError) as caught:
        environment.connection("postgres", "warehouse")

    assert "no postgres connection named 'warehouse' in environment 'local'" in str(caught.value)
    assert "(configured: default, tracing-db)" in str(caught.value)
    with pytest.raises(ConfigurationError, match=r"\(configured: none\)"):
        environment.connection("some-type", None)


def test_an_unknown_agent_lists_the_known_ones(agent: CloudAgent) -> None:
    with pytest.raises(UnknownAgent) as caught:
        agent.catalog.environment_of("agent-moon-001")
    result = agent.run({"agent_id": "agent-moon-001", "type": "shell", "command": "uptime"})

    assert str(caught.value) == f"unknown agent 'agent-moon-001' (known agents: {KNOWN_AGENTS})"
    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "unknown_agent"
    assert KNOWN_AGENTS in result.error.message


def test_agents_and_environments(agent: CloudAgent) -> None:
    catalog = agent.catalog

    assert catalog.default_agent == "local"
    assert catalog.environment_of(None).name == "local"
    assert catalog.environment_of("agent-prod-002").name == "prod"
    assert catalog.environment_of("staging").name == "staging"
    assert catalog.agents()["agent-prod-001"] == "prod"
    with pytest.raises(UnknownEnvironment, match=r"unknown environment 'qa' \(configured: local, prod, staging\)"):
        catalog.environment("qa")


def test_an_unknown_type_lists_the_known_ones(agent: CloudAgent) -> None:
    with pytest.raises(UnknownExecutorType) as caught:
        executor_class("telnet")
    result = agent.run({"type": "telnet", "command": "open host"})

    known = executor_types()
    assert {"shell", "postgres", "mysql", "redis", "api"} <= set(known)
    assert str(caught.value) == f"unknown task type 'telnet'; known types: {', '.join(known)}"
    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "unknown_type"
    assert "known types: " in result.error.message and "shell" in result.error.message


def test_the_timeout_is_capped_by_the_environment_with_a_note(config_dir: Path, state_dir: Path) -> None:
    write_environment(config_dir, "capped", agents=["agent-capped-001"], limits={"max_timeout_seconds": 1})
    started = time.monotonic()
    with CloudAgent(EnvironmentCatalog.load(config_dir), open_audit_log(f"sqlite:///{state_dir}/a.db")) as agent:
        slow = agent.run({"agent_id": "agent-capped-001", "type": "shell", "command": "sleep 3", "timeout": 30})
        elapsed = time.monotonic() - started
        quick = agent.run({"agent_id": "agent-capped-001", "type": "shell", "command": "echo hi", "timeout": 0.5})

    assert slow.status is TaskStatus.TIMED_OUT
    assert elapsed < 2.0
    assert "timeout capped from 30 s to 1 s by environment 'capped'" in slow.notes
    assert quick.status is TaskStatus.SUCCEEDED and quick.notes == []


def test_a_process_serves_only_its_environments(config_dir: Path, state_dir: Path) -> None:
    catalog = EnvironmentCatalog.load(config_dir)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir}/a.db"), serves=["prod"]) as agent:
        elsewhere = agent.run({"agent_id": "agent-staging-001", "type": "shell", "command": "uptime"})
        here = agent.run({"agent_id": "agent-prod-001", "type": "shell", "command": "uptime"})

    assert elsewhere.status is TaskStatus.FAILED
    assert elsewhere.error is not None
    assert "which this process does not serve (it serves: prod)" in elsewhere.error.message
    assert here.status is TaskStatus.SUCCEEDED


def test_settings_come_from_cloud_agent_variables(config_dir: Path, state_dir: Path) -> None:
    settings = AgentSettings()

    assert settings.resolved_config_dir() == config_dir
    assert settings.resolved_audit_url() == f"sqlite:///{state_dir / 'audit.sqlite3'}"
    with CloudAgent.from_settings() as agent:
        assert agent.run({"type": "shell", "command": "echo from-settings"}).output == "from-settings\n"
    assert (state_dir / "audit.sqlite3").exists()


@pytest.mark.parametrize(
    ("environment_yaml", "message"),
    [
        ("agents: [a]\nlimits: {max_rows: 0}\n", "limits.max_rows: Input should be greater than 0"),
        ("agents: [a]\nsurprise: 1\n", "surprise: Extra inputs are not permitted"),
        ("agents: [a]\npolicy: {deny: [{pattern: '('}]}\n", "not a valid regular expression"),
        ("agents: [a]\npolicy: {max_risk: catastrophic}\n", "policy.max_risk: Input should be"),
        ("- just\n- a list\n", "must hold a mapping, not list"),
        ("agents: [a\n", "cannot read"),
    ],
    ids=["bad-limit", "unknown-key", "bad-pattern", "bad-risk", "not-a-mapping", "bad-yaml"],
)
def test_a_bad_environment_file_is_a_clear_error(tmp_path: Path, environment_yaml: str, message: str) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "environment.yaml").write_text(environment_yaml)

    with pytest.raises(ConfigurationError) as caught:
        EnvironmentCatalog.load(tmp_path)

    assert message in str(caught.value)
    assert "broken" in str(caught.value)


def test_a_configuration_folder_without_environments(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        EnvironmentCatalog.load(tmp_path / "nowhere")
    with pytest.raises(ConfigurationError, match="no environments under"):
        EnvironmentCatalog.load(tmp_path)


def test_an_agent_in_two_environments_is_refused(tmp_path: Path) -> None:
    write_environment(tmp_path, "one", agents=["agent-shared"])
    write_environment(tmp_path, "two", agents=["agent-shared"])

    with pytest.raises(ConfigurationError, match="agent 'agent-shared' is declared by both 'one' and 'two'"):
        EnvironmentCatalog.load(tmp_path).environment_of("agent-shared")


def test_a_package_adds_types_but_cannot_replace_a_built_in_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from executors import _registry

    planted = [
        EntryPoint("shell", "evil.unsandboxed:Shell", _registry.ENTRY_POINT_GROUP),
        EntryPoint("telnet", "executors.shell:ShellExecutor", _registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(_registry, "entry_points", lambda group: planted)
    _registry.executor_types.cache_clear()
    try:
        assert executor_types()["shell"] == "executors.shell:ShellExecutor"
        assert executor_types()["telnet"] == "executors.shell:ShellExecutor"
        assert executor_class("shell").__module__ == "executors.shell"
    finally:
        _registry.executor_types.cache_clear()
