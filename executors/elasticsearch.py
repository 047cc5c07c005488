"""``elasticsearch``: search, count and get on Elasticsearch or OpenSearch through elasticsearch-py.

The spec's task, unchanged::

    {"type": "elasticsearch", "params": {"operation": "search", "index": "app-logs-*",
        "query": {"bool": {"must": [{"range": {"@timestamp": {"gte": "now-1h"}}}, ...]}}}}

``params``: ``operation`` (``search`` — the default —, ``count`` or ``get``), ``index`` (a name,
pattern or comma list; default: the connection's ``default_index``, else every index), ``query``
(Query DSL; date math such as ``now-1h`` is the server's), and for ``search`` ``size``, ``from``,
``sort``, ``aggs``/``aggregations``, ``_source``, ``track_total_hits``; for ``get`` ``id``.
Hits and aggregations come back as ``data``; ``size`` is capped at the environment's ``max_rows``.
The task's remaining time is both the client's request timeout and the search's server-side
``timeout``.

Connection settings (type ``elasticsearch``): ``hosts`` (a URL or a list) or ``url``; ``flavor``
(``elasticsearch``, the default, or ``opensearch``); ``username`` + ``password``, ``api_key`` or
``bearer_token``; ``verify_certs``, ``ca_certs``; ``default_index``; ``max_retries`` (default 0:
the deadline is the task's).

OpenSearch speaks the same search/count/get API, but elasticsearch-py 8+ sends the media type
``application/vnd.elasticsearch+json; compatible-with=N`` (which OpenSearch refuses with 406) and
refuses servers that do not announce themselves as Elasticsearch. The ``opensearch`` flavour uses a
transport node that sends plain ``application/json`` and accepts the server as compatible: the
client's API, errors and serialisation are otherwise untouched.
"""

from __future__ import annotations

from typing import Any, Literal

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, HttpHeaders, TlsError, TransportError, Urllib3HttpNode
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import ApiError, Elasticsearch, UnsupportedProductError
from pydantic import BaseModel, ConfigDict, Field

from contract import TaskResult, TaskSpec
from executors._base import Executor, RunContext
from executors._config import Connection
from executors._errors import (
    AuthenticationFailed,
    BackendUnavailable,
    ConfigurationError,
    ExecutorError,
    InvalidTask,
    NotFound,
    PermissionDenied,
    QueryFailed,
    TaskTimedOut,
)
from executors._pool import PerConnection

Flavor = Literal["elasticsearch", "opensearch"]
_FLAVORS = ("elasticsearch", "opensearch")
#: Time kept back from the server-side search timeout so the reply still arrives before ours.
_SERVER_TIMEOUT_MARGIN = 0.2


class ElasticsearchParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    connection: str | None = None
    operation: Literal["search", "count", "get"] = "search"
    index: str | None = Field(default=None, min_length=1, max_length=4096)
    query: dict[str, Any] | None = None
    size: int | None = Field(default=None, ge=0)
    from_: int | None = Field(default=None, alias="from", ge=0)
    sort: list[Any] | dict[str, Any] | str | None = None
    aggs: dict[str, Any] | None = None
    aggregations: dict[str, Any] | None = None
    source: bool | list[str] | str | dict[str, Any] | None = Field(default=None, alias="_source")
    track_total_hits: bool | int | None = None
    id: str | None = Field(default=None, min_length=1, max_length=512)


class OpenSearchNode(Urllib3HttpNode):
    """A urllib3 node for OpenSearch: plain JSON media types, and the server taken as compatible.

    elasticsearch-py rewrites ``Accept``/``Content-Type`` to its versioned ``vnd.elasticsearch``
    media type before the transport sees the request, and checks every 2xx reply for the
    ``X-Elastic-Product: Elasticsearch`` header; this node undoes the first and supplies the
    second, which is the whole difference between the two servers for the APIs we call.
    """

    def perform_request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> Any:  # elastic_transport's NodeApiResponse, not exported by the package
        if headers:
            headers = HttpHeaders(headers)
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value and "vnd.elasticsearch+" in value:
                    headers[name] = value.split(";", 1)[0].replace("vnd.elasticsearch+", "")
        response = super().perform_request(method, target, body=body, headers=headers, request_timeout=request_timeout)
        if 200 <= response.meta.status < 300 and "x-elastic-product" not in response.meta.headers:
            reply_headers = HttpHeaders(response.meta.headers)
            reply_headers["x-elastic-product"] = "Elasticsearch"
            response.meta.headers = reply_headers
        return response


