"""Process-wide settings, from ``CLOUD_AGENT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Where local state lives unless ``CLOUD_AGENT_STATE_DIR`` says otherwise.
DEFAULT_STATE_DIR = Path.home() / ".local" / "state" / "cloud-agent"


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUD_AGENT_", extra="ignore")

    #: Folder of environments (``<env>/environment.yaml``); default ``./deployments`` or the
    #: project's own ``deployments/``.
    config_dir: Path | None = None
    #: Where local state lives: the SQLite audit log, task history, models, outcomes.
    state_dir: Path = DEFAULT_STATE_DIR
    #: ``sqlite:///...`` (default: ``<state_dir>/audit.sqlite3``) or ``postgresql://...``.
    audit_url: str | None = None
    #: The agent that runs tasks that name none (default: ``local`` when configured).
    default_agent: str | None = None

    def resolved_config_dir(self) -> Path:
        if self.config_dir is not None:
            return self.config_dir
        here = Path.cwd() / "deployments"
        if any(here.glob("*/environment.yaml")):
            return here
        return _PROJECT_ROOT / "deployments"

    def resolved_audit_url(self) -> str:
        return self.audit_url or f"sqlite:///{self.state_dir / 'audit.sqlite3'}"
