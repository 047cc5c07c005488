#!/usr/bin/env bash
# Create, or bring up to date, the read-only accounts that read tasks connect with (see
# deployments/accounts/) on the local PostgreSQL, MariaDB and Redis. Idempotent; quiet on success.
#
# Settings (environment, with the defaults deployments/local/connections.yaml uses):
#   PGHOST PGPORT PGUSER (admin)     127.0.0.1 5432 postgres; PG_READ_DATABASES=test, PG_READ_SCHEMAS=public,rca_demo
#   PG_READ_PASSWORD                 none: local PostgreSQL trusts 127.0.0.1
#   MYSQL_HOST MYSQL_PORT MYSQL_USER 127.0.0.1 3306 root (MYSQL_PWD for its password); MYSQL_READ_DATABASES=test
#   MYSQL_READ_PASSWORD              cloud-agent-read-local
#   REDIS_HOST REDIS_PORT            127.0.0.1 6379 (REDISCLI_AUTH for the admin password)
#   REDIS_READ_PASSWORD              cloud-agent-read-local
set -euo pipefail
cd "$(dirname "$0")/.."
accounts=deployments/accounts

pg_host=${PGHOST:-127.0.0.1} pg_port=${PGPORT:-5432} pg_admin=${PGUSER:-postgres}
IFS=, read -r -a pg_databases <<<"${PG_READ_DATABASES:-test}"
for database in "${pg_databases[@]}"; do
  password=()
  if [[ -n "${PG_READ_PASSWORD:-}" ]]; then password=(-v "read_password=${PG_READ_PASSWORD}"); fi
  psql -X -q -h "$pg_host" -p "$pg_port" -U "$pg_admin" -d "$database" -v ON_ERROR_STOP=1 \
    -v "read_schemas=${PG_READ_SCHEMAS:-public,rca_demo}" "${password[@]}" -f "$accounts/postgres.sql" >/dev/null
done

sql_literal() { local value=${1//\\/\\\\}; printf "'%s'" "${value//\'/\'\'}"; }
{
  printf 'SET @read_password = %s, @read_databases = %s;\n' \
    "$(sql_literal "${MYSQL_READ_PASSWORD:-cloud-agent-read-local}")" \
    "$(sql_literal "${MYSQL_READ_DATABASES:-test}")"
  cat "$accounts/mariadb.sql"
} | mysql -h "${MYSQL_HOST:-127.0.0.1}" -P "${MYSQL_PORT:-3306}" -u "${MYSQL_USER:-root}"

mapfile -t rules < <(grep -v -e '^#' -e '^[[:space:]]*$' "$accounts/redis.acl")
# redis-cli -x sends stdin as the last argument: the password stays out of the process list.
reply=$(printf '>%s' "${REDIS_READ_PASSWORD:-cloud-agent-read-local}" |
  redis-cli -h "${REDIS_HOST:-127.0.0.1}" -p "${REDIS_PORT:-6379}" -x ACL SETUSER cloud-agent-read reset "${rules[@]}")
if [[ "$reply" != "OK" ]]; then
  echo "accounts: Redis refused the ACL user: $reply" >&2
  exit 1
fi
