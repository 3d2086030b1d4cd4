"""No module over 500 lines and no function over 60 lines in `selfdistill/` and `rewards/` without a reason.

The reason is a comment: ``# long module: <why>`` within a module's first 40 lines, or ``# long function:
<why>`` on the lines right above a function's ``def`` (or its first decorator). Static: read with `ast`.

    python -m pytest tests/test_code_size.py -q
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _files() -> list[Path]:
    return sorted(p for pkg in ("selfdistill", "rewards") for p in (ROOT / pkg).rglob("*.py"))


def _justified(lines: list[str], first: int, tag: str) -> bool:
    """A ``# <tag>:`` comment in the comment block ending right above line ``first`` (1-based)."""
    i = first - 2
    while i >= 0 and lines[i].lstrip().startswith("#"):
        if lines[i].lstrip().startswith(f"# {tag}:"):
            return True
        i -= 1
    return False


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    """Descriptions of the unjustified long module / functions in ``path``."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    if len(lines) > MAX_MODULE_LINES and not any(line.startswith("# long module:") for line in lines[:40]):
        found.append(f"{path.relative_to(root)}: {len(lines)} lines (> {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - first + 1
            if length > MAX_FUNCTION_LINES and not _justified(lines, first, "long function"):
                found.append(
                    f"{path.relative_to(root)}:{first} {node.name}: {length} lines (> {MAX_FUNCTION_LINES})"
                )
    return found


def test_modules_and_functions_are_small_or_say_why():
    files = _files()
    assert len(files) > 50
    found = [line for path in files for line in oversized(path)]
    assert not found, (
        "split these, or put a '# long module: why' / '# long function: why' comment:\n" + "\n".join(found)
    )


def test_the_check_catches_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    bad = tmp_path / "bad.py"
    bad.write_text(f"def f():\n{body}\n")
    good = tmp_path / "good.py"
    good.write_text(f"# long function: a test\ndef f():\n{body}\n")
    assert oversized(bad, tmp_path) == ["bad.py:1 f: 62 lines (> 60)"] and oversized(good, tmp_path) == []