class ElasticsearchExecutor(Executor):
    type = "elasticsearch"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._clients: PerConnection[tuple[Elasticsearch, str]] = PerConnection(lambda cached: cached[0].close())

    def validate(self, spec: TaskSpec) -> None:
        params: ElasticsearchParams = self.params(ElasticsearchParams, spec)
        if params.operation == "get" and (not params.id or not params.index):
            raise InvalidTask("an elasticsearch get needs params.index (one index) and params.id")

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        params: ElasticsearchParams = self.params(ElasticsearchParams, spec)
        connection = ctx.connection()
        client, where = self._client(connection)
        index = params.index or connection.get("default_index") or None
        remaining = max(ctx.remaining(), 0.001)
        bound = client.options(request_timeout=remaining)
        try:
            if params.operation == "get":
                return self._get(bound, params, ctx)
            if params.operation == "count":
                reply = bound.count(index=index, query=params.query)
                return ctx.result(data={"count": reply["count"], "index": index})
            return self._search(bound, index, params, ctx, remaining)
        except ConnectionTimeout as exc:
            raise TaskTimedOut(f"{where} did not answer within the task's {ctx.timeout:g} s timeout") from exc
        except (TransportConnectionError, TlsError) as exc:
            raise BackendUnavailable(f"cannot reach {where} (connection {connection.name!r}): {exc.message}") from exc
        except UnsupportedProductError as exc:
            raise ConfigurationError(
                f"{where} does not say it is Elasticsearch; if it is OpenSearch, set flavor: opensearch "
                f"on connection {connection.name!r}"
            ) from exc
        except ApiError as exc:
            raise _translate(exc, where, index, connection.name) from exc
        except TransportError as exc:
            raise BackendUnavailable(f"{where}: {exc}") from exc

    def _search(
        self, client: Elasticsearch, index: str | None, params: ElasticsearchParams, ctx: RunContext, remaining: float
    ) -> TaskResult:
        max_rows = ctx.limits.max_rows
        size = params.size
        capped = size is not None and size > max_rows
        body: dict[str, Any] = {
            "query": params.query,
            "size": min(size, max_rows) if size is not None else None,
            "from_": params.from_,
            "sort": params.sort,
            "aggs": params.aggs or params.aggregations,
            "source": params.source,
            "track_total_hits": params.track_total_hits,
        }
        server_timeout_ms = max(1, int((remaining - _SERVER_TIMEOUT_MARGIN) * 1000))
        reply = client.search(
            index=index, timeout=f"{server_timeout_ms}ms", **{k: v for k, v in body.items() if v is not None}
        ).body
        hits_block = reply.get("hits") or {}
        hits = [_hit(hit) for hit in hits_block.get("hits", [])]
        total = hits_block.get("total")
        if isinstance(total, int):  # Elasticsearch 6 and rest_total_hits_as_int
            total = {"value": total, "relation": "eq"}
        data: dict[str, Any] = {
            "index": index,
            "took_ms": reply.get("took"),
            "timed_out": bool(reply.get("timed_out")),
            "total": total,
            "hits": hits,
        }
        if "aggregations" in reply:
            data["aggregations"] = reply["aggregations"]
        result = ctx.result(data=data)
        if capped and total is not None and total.get("value", 0) > len(hits):
            result.truncated = True
            result.original_rows = min(size or 0, int(total["value"]))
            result.notes.append(f"size {size} capped at the environment's max_rows ({max_rows})")
        if data["timed_out"]:
            result.notes.append("the search hit its server-side timeout: hits and aggregations are partial")
        return result

    def _get(self, client: Elasticsearch, params: ElasticsearchParams, ctx: RunContext) -> TaskResult:
        assert params.index is not None and params.id is not None  # checked by validate
        source = params.source if not isinstance(params.source, dict) else None  # a get takes no includes map
        reply = client.get(index=params.index, id=params.id, source=source).body
        return ctx.result(data=_hit(reply))

    def _client(self, connection: Connection) -> tuple[Elasticsearch, str]:
        return self._clients.get(connection.name, lambda: _make_client(connection))

    def close(self) -> None:
        self._clients.close()


