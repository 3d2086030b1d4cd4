"""``selfdistill sandbox-check``: which isolation layers this machine offers, and the canaries.

    python -m rewards.sandbox.check            # probe, start a sandbox, run canaries
    python -m rewards.sandbox.check --layers landlock,seccomp   # exit 1 if one is missing

Prints one line per layer (available / active / canary result) and exits non-zero when a
requested layer is missing or a canary of an active layer was not stopped.
"""

from __future__ import annotations

import argparse
import time

from rewards.sandbox import probe
from rewards.sandbox.client import Sandbox, SandboxUnavailable
from rewards.sandbox.config import ALL_LAYERS, SandboxConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="selfdistill sandbox-check", description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="auto", help=f"'auto' or a comma list of: {', '.join(ALL_LAYERS)}")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    layers = (
        "auto" if args.layers == "auto" else tuple(x.strip() for x in args.layers.split(",") if x.strip())
    )
    available = probe.available_layers()
    t0 = time.perf_counter()
    try:
        sb = Sandbox(SandboxConfig(workers=args.workers, layers=layers))
    except (SandboxUnavailable, ValueError) as e:
        print(f"sandbox-check: {e}")
        for name in ALL_LAYERS:
            print(f"  {name:<11} {'available' if available[name] else 'MISSING: ' + probe.why_missing(name)}")
        return 1
    start_ms = (time.perf_counter() - t0) * 1e3
    canaries = {c.layer: c for c in sb.canary_report}
    print(f"sandbox-check: zygote pid {sb.zygote_info['pid']} started with canaries in {start_ms:.0f} ms")
    print(f"  {'layer':<11} {'available':<10} {'active':<7} canary")
    for name in ALL_LAYERS:
        c = canaries.get(name)
        verdict = "-" if c is None else f"{'stopped' if c.ok else 'NOT STOPPED'}: {c.name} ({c.detail})"
        print(
            f"  {name:<11} {str(available[name]).lower():<10} {str(name in sb.layers).lower():<7} {verdict}"
        )
        if not available[name]:
            print(f"  {'':<11} why: {probe.why_missing(name)}")
    job = {
        "mode": "call",
        "code": "def f(x):\n    return x + 1\n",
        "fn_name": "f",
        "cases": [[[1], {"$d": []}]],
    }
    t0 = time.perf_counter()
    results = sb.run([job] * 20)
    ms = (time.perf_counter() - t0) * 1e3 / 20
    ok = all(r.records[-1].get("v") == 2 for r in results)
    print(
        f"  trivial job: {ms:.1f} ms each over 20 sequential-batch runs ({'ok' if ok else 'WRONG RESULTS'})"
    )
    sb.close()
    return 0 if ok and all(c.ok for c in canaries.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
