"""Who may call what: bearer tokens with scopes, checked per route.

Modes (``MLGRAPH_AUTH``):

- ``auto`` (default): tokens are required as soon as one exists. A fresh
  install answers everyone until ``mlgraph token create`` makes the first
  token; from then on every route but health, readiness and metrics needs one.
- ``required``: tokens are required even before any exists.
- ``off``: nothing is checked (a trusted network only).

``MLGRAPH_ANONYMOUS_READ=true`` lets requests without a token read; writing
(event intake) needs ``write`` and the dead-letter table ``admin`` whatever it
says. Token checks are cached for a few seconds, so a revocation from another
process takes effect within ``ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from mlgraph.api.tokens import Scope, TokenInfo, Tokens, hash_token

CACHE_TTL_S = 5.0
_CACHE_MAX = 10_000  # remembered token checks; beyond it the cache starts afresh

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token: `Authorization: Bearer mlg_…` (`mlgraph token create`).",
)


class AuthError(Exception):
    """A request that is not authenticated (401) or not allowed (403)."""

    def __init__(self, status: int, message: str, challenge: str = "Bearer") -> None:
        super().__init__(message)
        self.status = status
        self.challenge = challenge


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token, or nobody (``token`` None) where that is allowed."""

    token: TokenInfo | None
    scopes: frozenset[Scope]

    @property
    def name(self) -> str:
        return "anonymous" if self.token is None else self.token.name


EVERYTHING = frozenset(Scope)
ANONYMOUS_READER = Principal(None, frozenset({Scope.READ}))
UNCHECKED = Principal(None, EVERYTHING)


class Authenticator:
    """Checks bearer tokens against the token table, with a short cache."""

    def __init__(
        self,
        tokens: Tokens,
        mode: str = "auto",
        *,
        anonymous_read: bool = False,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self.mode = mode
        self.anonymous_read = anonymous_read
        self.ttl_s = ttl_s
        self._clock = clock
        self._enforced: tuple[bool, float] | None = None
        self._checked: dict[str, tuple[TokenInfo | None, float]] = {}

    def forget(self) -> None:
        """Drop cached answers (after creating or revoking a token in this process)."""
        self._enforced = None
        self._checked.clear()

    async def enforced(self) -> bool:
        if self.mode == "off":
            return False
        if self.mode == "required":
            return True
        now = self._clock()
        if self._enforced is None or self._enforced[1] <= now:
            exists = await run_in_threadpool(self.tokens.any_active)
            self._enforced = (exists, now + self.ttl_s)
        return self._enforced[0]

    async def _verify(self, secret: str) -> TokenInfo | None:
        now = self._clock()
        key = hash_token(secret)  # not the token itself: nothing secret stays in memory
        hit = self._checked.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        info = await run_in_threadpool(self.tokens.verify, secret)
        if len(self._checked) >= _CACHE_MAX:
            self._checked.clear()
        self._checked[key] = (info, now + self.ttl_s)
        return info

    async def authenticate(self, authorization: str | None, scope: Scope) -> Principal:
        """The caller behind an ``Authorization`` header, if allowed ``scope``; else AuthError."""
        if not await self.enforced():
            return UNCHECKED
        if not authorization:
            if scope is Scope.READ and self.anonymous_read:
                return ANONYMOUS_READER
            raise AuthError(
                401,
                f"authentication required: send 'Authorization: Bearer <token>' with a token "
                f"that has the {scope.value!r} scope (`mlgraph token create --scope "
                f"{scope.value}`)",
            )
        kind, _, secret = authorization.strip().partition(" ")
        if kind.lower() != "bearer" or not secret.strip():
            raise AuthError(401, "the Authorization header must be 'Bearer <token>'")
        info = await self._verify(secret.strip())
        if info is None:
            raise AuthError(401, "invalid or revoked API token", 'Bearer error="invalid_token"')
        if scope not in info.scopes:
            has = ", ".join(s.value for s in Scope if s in info.scopes)
            raise AuthError(
                403,
                f"the token {info.name!r} ({info.prefix}…) lacks the {scope.value!r} scope; "
                f"it has: {has}",
                f'Bearer error="insufficient_scope", scope="{scope.value}"',
            )
        return Principal(info, info.scopes)


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A route dependency: the caller must be allowed ``scope``."""

    async def dependency(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    ) -> Principal:
        auth: Authenticator = request.app.state.auth
        principal = await auth.authenticate(request.headers.get("authorization"), scope)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope.value}"
    return dependency


def install(app: FastAPI, authenticator: Authenticator) -> None:
    """Make ``app`` check tokens with ``authenticator`` and answer AuthError as 401/403."""
    app.state.auth = authenticator

    @app.exception_handler(AuthError)
    async def _refused(_request: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc)},
            status_code=exc.status,
            headers={"WWW-Authenticate": exc.challenge},
        )
