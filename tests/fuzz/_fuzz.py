"""Shared settings of the property-based (``hypothesis``) fuzz suites in this folder.

Every boundary has a fast, seeded run in the default suite and a ``slow`` variant of the same
property with many more examples:

    python -m pytest tests/fuzz -q                       # default: seeded, bounded, < 1 min together
    python -m pytest tests/fuzz -q -m slow               # 10,000 examples per boundary (file)
    SELFDISTILL_FUZZ_EXAMPLES=50000 python -m pytest tests/fuzz -m slow   # more

A boundary's budget is shared by its properties (``slow(test, of=3)``: a third each), so every
boundary runs at least ``SELFDISTILL_FUZZ_EXAMPLES`` examples in its slow variant.

``derandomize=True`` gives each test a fixed seed (derived from its name), so a run is
reproducible and a failure found once is found again; no example database is written. Every
defect a fuzzer found is kept as an ``@example`` (or a plain test) beside its property.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

SLOW_EXAMPLES = int(os.environ.get("SELFDISTILL_FUZZ_EXAMPLES", "10000"))
_COMMON = dict(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def fast(max_examples: int):
    """Settings of the default run: fixed seed, ``max_examples`` examples."""
    return settings(max_examples=max_examples, **_COMMON)


def slow(test, of: int = 1):
    """The ``slow`` variant: the same property, fixed seed, its share (one of ``of`` properties of the
    boundary) of ``SELFDISTILL_FUZZ_EXAMPLES`` examples, rounded up."""
    return pytest.mark.slow(settings(max_examples=-(-SLOW_EXAMPLES // of), **_COMMON)(test))
