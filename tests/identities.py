"""The bearer tokens of the test gateways and the identities they stand for (``CLOUD_AGENT_TOKENS``)."""

VIEWER, OPERATOR, APPROVER = "viewer-token-3f9a2c", "operator-token-8b1d7e", "approver-token-5c6e0a"
TOKENS = f"ada:viewer:{VIEWER},ops:operator:{OPERATOR},boss:approver:{APPROVER}"
