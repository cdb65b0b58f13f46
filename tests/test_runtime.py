"""How the service process is set up for steady latency."""

from __future__ import annotations

import gc
from typing import Any


def test_start_up_objects_are_out_of_the_collectors_sight(app: Any) -> None:
    """Start-up's objects (modules, routes, models, pool) are frozen once the app has started, so
    a full collection does not walk them while requests wait (bench/RESULTS.md: Initialize's p99
    went from 109-126 ms to 37 ms)."""
    assert gc.get_freeze_count() > 10_000


def test_full_collections_wait_for_a_hundred_middle_ones(app: Any) -> None:
    """Objects built after start-up are walked by every full collection; under load those came
    every ~1.5 s and took 6-18 ms each (bench/RESULTS.md, the overview's p99)."""
    assert gc.get_threshold()[2] == 100
