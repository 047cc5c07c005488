"""What a metric measures, read from its name: the names real exporters give.

The names are those Debian's Prometheus node, PostgreSQL, MariaDB/MySQL and Redis exporters served
on this project's machine (2026-12-06), and cAdvisor's and common client libraries'. A fault type
is claimed from the kinds of the metrics that moved, so a disk that fills up must read as ``disk``
and a NIC's error counter as ``network``, not as the service's errors.
"""

import pytest

from models.domain._types import MetricKind, metric_kind

REAL_NAMES: dict[str, MetricKind] = {
    # node_exporter
    "node_cpu_seconds_total": MetricKind.CPU,
    "node_load1": MetricKind.CPU,
    "node_memory_MemAvailable_bytes": MetricKind.MEMORY,
    "node_vmstat_pswpin": MetricKind.MEMORY,
    "node_vmstat_pgmajfault": MetricKind.MEMORY,
    "node_filesystem_avail_bytes": MetricKind.DISK,
    "node_filesystem_device_error": MetricKind.DISK,
    "node_disk_io_time_seconds_total": MetricKind.DISK,
    "node_pressure_io_waiting_seconds_total": MetricKind.DISK,
    "node_procs_blocked": MetricKind.DISK,
    "node_network_receive_errs_total": MetricKind.NETWORK,
    "node_netstat_Tcp_RetransSegs": MetricKind.NETWORK,
    "node_netstat_Tcp_InErrs": MetricKind.NETWORK,
    "node_softnet_dropped_total": MetricKind.NETWORK,
    # postgres_exporter
    "pg_stat_activity_count": MetricKind.CONNECTIONS,
    "pg_stat_database_numbackends": MetricKind.CONNECTIONS,
    "pg_stat_activity_max_tx_duration": MetricKind.SLOW_QUERIES,
    "pg_stat_database_deadlocks": MetricKind.SLOW_QUERIES,
    "pg_stat_database_blks_hit": MetricKind.CACHE_HITS,
    # mysqld_exporter
    "mysql_global_status_threads_connected": MetricKind.CONNECTIONS,
    "mysql_global_status_threads_running": MetricKind.CONNECTIONS,
    "mysql_global_status_slow_queries": MetricKind.SLOW_QUERIES,
    "pg_stat_statements_mean_exec_time_seconds": MetricKind.SLOW_QUERIES,
    "mysql_global_status_innodb_row_lock_waits": MetricKind.SLOW_QUERIES,
    "mysql_global_status_table_locks_waited": MetricKind.SLOW_QUERIES,
    "mysql_global_status_questions": MetricKind.TRAFFIC,
    # redis_exporter
    "redis_connected_clients": MetricKind.CONNECTIONS,
    "redis_evicted_keys_total": MetricKind.EVICTIONS,
    "redis_keyspace_hits_total": MetricKind.CACHE_HITS,
    "redis_memory_used_bytes": MetricKind.MEMORY,
    "redis_commands_processed_total": MetricKind.TRAFFIC,
    # cAdvisor, client libraries
    "container_cpu_cfs_throttled_seconds_total": MetricKind.CPU,
    "container_memory_working_set_bytes": MetricKind.MEMORY,
    "container_fs_writes_bytes_total": MetricKind.DISK,
    "container_network_receive_errors_total": MetricKind.NETWORK,
    "go_gc_duration_seconds": MetricKind.MEMORY,
    "jvm_gc_pause_seconds": MetricKind.MEMORY,
    "hikaricp_connections_pending": MetricKind.CONNECTIONS,
    "http_request_duration_seconds_bucket": MetricKind.LATENCY,
    "http_requests_total": MetricKind.TRAFFIC,
    "http_server_requests_seconds_sum": MetricKind.LATENCY,
    "http_server_requests_seconds_max": MetricKind.LATENCY,
    "http_server_requests_seconds_count": MetricKind.TRAFFIC,
    "grpc_server_handling_seconds_bucket": MetricKind.LATENCY,
    "envoy_cluster_upstream_rq_time_bucket": MetricKind.LATENCY,
    "http_server_errors_total": MetricKind.ERRORS,
    # Envoy's upstream cluster: a caller whose connects fail has errors; its callee is down
    "envoy_cluster_upstream_cx_connect_fail": MetricKind.ERRORS,
    "envoy_cluster_upstream_cx_connect_timeout": MetricKind.ERRORS,
    # ... but refusals at a limit are a connection count that ran out
    "hikaricp_connections_timeout_total": MetricKind.CONNECTIONS,
    "redis_rejected_connections_total": MetricKind.CONNECTIONS,
    "mysql_global_status_connection_errors_max_connections": MetricKind.CONNECTIONS,
    # kube-state-metrics: a container that restarts was killed or crashed, whatever the name's "status"
    "kube_pod_container_status_restarts_total": MetricKind.RESTARTS,
}


@pytest.mark.parametrize(("name", "kind"), REAL_NAMES.items())
def test_a_real_exporters_metric_reads_as_what_it_measures(name: str, kind: MetricKind) -> None:
    assert metric_kind(name) is kind


def test_an_unknown_name_is_other() -> None:
    assert metric_kind("kube_pod_status_phase") is MetricKind.OTHER
