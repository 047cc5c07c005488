"""A shop's services as the playbook sees them (a PostgreSQL and a MariaDB database, a Redis
cache, a Kubernetes deployment with a health URL): what the catalog's fixes and verification tasks
are written against in the tests."""

from models import ServiceKind, ServiceTarget, TargetContext

SHOP = TargetContext(
    services={
        "orders-db": ServiceTarget(kind=ServiceKind.DATABASE, engine="postgres", connection="orders"),
        "items-db": ServiceTarget(kind=ServiceKind.DATABASE, engine="mysql", connection="items"),
        "session-cache": ServiceTarget(kind=ServiceKind.CACHE, connection="sessions"),
        "checkout": ServiceTarget(
            namespace="shop", deployment="checkout-v2", health_url="http://checkout/health", replicas=4
        ),
    },
    agent_id="agent-prod-001",
)
