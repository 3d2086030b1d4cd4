"""The dependency lock (configs/constraints.txt) pins every requirement of pyproject.toml to an allowed version."""

import importlib.util
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_lock", ROOT / "scripts" / "check_lock.py")
check_lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_lock)


def test_the_lock_satisfies_pyproject():
    reqs = check_lock.requirements(ROOT / "pyproject.toml", ["test", "gguf"])
    pins = check_lock.read_lock(ROOT / "configs" / "constraints.txt")
    assert check_lock.problems(reqs, pins) == []
    assert "torch" not in pins  # installed first by its own command (CPU or CUDA build)


def test_a_stale_or_missing_pin_is_reported(tmp_path):
    reqs = check_lock.requirements(ROOT / "pyproject.toml", ["test"])
    pins = check_lock.read_lock(ROOT / "configs" / "constraints.txt")
    pins["trl"] = Version("1.15.0")
    del pins["sympy"]
    found = check_lock.problems(reqs, pins)
    assert any("trl" in p and "excludes" in p for p in found)
    assert any(p.startswith("sympy") and "not pinned" in p for p in found)
    bad = tmp_path / "lock.txt"
    bad.write_text("numpy>=1\n")
    try:
        check_lock.read_lock(bad)
    except SystemExit as exc:
        assert "expected 'name==version'" in str(exc)
    else:
        raise AssertionError("a non-pinned line was accepted")
