"""The simulator's vocabulary: component names, queries and the log lines of each fault."""

from __future__ import annotations

from models.domain._types import FaultType

_APP_NAMES = (
    "frontend",
    "api-gateway",
    "checkout",
    "cart",
    "payment",
    "shipping",
    "catalog",
    "recommendation",
    "ad",
    "email",
    "currency",
    "user",
    "auth",
    "order",
    "inventory",
    "search",
    "review",
    "notification",
    "pricing",
    "billing",
    "profile",
    "media",
    "analytics",
    "loyalty",
    "coupon",
    "wishlist",
    "tax",
    "fraud",
    "ledger",
    "geo",
    "quote",
    "invoice",
    "returns",
    "rating",
    "feed",
    "chat",
    "upload",
    "report",
    "audit",
    "scheduler",
    "webhook",
    "export",
    "import",
    "promo",
    "gift",
    "stock",
    "vendor",
)
_DB_NAMES = (
    "orders-db",
    "users-db",
    "inventory-db",
    "payments-db",
    "catalog-db",
    "events-db",
    "ledger-db",
    "billing-db",
)
_CACHE_NAMES = ("session-cache", "catalog-cache", "redis-main", "price-cache", "token-cache")
_NAMESPACE = "production"

_SLOW_QUERIES = (
    "SELECT o.* FROM orders o WHERE o.customer_id = $1 ORDER BY o.created_at DESC",
    "SELECT * FROM order_items WHERE order_id = $1",
    "UPDATE inventory SET reserved = reserved + 1 WHERE sku = $1",
    "SELECT count(*) FROM payments WHERE status = 'pending' AND merchant_id = $1",
)
_ANALYTICS_QUERY = "SELECT date_trunc('day', created_at), count(*) FROM events GROUP BY 1 ORDER BY 1"
_GENERIC_ERRORS = (
    "request failed: internal error",
    "unexpected EOF while reading request body",
    "validation failed for request: missing field 'id'",
    "handler returned 500: context canceled",
)
_OWN_ERRORS: dict[FaultType, tuple[str, ...]] = {
    FaultType.CPU: ("request timed out after 5000ms: worker pool saturated", "event loop blocked for 1200ms"),
    FaultType.MEMORY: ("java.lang.OutOfMemoryError: Java heap space", "GC overhead limit exceeded"),
    FaultType.DISK: ("write failed: No space left on device", "fsync took 4.2s on /var/lib/data"),
    FaultType.LATENCY: ("slow response served in 1450ms",),
    FaultType.NETWORK_ERRORS: ("read tcp: connection reset by peer", "i/o timeout on outbound connection"),
    FaultType.DB_SLOW_QUERY: ("duration: 12873 ms statement: " + _SLOW_QUERIES[0],),
    FaultType.DB_POOL_EXHAUSTED: ("FATAL: sorry, too many clients already", "Too many connections"),
    FaultType.DEPENDENCY_DOWN: (),
    FaultType.CACHE: ("OOM command not allowed when used memory > 'maxmemory'",),
    FaultType.BAD_DEPLOY: (
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "NullPointerException at OrderHandler.handle(OrderHandler.java:42)",
        "unknown field 'currency_code' in response from config",
    ),
}
_CALLER_ERRORS: dict[str, tuple[str, ...]] = {
    "generic": ("upstream {callee} returned 503", "call to {callee} failed: status 500"),
    "down": ("call to {callee} failed: connection refused", "dial tcp {callee}:8080: no route to host"),
    "slow": ("timeout waiting for {callee} after 3000ms", "deadline exceeded calling {callee}"),
    "pool": (
        "could not obtain connection from pool for {callee} within 30000ms",
        "connection pool exhausted ({callee})",
    ),
    "network": ("connection reset by peer while calling {callee}", "{callee}: broken pipe"),
}
