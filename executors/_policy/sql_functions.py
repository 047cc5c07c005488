"""The functions a ``read`` SQL statement may call, per dialect: an allow-list.

A function call in a SELECT is where a query changes the server without looking like a change
(``pg_terminate_backend``, ``set_config``, ``dblink_exec``, ``query_to_xml`` running SQL from a
string, a user's function that writes). Listing what is known to write is a race against every
release and every extension; listing what only reads is not. So a call to anything not named here
makes the statement ``write`` (it then needs an approval) — including user-defined functions,
which the analyser cannot see into.

Names are compared in lower case. Besides functions, the lists hold the type names that take a
parenthesis (``numeric(10, 2)``, ``DateTime64(3)``), which the lexer cannot tell from a call.
Deliberately absent, although they only read: functions that list or read server files
(``pg_ls_logdir``, ``pg_read_file``: see ``FILE_FUNCTIONS`` in ``sql``), ones that assign a
transaction id (``txid_current``) and ones that run SQL text (``query_to_xml``, ``dblink``).
"""

from __future__ import annotations

from typing import Literal

Dialect = Literal["postgres", "mysql", "clickhouse"]


def _names(text: str) -> frozenset[str]:
    return frozenset(word.lower() for word in text.split())


# Keywords the lexer reports before a parenthesis that are syntax, not calls: ``IN (``, ``OVER (``,
# ``AS (`` in a CTE, ``USING (``, ``VALUES (``, ``ARRAY(subquery)``, ``ROW(...)``.
SYNTAX_BEFORE_PARENTHESIS = _names(
    """
    in exists any all some over filter group as values using on and or not from join where having
    select lateral row array when then else case is like ilike between escape union intersect except
    distinct materialized rollup cube sets by limit offset with returning partition window prewhere
    global tuple order
    """
)

# SQL-standard and widely shared functions (aggregates, strings, numbers, dates, conditionals).
_COMMON = _names(
    """
    count sum avg min max stddev stddev_pop stddev_samp variance var_pop var_samp
    coalesce nullif greatest least cast convert extract position substring substr trim ltrim rtrim
    upper lower length char_length character_length octet_length bit_length concat concat_ws
    replace left right lpad rpad repeat reverse strpos instr locate ascii chr char
    abs ceil ceiling floor round trunc truncate mod power pow sqrt exp ln log log10 log2 sign pi
    sin cos tan asin acos atan atan2 degrees radians random rand
    now current_date current_time current_timestamp localtime localtimestamp
    date time timestamp interval year month day hour minute second week quarter
    numeric decimal varchar character char varying bit float double int integer bigint smallint
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
    grouping if ifnull isnull md5 sha1 sha2
    """
)

