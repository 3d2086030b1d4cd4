"""Check that the lock (``configs/constraints.txt``) still satisfies ``pyproject.toml``.

Every requirement of the project (its dependencies and the extras named on the command line,
``test`` by default) must be pinned in the lock with ``==`` to a version its specifier admits.
torch is the exception: it is installed first by its own command (``pip install torch==2.13.0``,
or a CUDA build on a GPU machine), so the lock leaves it out. Run by ``.ci/run``::

    python scripts/check_lock.py                  # dependencies + [test]
    python scripts/check_lock.py --extras test gguf
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
UNPINNED = {"torch"}  # installed by its own command before the project (CPU or CUDA build)


def read_lock(path: Path) -> dict[str, Version]:
    """``name==version`` lines of a pip constraints file; comments and blanks skipped."""
    pins: dict[str, Version] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise SystemExit(f"{path}:{n}: expected 'name==version', got {raw!r}")
        pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def requirements(pyproject: Path, extras: list[str]) -> list[Requirement]:
    """The project's dependencies plus those of ``extras`` (an unknown extra is an error)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"unknown extra {extra!r}; pyproject.toml has: {', '.join(sorted(optional))}")
        reqs += [Requirement(r) for r in optional[extra]]
    return reqs


def problems(reqs: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """One line per requirement the lock does not satisfy."""
    out = []
    for req in reqs:
        name = canonicalize_name(req.name)
        if name in UNPINNED or (req.marker is not None and not req.marker.evaluate()):
            continue
        if name not in pins:
            out.append(f"{req}: not pinned in the lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            out.append(f"{req}: the lock pins {name}=={pins[name]}, which the specifier excludes")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lock", type=Path, default=ROOT / "configs" / "constraints.txt")
    ap.add_argument("--extras", nargs="*", default=["test"])
    args = ap.parse_args(argv)
    bad = problems(requirements(ROOT / "pyproject.toml", args.extras), read_lock(args.lock))
    for line in bad:
        print(f"lock check: {line}", file=sys.stderr)
    if bad:
        print(f"lock check: {len(bad)} problem(s); regenerate with scripts/update_lock.sh", file=sys.stderr)
        return 1
    print(
        f"lock check: {args.lock.relative_to(ROOT)} satisfies pyproject.toml (extras: {', '.join(args.extras) or '-'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
