"""A part of the permit integration suite on three replicas sharing a three-node Redis Cluster
(the whole suite runs on memory:// and on three replicas on one Redis): the rules a Cluster
keeps per fixture (FIFO order across replicas and streams, the window, refunds, pauses,
leases, cancellation, request ids), the Stats ranking it merges over its shards, and
--max-fixtures, which the fleet ledger keeps exact across shards (tests/redis/test_cluster.py
has the per-caller caps). Not here: tests that time a first call (a replica's first calls on
a Cluster also learn its slot map)."""

from __future__ import annotations

import pytest

from tests.integration import test_acquire_stream as stream
from tests.integration import test_grpc_permits as permits
from tests.integration.conftest import CLUSTER_REPLICAS

pytestmark = pytest.mark.parametrize("start_server", [CLUSTER_REPLICAS], indirect=True)

test_full_window_queues_then_grants_when_the_oldest_leaves = (
    permits.test_full_window_queues_then_grants_when_the_oldest_leaves
)
test_waiters_are_served_in_arrival_order = permits.test_waiters_are_served_in_arrival_order
test_cancelled_call_leaves_the_queue_at_once = permits.test_cancelled_call_leaves_the_queue_at_once
test_not_sent_refunds_and_wakes_the_next_waiter = (
    permits.test_not_sent_refunds_and_wakes_the_next_waiter
)
test_upstream_rate_limited_pauses_the_fixture = (
    permits.test_upstream_rate_limited_pauses_the_fixture
)
test_expired_lease_is_abandoned_then_not_found = (
    permits.test_expired_lease_is_abandoned_then_not_found
)
test_a_permit_can_be_released_by_the_request_id_it_was_granted_to = (
    permits.test_a_permit_can_be_released_by_the_request_id_it_was_granted_to
)
test_stats_rank_hottest_first = permits.test_stats_rank_hottest_first
test_too_many_fixtures = permits.test_too_many_fixtures
test_fifo_holds_across_stream_and_unary_callers = (
    stream.test_fifo_holds_across_stream_and_unary_callers
)
test_callers_that_leave_at_any_moment_leak_no_grant = (
    stream.test_callers_that_leave_at_any_moment_leak_no_grant
)
