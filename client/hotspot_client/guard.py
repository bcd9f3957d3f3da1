"""@guarded: run an async function under a permit for the fixture it works on."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from hotspot_client.errors import InvalidFixtureId
from hotspot_client.permit import Permit
from hotspot_client.permit_client import PermitClient

current_fixture_id: ContextVar[str | None] = ContextVar("hotspot_fixture_id", default=None)
"""The fixture the current request is about; middleware sets it from the path or query."""

current_permit: ContextVar[Permit | None] = ContextVar("hotspot_permit", default=None)
"""The permit a @guarded call holds, so that it can mark_not_sent() and the like."""

P = ParamSpec("P")
T = TypeVar("T")
AsyncFunction = Callable[P, Coroutine[Any, Any, T]]
FixtureIdSource = str | Callable[..., str] | None
"""A parameter's name, a callable given the call's arguments, or None: current_fixture_id."""
FindFixtureId = Callable[[tuple[Any, ...], dict[str, Any]], object]


def guarded(
    client: PermitClient | Callable[[], PermitClient],
    *,
    fixture_id: FixtureIdSource = None,
    max_wait: float | None = None,
) -> Callable[[AsyncFunction[P, T]], AsyncFunction[P, T]]:
    """Wrap every call of an async function in `client.permit(fixture_id, ...)`.

    `client` may be a callable returning the client, for apps that create it at start-up.
    The permit is released as SUCCESS when the function returns and FAILURE when it
    raises, unless the function marks it through `current_permit`.
    """

    def decorate(function: AsyncFunction[P, T]) -> AsyncFunction[P, T]:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"@guarded wraps async functions; {function.__qualname__} is not one")
        find = _fixture_id_finder(function, fixture_id)

        @functools.wraps(function)
        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            found = find(args, kwargs)
            if not isinstance(found, str):
                raise TypeError(
                    f"the fixture id for {function.__qualname__} must be a str, "
                    f"got {type(found).__name__}"
                )
            permits = client if isinstance(client, PermitClient) else client()
            async with permits.permit(found, max_wait=max_wait) as permit:
                token = current_permit.set(permit)
                try:
                    return await function(*args, **kwargs)
                finally:
                    current_permit.reset(token)

        return call

    return decorate


def _fixture_id_finder(function: Callable[..., object], source: FixtureIdSource) -> FindFixtureId:
    name = function.__qualname__
    if source is None:

        def from_context(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
            found = current_fixture_id.get()
            if found is None:
                raise InvalidFixtureId(
                    f"no fixture id for {name}: @guarded reads it from current_fixture_id, "
                    "which is not set in this context (set it, or name a parameter)",
                    field="fixture_id",
                )
            return found

        return from_context
    if callable(source):
        compute = source
        return lambda args, kwargs: compute(*args, **kwargs)
    signature = inspect.signature(function)
    if source not in signature.parameters:
        raise TypeError(f"@guarded(fixture_id={source!r}): {name} has no parameter {source!r}")

    def from_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments[source]

    return from_argument
