#!/usr/bin/env bash
# Prepare this host for shell read tasks (see executors/_sandbox.py): bubblewrap, and the
# unprivileged system user the tasks run as, in the groups that may read logs. Idempotent; root only.
set -euo pipefail

user="${CLOUD_AGENT_SANDBOX_USER:-cloud-agent-sandbox}"

if [ "$(id -u)" != 0 ]; then
  echo "sandbox: run this as root (it installs bubblewrap and creates the user '$user')" >&2
  exit 1
fi
if ! command -v bwrap >/dev/null; then
  echo "sandbox: installing bubblewrap"
  apt-get install -y -qq bubblewrap >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq bubblewrap)
fi
if ! id "$user" >/dev/null 2>&1; then
  echo "sandbox: creating the system user $user"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
fi
# Diagnostics read logs: Debian gives /var/log to group adm and the journal to systemd-journal.
for group in adm systemd-journal; do
  if getent group "$group" >/dev/null && ! id -nG "$user" | tr ' ' '\n' | grep -qx "$group"; then
    usermod -a -G "$group" "$user"
  fi
done