POSTGRES_READ_FUNCTIONS = _COMMON | _names(
    """
    bool_and bool_or every string_agg array_agg json_agg jsonb_agg json_object_agg jsonb_object_agg
    percentile_cont percentile_disc mode corr covar_pop covar_samp regr_slope regr_intercept
    bit_and bit_or bit_xor
    date_trunc date_part date_bin age to_char to_date to_timestamp to_number make_interval
    make_date make_time make_timestamp make_timestamptz justify_days justify_hours justify_interval
    clock_timestamp statement_timestamp transaction_timestamp timeofday isfinite
    initcap split_part regexp_replace regexp_match regexp_matches regexp_split_to_array
    regexp_split_to_table regexp_like regexp_count regexp_substr regexp_instr format quote_ident
    quote_literal quote_nullable translate to_hex encode decode starts_with overlay btrim
    string_to_array array_to_string array_length array_upper array_lower cardinality unnest
    array_position array_positions array_remove array_cat array_append array_prepend
    generate_series generate_subscripts width_bucket scale div cbrt factorial gcd lcm
    json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb
    row_to_json array_to_json json_array_length jsonb_array_length json_extract_path
    jsonb_extract_path json_extract_path_text jsonb_extract_path_text json_each jsonb_each
    json_each_text jsonb_each_text json_object_keys jsonb_object_keys json_typeof jsonb_typeof
    jsonb_pretty jsonb_path_query jsonb_path_exists json_array_elements jsonb_array_elements
    json_array_elements_text jsonb_array_elements_text
    timestamptz timetz float4 float8 int2 int4 int8 bpchar
    version current_setting current_database current_schema current_schemas current_user
    session_user current_catalog inet_server_addr inet_server_port inet_client_addr
    inet_client_port host masklen network family
    pg_backend_pid pg_blocking_pids pg_safe_snapshot_blocking_pids pg_postmaster_start_time
    pg_conf_load_time pg_is_in_recovery pg_is_wal_replay_paused pg_get_wal_replay_pause_state
    pg_last_wal_receive_lsn pg_last_wal_replay_lsn pg_last_xact_replay_timestamp
    pg_current_wal_lsn pg_current_wal_insert_lsn pg_current_wal_flush_lsn pg_wal_lsn_diff
    pg_size_pretty pg_size_bytes pg_database_size pg_relation_size pg_total_relation_size
    pg_table_size pg_indexes_size pg_tablespace_size pg_column_size pg_relation_filenode
    pg_typeof pg_get_userbyid pg_get_indexdef pg_get_viewdef pg_get_constraintdef pg_get_expr
    pg_get_triggerdef pg_get_functiondef pg_get_function_arguments pg_get_function_result
    pg_get_serial_sequence pg_encoding_to_char pg_table_is_visible pg_function_is_visible
    pg_type_is_visible pg_jit_available pg_trigger_depth pg_sleep pg_sleep_for
    pg_xact_commit_timestamp pg_stat_get_backend_pid pg_tablespace_location pg_describe_object
    pg_identify_object pg_last_committed_xact pg_control_checkpoint pg_control_system
    pg_control_recovery pg_control_init pg_stat_statements pg_locks_count
    has_table_privilege has_schema_privilege has_database_privilege has_column_privilege
    has_function_privilege has_sequence_privilege pg_has_role obj_description col_description
    shobj_description format_type to_regclass to_regtype to_regproc to_regnamespace to_regrole
    """
)

MYSQL_READ_FUNCTIONS = _COMMON | _names(
    """
    group_concat bit_and bit_or bit_xor std json_arrayagg json_objectagg
    curdate curtime sysdate utc_date utc_time utc_timestamp unix_timestamp from_unixtime
    date_format date_add date_sub adddate subdate addtime subtime datediff timediff timestampdiff
    timestampadd dayname dayofmonth dayofweek dayofyear monthname weekday weekofyear yearweek
    last_day makedate maketime sec_to_time time_to_sec to_days to_seconds from_days str_to_date
    get_format period_add period_diff microsecond time_format convert_tz
    format field find_in_set elt make_set export_set hex unhex bin oct conv soundex space
    substring_index mid lcase ucase quote regexp_replace regexp_instr regexp_substr regexp_like
    strcmp crc32 inet_aton inet_ntoa inet6_aton inet6_ntoa is_ipv4 is_ipv6 uuid uuid_short
    cot crc32c
    json_extract json_unquote json_object json_array json_contains json_contains_path json_keys
    json_length json_type json_valid json_depth json_search json_value json_quote json_pretty
    signed unsigned binary nchar
    database schema user current_user session_user system_user version connection_id
    found_rows row_count last_insert_id charset collation coercibility
    is_free_lock is_used_lock sleep
    """
)

