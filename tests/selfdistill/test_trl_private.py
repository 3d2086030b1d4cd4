"""The TRL internals we override (selfdistill/trl_private.py) still look the way our overrides expect.

A failure here means TRL changed under us: re-check `GRPOHooks` / `push_metric` and the MoE replay tests
(tests/selfdistill/moe/test_trl.py) against the new TRL, then update `PRIVATE_SIGNATURES` and the pyproject pin.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest
import trl

from selfdistill.trl_private import METRICS_STORE, PRIVATE_SIGNATURES, TESTED_TRL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("cls_name", "method"), sorted(PRIVATE_SIGNATURES))
def test_overridden_private_methods_keep_their_signature(cls_name, method):
    cls = getattr(trl, cls_name)
    assert hasattr(cls, method), (
        f"trl {trl.__version__}: {cls_name}.{method} is gone; our override is dead code"
    )
    now = str(inspect.signature(getattr(cls, method)))
    assert now == PRIVATE_SIGNATURES[(cls_name, method)], (
        f"trl {trl.__version__} changed {cls_name}.{method}:\n  tested: {PRIVATE_SIGNATURES[(cls_name, method)]}"
        f"\n  now:    {now}"
    )


@pytest.mark.parametrize("cls_name", sorted(METRICS_STORE))
def test_metrics_store_is_still_created_in_init(cls_name):
    source = inspect.getsource(getattr(trl, cls_name).__init__)
    attr = METRICS_STORE[cls_name]
    assert re.search(
        rf'self\.{attr} = \{{"train": defaultdict\(list\), "eval": defaultdict\(list\)\}}', source
    ), (
        f"trl {trl.__version__}: {cls_name}.__init__ no longer creates self.{attr} as per-mode defaultdict(list)"
    )


def test_installed_and_pinned_trl_is_the_tested_minor():
    assert trl.__version__.startswith(TESTED_TRL + "."), (
        f"installed trl {trl.__version__}, tested {TESTED_TRL}"
    )
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    major, minor = (int(x) for x in TESTED_TRL.split("."))
    assert f"trl>={TESTED_TRL},<{major}.{minor + 1}" in deps, (
        f"pyproject's trl pin is not the tested minor: {deps}"
    )
