"""The Redis clients a RedisBackend talks through, made from its URL: one function per URL
scheme, so another Redis topology is one more function in CONNECTORS."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

SENTINEL_PORT = 26379
CLUSTER_PORT = 6379
CLUSTER_FORM = (
    "redis+cluster://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][?timeout=SECONDS&shards=N]"
    " (rediss+cluster:// for TLS)"
)
SENTINEL_FORM = (
    "redis+sentinel://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE_NAME[/DB]"
    "[?sentinel_password=...]"
)


Client = aioredis.Redis | RedisCluster
"""One node's client, or a Cluster's (same commands, each sent to the node of its keys)."""


class Clients:
    """`commands` runs scripts and reads (every call under the timeout); `pubsub` blocks
    reading its subscription, so it has no read timeout. `aclose` closes both and whatever
    else the connector opened (a Sentinel's own connections)."""

    def __init__(
        self,
        commands: Client,
        pubsub: aioredis.Redis,
        also_close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.commands = commands
        self.pubsub = pubsub
        self._also_close = also_close

    async def aclose(self) -> None:
        for close in (self.commands.aclose, self.pubsub.aclose, *self._also_close):
            with contextlib.suppress(Exception):
                await close()


def _bounded(call_timeout: float) -> dict[str, Any]:
    """Options of a connection whose every call is bounded by the timeout."""
    return {
        "socket_timeout": call_timeout,
        "socket_connect_timeout": call_timeout,
        # One attempt: a retry would double the time a caller waits on a dead Redis.
        "retry": Retry(NoBackoff(), 0),
    }


def _command_options(call_timeout: float) -> dict[str, Any]:
    return {**_bounded(call_timeout), "decode_responses": True}


def _single_node(url: str, call_timeout: float) -> Clients:
    """`redis://` and `rediss://`: one Redis node, all of redis-py's URL options."""
    return Clients(
        aioredis.Redis.from_url(url, **_command_options(call_timeout)),
        aioredis.Redis.from_url(url, socket_connect_timeout=call_timeout, decode_responses=True),
    )


def _sentinel(url: str, call_timeout: float) -> Clients:
    """`redis+sentinel://`: the Sentinels name the primary of SERVICE_NAME. Each new
    connection asks them where it is (redis-py's master_for), so after a failover both clients
    reconnect to the new primary: the commands client at its next call after the old
    connection failed, the subscription when the backend subscribes again (it re-polls its
    waiters' fixtures then, so no wake-up is lost)."""
    target = parse_sentinel_url(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        target.sentinels,
        sentinel_kwargs={**_bounded(call_timeout), **target.sentinel_credentials},
        **target.credentials,
    )
    return Clients(
        sentinel.master_for(target.service, db=target.db, **_command_options(call_timeout)),
        sentinel.master_for(
            target.service, db=target.db, socket_connect_timeout=call_timeout, decode_responses=True
        ),
        also_close=(sentinel.aclose,),
    )


class SentinelTarget(NamedTuple):
    sentinels: list[tuple[str, int]]
    service: str
    db: int
    credentials: dict[str, str]
    """The primary's (and its replicas') username and password."""
    sentinel_credentials: dict[str, str]


def parse_sentinel_url(url: str) -> SentinelTarget:
    """What a `redis+sentinel://` URL names; ValueError naming the form for anything else."""

    def bad(why: str) -> ValueError:
        return ValueError(f"{why} in {url!r}; the form is {SENTINEL_FORM}")

    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    credentials = _credentials(userinfo)
    sentinel_credentials: dict[str, str] = {}
    sentinels = [_address(address, bad) for address in hosts.split(",")]
    path = [unquote(part) for part in parts.path.strip("/").split("/")] if parts.path else []
    if not path or not path[0] or len(path) > 2:
        raise bad("no SERVICE_NAME (the name the Sentinels monitor the primary by)")
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise bad(f"DB must be a whole number, got {path[1]!r}")
        db = int(path[1])
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "sentinel_password":
            sentinel_credentials["password"] = value
        else:
            raise bad(f"unknown option {key!r}")
    return SentinelTarget(sentinels, path[0], db, credentials, sentinel_credentials)


def _credentials(userinfo: str) -> dict[str, str]:
    """redis-py's username and password options from a URL's `USER:PASSWORD` part."""
    user, has_password, password = userinfo.partition(":")
    credentials = {"username": unquote(user)} if user else {}
    if has_password:
        credentials["password"] = unquote(password)
    return credentials


def _address(
    text: str, bad: Callable[[str], ValueError], default_port: int = SENTINEL_PORT
) -> tuple[str, int]:
    host, colon, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not colon:
        host, port = text, str(default_port)
    host = host.removeprefix("[").removesuffix("]")
    if not host:
        raise bad(f"an address without a host: {text!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise bad(f"a port must be 1 to 65535, got {port!r}")
    return host, int(port)


def _cluster(url: str, call_timeout: float) -> Clients:
    """`redis+cluster://` (`rediss+cluster://` for TLS): a Redis Cluster, found from any of its
    nodes. redis-py's RedisCluster sends each script to the node serving its keys' slot (all of
    one shard's, see keys.py) and follows the Cluster when slots move. The subscription is on
    the first node given: the scripts PUBLISH, which a Cluster delivers to subscribers on
    every node (while that node is down, the backend's timers find every answer)."""
    nodes, options = parse_cluster_url(url)
    startup = [ClusterNode(host, port) for host, port in nodes]
    (host, port), *_ = nodes
    return Clients(
        RedisCluster(startup_nodes=startup, **_command_options(call_timeout), **options),
        aioredis.Redis(
            host=host,
            port=port,
            socket_connect_timeout=call_timeout,
            decode_responses=True,
            **options,
        ),
    )


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The startup nodes and the client options (credentials, TLS) of a `redis+cluster://`
    URL; ValueError naming the form for anything else."""

    def bad(why: str) -> ValueError:
        return ValueError(f"{why} in {url!r}; the form is {CLUSTER_FORM}")

    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    options: dict[str, Any] = {"ssl": parts.scheme == "rediss+cluster"}
    if userinfo:
        user, has_password, password = userinfo.partition(":")
        if user:
            options["username"] = unquote(user)
        if has_password:
            options["password"] = unquote(password)
    nodes = [_address(address, bad, CLUSTER_PORT) for address in hosts.split(",")]
    if parts.path.strip("/") not in ("", "0"):
        raise bad("a Cluster has one database, 0")
    if parts.query:
        raise bad(f"unknown options {parts.query!r}")
    return nodes, options


CONNECTORS: dict[str, Callable[[str, float], Clients]] = {
    "redis": _single_node,
    "rediss": _single_node,
    "redis+sentinel": _sentinel,
    "redis+cluster": _cluster,
    "rediss+cluster": _cluster,
}


def open_clients(url: str, call_timeout: float) -> Clients:
    """The clients for a backend URL, by its scheme; ValueError for a scheme not known here."""
    scheme = urlsplit(url).scheme
    connector = CONNECTORS.get(scheme)
    if connector is None:
        known = ", ".join(f"{s}://" for s in CONNECTORS)
        raise ValueError(f"unknown Redis URL scheme in {url!r}; known: {known}")
    return connector(url, call_timeout)
