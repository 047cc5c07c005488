"""psql, mysql, clickhouse-client, redis-cli (``executors._policy.shell.databases``): the SQL and
Redis commands go through their own analysers; the clients' own commands are not SQL."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

CASES = [
    ("psql -c 'SELECT count(*) FROM pg_stat_activity'", READ),
    ("psql -X -At -h 127.0.0.1 -U postgres -d test -c 'SHOW max_connections'", READ),
    ("psql -c '\\dt+ public.*'", READ),
    ("psql -c '\\x' -c 'SELECT 1'", READ),
    ("psql -l", READ),
    ("PGPASSWORD=secret psql -h db -c 'SELECT 1'", READ),
    ("mysql -e 'SHOW ENGINE INNODB STATUS\\G'", READ),
    ("mysql -uroot -pSECRET -h db --batch -e 'SELECT 1'", READ),
    ("MYSQL_PWD=x mysql -e 'SHOW PROCESSLIST'", READ),
    ("clickhouse-client --query 'SELECT count() FROM system.parts'", READ),
    ("redis-cli INFO memory", READ),
    ("redis-cli -n 2 --scan --pattern 'session:*'", READ),
    ("redis-cli --stat -i 1", READ),
    ("REDISCLI_AUTH=x redis-cli PING", READ),
    ("psql -c 'UPDATE t SET x = 1'", APPROVAL),
    ("psql -c '\\o /tmp/out'", APPROVAL),
    ("psql -c '\\i /tmp/x.sql'", APPROVAL),
    ("psql -c '\\copy t to /tmp/t.csv'", APPROVAL),
    ("psql -c '\\lo_import /tmp/x'", APPROVAL),
    ("psql -c 'SELECT 1' -o /tmp/out", APPROVAL),
    ("psql -c 'SELECT 1' -L /tmp/log", APPROVAL),
    ("psql -v PROMPT1=x -c 'SELECT 1'", APPROVAL),
    ("psql -f /tmp/x.sql", APPROVAL),
    ("psql", APPROVAL),
    ("psql -c '\\! id'", APPROVAL),
    ("psql -c '\\d `id`'", APPROVAL),
    ("PGOPTIONS='-c default_transaction_read_only=off' psql -c 'SELECT 1'", APPROVAL),
    ("mysql -e 'SELECT 1 \\! id'", APPROVAL),
    ("mysql -e 'SELECT 1; system id'", APPROVAL),
    ("mysql -e 'source /tmp/x.sql'", APPROVAL),
    ("mysql -e 'tee /tmp/out'", APPROVAL),
    ("mysql --pager=sh -e 'SELECT 1'", APPROVAL),
    ("mysql --init-command='DELETE FROM t' -e 'SELECT 1'", APPROVAL),
    ("mysql --defaults-extra-file=/tmp/my.cnf -e 'SELECT 1'", APPROVAL),
    ("mysql --local-infile=1 -e 'SELECT 1'", APPROVAL),
    ("mysql --exec='SELECT 1'", APPROVAL),
    ("clickhouse-client -q \"SELECT 1 INTO OUTFILE '/tmp/x'\"", denied("sql.file-access")),
    ("clickhouse-client --queries-file /tmp/x.sql", APPROVAL),
    ("redis-cli SET k v", APPROVAL),
    ("redis-cli --lru-test 1000", APPROVAL),
    ("redis-cli --cluster fix 10.0.0.1:6379", APPROVAL),
    ("psql -c 'DROP DATABASE test'", denied("sql.drop-database")),
    ("psql -c '\\! rm -rf /'", denied("shell.rm-root")),
    ("mysql -e 'SELECT 1 \\! rm -rf /'", denied("shell.rm-root")),
    ("mysql -e 'system rm -rf /'", denied("shell.rm-root")),
    ("mysql -e \"SELECT LOAD_FILE('/etc/shadow')\"", denied("sql.file-access")),
    ("echo 'DROP TABLE t' | psql", denied("shell.pipe-to-interpreter")),
    ("mysql < /tmp/x.sql", denied("shell.pipe-to-interpreter")),
    ('psql -c "$SQL"', denied("shell.dynamic-command")),
    ("redis-cli FLUSHALL", denied("redis.flushall")),
    ("redis-cli --eval /tmp/x.lua", denied("redis.scripting")),
    ("redis-cli --rdb /tmp/dump.rdb", denied("redis.scripting")),
    ("redis-cli --pipe < /tmp/cmds", denied("redis.scripting")),
    ("redis-cli $CMD", denied("shell.dynamic-command")),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_database_clients(command: str, expected: str) -> None:
    check(command, expected)