# ClickHouse names (compared in lower case); aggregate combinators are stripped first.
CLICKHOUSE_READ_FUNCTIONS = _COMMON | _names(
    """
    any anylast anyheavy argmin argmax uniq uniqexact uniqcombined uniqhll12 uniqtheta
    quantile quantiles quantileexact quantilesexact quantiletdigest quantilestdigest quantiletiming
    quantilestiming quantiledeterministic median medianexact topk topkweighted grouparray
    groupuniqarray grouparraysample groupbitand groupbitor groupbitxor sumwithoverflow summap
    minmap maxmap histogram simplelinearregression corr covarpop covarsamp varpop varsamp
    stddevpop stddevsamp entropy skewpop skewsamp kurtpop kurtsamp
    today yesterday now64 todate todate32 todatetime todatetime64 todateornull todatetimeornull
    todatetime64ornull parsedatetimebesteffort parsedatetimebesteffortornull
    parsedatetime64besteffort tostartofsecond tostartofminute tostartoffiveminutes
    tostartoftenminutes tostartoffifteenminutes tostartofhour tostartofday tostartofweek
    tostartofmonth tostartofquarter tostartofyear tostartofinterval totime tounixtimestamp
    tounixtimestamp64milli tounixtimestamp64micro tounixtimestamp64nano fromunixtimestamp
    fromunixtimestamp64milli toyyyymm toyyyymmdd toyyyymmddhhmmss toyear tomonth todayofmonth
    todayofweek tohour tominute tosecond torelativehournum torelativeminutenum
    torelativesecondnum datediff date_diff dateadd datesub addseconds addminutes addhours adddays
    subtractseconds subtractminutes subtracthours subtractdays formatdatetime timezone totimezone
    timeslot tointervalsecond tointervalminute tointervalhour tointervalday
    toint8 toint16 toint32 toint64 touint8 touint16 touint32 touint64 tofloat32 tofloat64
    toint64ornull tofloat64ornull toint64orzero tofloat64orzero todecimal32 todecimal64 tostring
    tofixedstring touuid tobool reinterpretasstring accuratecast accuratecastornull
    intdiv intdivorzero modulo negate roundbankers rounddown
    lowerutf8 upperutf8 lengthutf8 substringutf8 positioncaseinsensitive positionutf8 like
    notlike ilike match multisearchany multimatchany extractall replaceone replaceall
    replaceregexpone replaceregexpall splitbychar splitbystring splitbyregexp arraystringconcat
    startswith endswith empty notempty tolowercase touppercase trimboth trimleft trimright
    base64encode base64decode hex unhex cityhash64 sipHash64 murmurhash3_64 xxhash64
    array arrayjoin arraymap arrayfilter arraycount arraysum arrayavg arraymin arraymax
    arraysort arrayreversesort arraydistinct arrayuniq arrayslice arrayconcat arrayelement
    arrayenumerate arrayreduce arrayzip arrayflatten arraycompact arrayexists arrayall
    arrayfirst arraylast has hasall hasany indexof length empty notempty range
    tuple tupleelement untuple map mapkeys mapvalues mapcontains
    if multiif ifnull nullif isnull isnotnull assumenotnull tonullable coalesce
    jsonextract jsonextractstring jsonextractint jsonextractuint jsonextractfloat jsonextractbool
    jsonextractraw jsonextractkeys jsonextractarrayraw jsonhas jsonlength jsontype
    visitparamextractstring simplejsonextractstring
    formatreadablesize formatreadablequantity formatreadabletimedelta
    version uptime hostname fqdn currentdatabase currentuser timezoneof servertimezone
    getsetting getmacro blocksize rownumberinblock sleep sleepeachrow
    numbers zeros clusterallreplicas
    nullable lowcardinality fixedstring datetime datetime64 date32 string enum8 enum16 uuid
    decimal32 decimal64 decimal128 int8 int16 int32 int64 uint8 uint16 uint32 uint64 float32
    float64 ipv4 ipv6 ipv4numtostring ipv4stringtonum ipv6numtostring
    """
)

# ClickHouse aggregate combinators: ``countIf``, ``sumArray``, ``quantilesOrNull`` are the base
# function, changed in how it aggregates, never in what it touches.
CLICKHOUSE_COMBINATORS = (
    "ifornull",
    "if",
    "array",
    "distinct",
    "ornull",
    "ordefault",
    "state",
    "merge",
    "foreach",
    "resample",
    "simplestate",
    "map",
)

READ_FUNCTIONS: dict[Dialect, frozenset[str]] = {
    "postgres": POSTGRES_READ_FUNCTIONS,
    "mysql": MYSQL_READ_FUNCTIONS,
    "clickhouse": CLICKHOUSE_READ_FUNCTIONS,
}

#: The schema a PostgreSQL built-in lives in; a call qualified with any other may be anyone's.
POSTGRES_CATALOG_SCHEMA = "pg_catalog"


def is_read_function(name: str, dialect: Dialect) -> bool:
    """Whether calling ``name`` (unquoted, unqualified) only reads in ``dialect``."""
    lowered = name.lower()
    allowed = READ_FUNCTIONS[dialect]
    if lowered in allowed:
        return True
    if dialect == "clickhouse":
        for suffix in CLICKHOUSE_COMBINATORS:
            if lowered.endswith(suffix) and len(lowered) > len(suffix):
                return is_read_function(lowered[: -len(suffix)], dialect)
    return False
