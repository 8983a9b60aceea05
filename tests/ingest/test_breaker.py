from __future__ import annotations

import random

from mlgraph.ingest.breaker import CircuitBreaker
from mlgraph.ingest.hydrator import RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_waits_and_closes_after_a_good_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown_s=2.0, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.state == "closed" and breaker.wait_s() is None
    breaker.failure()
    assert breaker.state == "open"
    assert breaker.wait_s() == 2.0
    clock.now += 2.0
    assert breaker.state == "half-open"
    assert breaker.wait_s() is None  # the trial call
    assert breaker.wait_s() is not None  # only one trial at a time
    breaker.success()
    assert breaker.state == "closed" and breaker.wait_s() is None


def test_a_failed_trial_opens_it_for_longer() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown_s=1.0, clock=clock)
    breaker.failure()
    clock.now += 1.0
    assert breaker.wait_s() is None
    breaker.failure()
    assert breaker.wait_s() == 2.0


def test_backoff_grows_has_jitter_caps_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=0.2, max_delay_s=5.0)
    rng = random.Random(1)
    delays = [policy.delay(n, None, rng) for n in range(10)]
    assert 0.1 <= delays[0] <= 0.2
    assert all(d <= 5.0 for d in delays) and delays[9] >= 2.5
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jitter
    assert policy.delay(0, 7.0, rng) == 7.0
