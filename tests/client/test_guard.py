"""@guarded against a real permit server: where the fixture id comes from, and the outcomes."""

from __future__ import annotations

from typing import Any

import pytest

from hotspot.v1 import permits_pb2 as pb
from hotspot_client import InvalidFixtureId, PermitClient
from hotspot_client.guard import current_fixture_id, current_permit, guarded
from tests.client.conftest import StartServer, recorded_client
from tests.integration.test_grpc_permits import stats_for


async def test_the_fixture_id_from_a_named_argument(start_server: StartServer) -> None:
    h = await start_server(limit=5, window=2)
    client, recorder = recorded_client(h.target)

    @guarded(client, fixture_id="fixture", max_wait=1.0)
    async def fetch_odds(sportsbook: str, fixture: str = "default-fixture") -> str:
        permit = current_permit.get()
        assert permit is not None
        assert (await stats_for(h, permit.fixture_id)).in_flight == 1  # held during the call
        return f"{sportsbook}:{permit.fixture_id}"

    async with client:
        assert await fetch_odds("pinnacle", fixture="F1") == "pinnacle:F1"
        assert await fetch_odds("pinnacle") == "pinnacle:default-fixture"
    assert fetch_odds.__name__ == "fetch_odds"
    [first, _] = recorder.requests("Acquire")
    assert first.fixture_id == "F1"
    assert first.max_wait.ToNanoseconds() <= 1_000_000_000
    assert current_permit.get() is None
    assert (await stats_for(h, "F1")).calls_in_window == 1


async def test_the_fixture_id_from_a_callable(start_server: StartServer) -> None:
    h = await start_server(limit=5, window=2)
    client = PermitClient(h.target)

    @guarded(lambda: client, fixture_id=lambda request: request["fixture"])
    async def handle(request: dict[str, Any]) -> int:
        return 200

    async with client:
        assert await handle({"fixture": "F2"}) == 200
    assert (await stats_for(h, "F2")).calls_in_window == 1


async def test_the_fixture_id_from_the_request_context(start_server: StartServer) -> None:
    h = await start_server(limit=5, window=2)
    client = PermitClient(h.target)

    @guarded(client)
    async def handle() -> str | None:
        permit = current_permit.get()
        return permit.fixture_id if permit else None

    async with client:
        token = current_fixture_id.set("F3")
        try:
            assert await handle() == "F3"
        finally:
            current_fixture_id.reset(token)
        calls: list[str] = []

        @guarded(client)
        async def never_runs() -> None:
            calls.append("ran")

        with pytest.raises(InvalidFixtureId, match="current_fixture_id, which is not set"):
            await never_runs()
        assert calls == []
    assert (await stats_for(h, "F3")).calls_in_window == 1


async def test_outcomes_follow_the_call_or_its_marks(start_server: StartServer) -> None:
    h = await start_server(limit=5, window=2)
    client, recorder = recorded_client(h.target)

    @guarded(client, fixture_id="fixture_id")
    async def call_upstream(fixture_id: str, behaviour: str) -> None:
        permit = current_permit.get()
        assert permit is not None
        if behaviour == "raise":
            raise ConnectionError("upstream timed out")
        if behaviour == "skip":
            permit.mark_not_sent()
        if behaviour == "429":
            permit.mark_upstream_rate_limited(2.0)

    async with client:
        await call_upstream("F4", "ok")
        with pytest.raises(ConnectionError):
            await call_upstream("F4", "raise")
        await call_upstream("F4", "skip")
        await call_upstream("F4", "429")
    outcomes = [r.outcome for r in recorder.requests("Release")]
    assert outcomes == [
        pb.OUTCOME_SUCCESS,
        pb.OUTCOME_FAILURE,
        pb.OUTCOME_NOT_SENT,
        pb.OUTCOME_UPSTREAM_RATE_LIMITED,
    ]
    assert (await stats_for(h, "F4")).HasField("paused_until")


def test_misuse_is_refused_when_decorating() -> None:
    client = PermitClient("127.0.0.1:1")

    def not_async(fixture_id: str) -> None: ...

    async def no_such_parameter(fixture: str) -> None: ...

    with pytest.raises(TypeError, match="wraps async functions"):
        guarded(client, fixture_id="fixture_id")(not_async)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="has no parameter 'fixture_id'"):
        guarded(client, fixture_id="fixture_id")(no_such_parameter)


async def test_a_fixture_id_that_is_not_a_string_is_refused() -> None:
    client = PermitClient("127.0.0.1:1")

    @guarded(client, fixture_id="fixture")
    async def fetch(fixture: int) -> None: ...

    with pytest.raises(TypeError, match="must be a str, got int"):
        await fetch(42)
