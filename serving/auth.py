"""Bearer-token checks shared by every transport."""

from __future__ import annotations

import hmac

# Health and metadata stay open: load balancers and probes must reach them without
# credentials. Named as the V2 protocol names them (gRPC method names).
PUBLIC_METHODS = frozenset({"ServerLive", "ServerReady", "ModelReady", "ServerMetadata"})


class TokenCheck:
    """Accepts ``Bearer <token>`` for one configured token, in constant time."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def enabled(self) -> bool:
        """True when a token is required."""
        return self._token is not None

    def allows(self, method: str, authorization: str | None) -> bool:
        """Whether a call of ``method`` with this Authorization value may proceed."""
        if self._token is None or method in PUBLIC_METHODS:
            return True
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        # compare_digest: the time taken must not reveal how much matched.
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self._token)


DENIED = "missing or invalid bearer token (send 'authorization: Bearer <token>')"
