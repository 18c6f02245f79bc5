"""The token bucket of integrations' alert rates (firebreak/token_buckets.py), by a hand clock."""

from __future__ import annotations

from firebreak.token_buckets import TokenBucket


def test_a_bucket_admits_its_burst_then_says_when_to_come_back() -> None:
    bucket = TokenBucket(per_second=2, burst=3)
    assert [bucket.refusal(0.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.refusal(0.0) == 1  # half a second to a token: whole seconds, at least 1
    assert bucket.refusal(0.5) == 0  # a refused request took nothing


def test_a_batch_larger_than_the_burst_waits_for_a_full_bucket_and_leaves_a_debt() -> None:
    bucket = TokenBucket(per_second=10, burst=5)
    assert bucket.refusal(0.0, 20) == 0  # full: admitted, 15 tokens owed
    assert bucket.refusal(0.0) == 2  # the debt and one token: 1.6 s, rounded up
    assert bucket.refusal(1.5) == 1
    assert bucket.refusal(1.6) == 0
