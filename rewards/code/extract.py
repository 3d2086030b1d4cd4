"""Find the program in a completion: by default the last fenced ```python block.

Strategies live in a registry (``EXTRACTORS``): ``last_python`` (```python / ```py /
```python3 fences), ``last_any`` (the last fenced block whatever its language tag) and
``first_python``. An unterminated fence (a truncated completion) does not count: the status is
``NO_CODE`` rather than running half a program.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)\n?[ \t]*```", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3"}


def _blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def _last_python(text: str) -> str | None:
    found = [code for tag, code in _blocks(text) if tag in _PYTHON_TAGS]
    return found[-1] if found else None


def _first_python(text: str) -> str | None:
    found = [code for tag, code in _blocks(text) if tag in _PYTHON_TAGS]
    return found[0] if found else None


def _last_any(text: str) -> str | None:
    found = _blocks(text)
    return found[-1][1] if found else None


EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "last_python": _last_python,
    "first_python": _first_python,
    "last_any": _last_any,
}


def extract_code(text: str, strategy: str = "last_python") -> str | None:
    """The program text, or None when the completion holds no (complete) code block."""
    if strategy not in EXTRACTORS:
        raise ValueError(f"unknown extraction strategy {strategy!r}; choose one of: {', '.join(EXTRACTORS)}")
    code = EXTRACTORS[strategy](text)
    return code if code and code.strip() else None
