"""Who may call the server: the :class:`Caller` of each request, decided from the request's
headers (key, scope, rate) by :func:`admitter` for the :class:`~lookalike.serve.guard.Gate`
before any body is read, and handed to the routes by the :func:`caller_of` dependency
(architecture review 56, M8c: this was half of :mod:`lookalike.serve.service`, while the
guard's docstring claimed it). The keys' scopes are read by the
:class:`~lookalike.serve.service.Service`, which remembers them a while.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..errors import LookalikeError
from ..store.values import KeyScope
from . import problems
from .guard import PICTURE_COST, ApiProblem, caller_address, grants
from .problems import ServerCode
from .service import Service


@dataclass(frozen=True)
class Caller:
    """Who made a request: ``identity`` for the rate limit, ``scope`` of their key (None for
    an open search without one)."""

    identity: str
    scope: KeyScope | None

    @property
    def admin(self) -> bool:
        return self.scope is KeyScope.admin


_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A key from `lookalike keys create`.")
_bearer = HTTPBearer(auto_error=False, description="The same key as `Authorization: Bearer KEY`.")


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def identify(service: Service, needed: KeyScope, given: str | None, address: str, cost: float = 1.0) -> Caller:
    """The caller once their key grants ``needed`` and the rate limit lets them in (a request
    taking ``cost`` requests' worth); else the refusal (401, 403, 429, or 503 while the
    library is not open). Reads the database (at most every :attr:`Service.KEY_TTL` seconds
    per key)."""
    if given:
        if not service.vouched(given):
            # a key never seen valid costs a database read: the caller's address pays for it,
            # so made-up keys cannot buy reads (nor push real keys out of memory) for free; a
            # valid key's refresh every KEY_TTL is on the house (keys behind one NAT share an address)
            _rate(service, "addr:" + address)
        held = service.scope_of(given)
        if held is None:
            raise ApiProblem(401, ServerCode.unauthorized, "this API key is not valid (unknown or revoked)",
                             {"WWW-Authenticate": "Bearer"})
        if not grants(held, needed):
            raise ApiProblem(403, ServerCode.forbidden, f"this key's scope is {held.value}; this needs {needed.value}")
        caller = Caller("key:" + given[:10], held)
    elif needed is KeyScope.search and service.settings.open_search:
        caller = Caller("addr:" + address, None)
    else:
        raise ApiProblem(401, ServerCode.unauthorized, f"this needs an API key with scope {needed.value} "
                                              "(header X-API-Key or Authorization: Bearer)",
                         {"WWW-Authenticate": "Bearer"})
    _rate(service, caller.identity, cost)
    return caller


def _rate(service: Service, identity: str, cost: float = 1.0) -> None:
    """``cost`` requests of ``identity``'s rate, else 429 with when to try again."""
    wait = service.limit.take(identity, cost=cost)
    if wait > 0:
        raise ApiProblem(429, ServerCode.rate_limited, f"too many requests; try again in {wait:.1f} s",
                         {"Retry-After": str(max(1, round(wait + 0.5)))})


def caller_of(scope: KeyScope) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the :class:`Caller`, once their key grants ``scope``. The :class:`Gate`
    has decided that from the headers before FastAPI read the body; the key parameters stay
    so that OpenAPI documents them."""

    async def check(request: Request, key: Annotated[str | None, Depends(_api_key)] = None,
                    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None) -> Caller:
        # async: the gate's answer is read without taking a worker thread (a hop of its own
        # for every request); only an app without the gate reads the key's scope in one
        admitted = getattr(request.state, "caller", None)
        if isinstance(admitted, Caller):
            return admitted
        import anyio

        given = key or (bearer.credentials if bearer is not None else None)
        address = request.client.host if request.client else "?"
        return await anyio.to_thread.run_sync(identify, service_of(request), scope, given, address)

    # what the gate reads off each route
    check.needed_scope = scope  # type: ignore[attr-defined]
    return check


def needed_scopes(app: FastAPI) -> list[tuple[Any, KeyScope, float]]:
    """Every route that takes a caller, with the scope its key needs and what it costs of
    the caller's rate (a picture: :data:`PICTURE_COST`)."""
    from fastapi.dependencies.models import Dependant
    from fastapi.routing import APIRoute

    def needed(dependant: Dependant) -> KeyScope | None:
        for dep in dependant.dependencies:
            found = getattr(dep.call, "needed_scope", None) or needed(dep)
            if found is not None:
                return found
        return None

    out = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            scope = needed(route.dependant)
            if scope is not None:
                out.append((route, scope, PICTURE_COST if "pictures" in route.tags else 1.0))
    return out


def admitter(app: FastAPI, service: Service) -> Callable[[MutableMapping[str, Any]], Awaitable[Caller | None]]:
    """The gate's question, answered from the request's headers: who is calling this route,
    and may they (see :class:`Gate`)."""
    from starlette.datastructures import Headers
    from starlette.routing import Match

    table: list[tuple[Any, KeyScope, float]] = []

    async def admit(scope: MutableMapping[str, Any]) -> Caller | None:
        import anyio

        if not table:
            table.extend(needed_scopes(app))
        needed, cost = next(((s, c) for route, s, c in table if route.matches(scope)[0] is Match.FULL), (None, 1.0))
        if needed is None:
            return None  # health, the OpenAPI document, an unknown path or method: no key
        headers = Headers(scope=scope)
        given = headers.get("x-api-key")
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if not given and scheme.lower() == "bearer" and credentials.strip():
            given = credentials.strip()
        client = scope.get("client")
        address = caller_address(str(client[0])) if client else "?"
        if not given or service.knows(given):  # no database to ask: decided here, without a thread
            return identify(service, needed, given, address, cost)
        try:
            return await anyio.to_thread.run_sync(identify, service, needed, given, address, cost)
        except LookalikeError as err:  # the key could not be read (a busy or broken database)
            raise ApiProblem(*problems.answer_of(err, service.private())) from err

    return admit