def _make_client(connection: Connection) -> tuple[Elasticsearch, str]:
    settings = dict(connection.settings)
    hosts = settings.get("hosts") or settings.get("url")
    if not hosts:
        raise ConfigurationError(f"elasticsearch connection {connection.name!r} needs hosts (or url)")
    if isinstance(hosts, str):
        hosts = [hosts]
    flavor = settings.get("flavor", "elasticsearch")
    if flavor not in _FLAVORS:
        raise ConfigurationError(
            f"elasticsearch connection {connection.name!r}: flavor {flavor!r} is not one of {', '.join(_FLAVORS)}"
        )
    kwargs: dict[str, Any] = {
        "max_retries": int(settings.get("max_retries", 0)),
        "retry_on_timeout": False,
    }
    if settings.get("username"):
        kwargs["basic_auth"] = (settings["username"], settings.get("password") or "")
    if settings.get("api_key"):
        kwargs["api_key"] = settings["api_key"]
    if settings.get("bearer_token"):
        kwargs["bearer_auth"] = settings["bearer_token"]
    if "verify_certs" in settings:
        kwargs["verify_certs"] = bool(settings["verify_certs"])
    if settings.get("ca_certs"):
        kwargs["ca_certs"] = settings["ca_certs"]
    if flavor == "opensearch":
        kwargs["node_class"] = OpenSearchNode
    where = f"{'OpenSearch' if flavor == 'opensearch' else 'Elasticsearch'} at {', '.join(hosts)}"
    try:
        return Elasticsearch(hosts, **kwargs), where
    except ValueError as exc:
        raise ConfigurationError(f"elasticsearch connection {connection.name!r}: {exc}") from exc


def _hit(hit: dict[str, Any]) -> dict[str, Any]:
    """A hit or a get reply, keeping what callers use (and dropping ``_type``, ``_seq_no``...)."""
    keys = ("_index", "_id", "_score", "_source", "fields", "sort", "highlight")
    kept = {key: hit[key] for key in keys if key in hit}
    if "found" in hit:
        kept["found"] = hit["found"]
    return kept


def _translate(exc: ApiError, where: str, index: str | None, connection: str) -> ExecutorError | ConfigurationError:
    status = exc.meta.status
    reason = _reason(exc)
    if status == 401:
        return AuthenticationFailed(f"{where} rejected the credentials: {reason}")
    if status == 403:
        return PermissionDenied(f"{where} refused the request: {reason}")
    if status == 404:
        body = exc.body if isinstance(exc.body, dict) else {}
        if body.get("found") is False:
            return NotFound(f"document {body.get('_id')!r} not found in index {body.get('_index')!r}")
        return NotFound(f"{reason} (index {index!r})" if index else reason)
    if status == 408 or status == 504:
        return TaskTimedOut(f"{where} timed out: {reason}")
    if status == 406 and "compatible-with" in reason:
        return ConfigurationError(
            f"{where} refused elasticsearch-py's versioned media type ({reason}); if it is OpenSearch, "
            f"set flavor: opensearch on connection {connection!r}"
        )
    if status in (400, 405, 406, 422) or (status == 500 and "search_phase_execution_exception" in reason):
        return QueryFailed(f"{where} rejected the request: {reason}")
    if status >= 500:
        return BackendUnavailable(f"{where} answered {status}: {reason}")
    return QueryFailed(f"{where} answered {status}: {reason}")


def _reason(exc: ApiError) -> str:
    """The server's own words: ``type: reason`` of the error and of its root cause."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}".rstrip(": ")
        causes = error.get("root_cause") or []
        if causes and isinstance(causes[0], dict):
            cause = causes[0]
            cause_text = f"{cause.get('type')}: {cause.get('reason')}"
            if cause_text not in text:
                text += f" (caused by {cause_text})"
        return text
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return str(exc.message)
