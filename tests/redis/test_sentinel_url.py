"""`redis+sentinel://` URLs: what each part names, and bad ones refused with the form."""

from __future__ import annotations

import pytest

from hotspot_core.backend import open_backend
from hotspot_core.policy import PermitPolicy
from hotspot_server.redis_backend import RedisBackend
from hotspot_server.redis_backend.connection import SentinelTarget, parse_sentinel_url


def test_every_part_of_a_sentinel_url() -> None:
    url = "redis+sentinel://app:s%40cret@10.0.0.1:5000,[::1],h3/cache/2?sentinel_password=x"
    assert parse_sentinel_url(url) == SentinelTarget(
        sentinels=[("10.0.0.1", 5000), ("::1", 26379), ("h3", 26379)],
        service="cache",
        db=2,
        credentials={"username": "app", "password": "s@cret"},
        sentinel_credentials={"password": "x"},
    )
    assert parse_sentinel_url("redis+sentinel://h:1/svc") == SentinelTarget(
        [("h", 1)], "svc", 0, {}, {}
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+sentinel://h:1", "no SERVICE_NAME"),
        ("redis+sentinel://h:1/", "no SERVICE_NAME"),
        ("redis+sentinel://h:1/svc/x", "DB must be a whole number, got 'x'"),
        ("redis+sentinel://h:1/svc/0/more", "no SERVICE_NAME"),
        ("redis+sentinel://h:0/svc", "port must be 1 to 65535, got '0'"),
        ("redis+sentinel://h:1,:2/svc", "without a host"),
        ("redis+sentinel://h:1/svc?wait=1", "unknown option 'wait'"),
    ],
)
def test_a_bad_sentinel_url_names_the_form(url: str, why: str) -> None:
    with pytest.raises(ValueError, match="the form is redis\\+sentinel://") as error:
        parse_sentinel_url(url)
    assert why in str(error.value)


async def test_the_scheme_is_a_known_backend() -> None:
    """open_backend hands redis+sentinel:// to the Redis backend, `timeout` included."""
    with pytest.raises(ValueError, match="no SERVICE_NAME"):
        open_backend("redis+sentinel://127.0.0.1:1", PermitPolicy())
    backend = open_backend("redis+sentinel://127.0.0.1:1/svc?timeout=0.5", PermitPolicy())
    assert isinstance(backend, RedisBackend)
    await backend.close()
