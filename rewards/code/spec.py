"""Test formats, parsed and validated into one of three frozen specs.

* call-based ``{"fn_name": "f", "cases": [{"args": [...], "kwargs": {...}, "expected": ...}]}``
* stdin/stdout ``{"stdio": [{"stdin": "...", "stdout": "..."}]}``
* assert-style ``{"asserts": "<test code>", "entry_point": "f"}`` (HumanEval ``check(candidate)``
  or MBPP ``assert f(x) == y`` lines; optional ``"imports"``: setup code run before them)

Datasets store the column as a JSON string, so a ``str`` is decoded first. Expected values stay
on the trusted side: only ``args``/``kwargs``/``stdin`` are ever sent into the sandbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rewards.sandbox import codec


class SpecError(ValueError):
    """Malformed tests (status INVALID)."""


@dataclass(frozen=True)
class CallSpec:
    fn_name: str
    inputs: tuple  # tagged [args, kwargs] pairs, ready to send
    expected: tuple  # plain values, trusted side only


@dataclass(frozen=True)
class StdioSpec:
    cases: tuple  # (stdin, expected stdout) pairs


@dataclass(frozen=True)
class AssertSpec:
    code: str
    entry_point: str
    imports: str = ""


Spec = CallSpec | StdioSpec | AssertSpec


def _call(t: dict) -> CallSpec:
    fn, cases = t.get("fn_name"), t.get("cases")
    if not isinstance(fn, str) or not fn.isidentifier():
        raise SpecError(f"fn_name must be an identifier, got {fn!r}")
    if not isinstance(cases, list) or not cases:
        raise SpecError("call-based tests need a non-empty 'cases' list")
    inputs, expected = [], []
    for i, c in enumerate(cases):
        if not isinstance(c, dict) or "expected" not in c:
            raise SpecError(f"case {i} must be a dict with 'args' and 'expected'")
        args, kwargs = c.get("args", []), c.get("kwargs", {})
        if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
            raise SpecError(f"case {i}: args must be a list and kwargs a dict")
        try:
            inputs.append([codec._enc(list(args), 0), codec._enc(dict(kwargs), 0)])
        except codec.CodecError as e:
            raise SpecError(f"case {i}: inputs are not plain data ({e})") from None
        expected.append(c["expected"])
    return CallSpec(fn, tuple(inputs), tuple(expected))


def _stdio(t: dict) -> StdioSpec:
    cases = t["stdio"]
    if not isinstance(cases, list) or not cases:
        raise SpecError("stdio tests need a non-empty list")
    out = []
    for i, c in enumerate(cases):
        if not (
            isinstance(c, dict) and isinstance(c.get("stdin", ""), str) and isinstance(c.get("stdout"), str)
        ):
            raise SpecError(f"stdio case {i} needs string 'stdin' and 'stdout'")
        out.append((c.get("stdin", ""), c["stdout"]))
    return StdioSpec(tuple(out))


def _asserts(t: dict) -> AssertSpec:
    code, entry = t.get("asserts"), t.get("entry_point")
    if not isinstance(code, str) or not code.strip():
        raise SpecError("assert-style tests need the test code in 'asserts'")
    if not isinstance(entry, str) or not entry.isidentifier():
        raise SpecError(f"assert-style tests need an identifier 'entry_point', got {entry!r}")
    imports = t.get("imports", "")
    if isinstance(imports, list) and all(isinstance(x, str) for x in imports):
        imports = "\n".join(imports)
    if imports is None:
        imports = ""
    if not isinstance(imports, str):
        raise SpecError(f"'imports' must be set-up code: a string or a list of strings, got {imports!r:.80}")
    return AssertSpec(code, entry, imports)


_FORMATS = {"cases": _call, "stdio": _stdio, "asserts": _asserts}


def parse_tests(tests: Any) -> Spec:
    """Turn one row's ``tests`` value (dict or JSON string) into a spec; :class:`SpecError` if bad."""
    if isinstance(tests, str):
        try:
            tests = json.loads(tests)
        except ValueError as e:
            raise SpecError(f"tests are not valid JSON: {e}") from None
    if not isinstance(tests, dict):
        raise SpecError(f"tests must be a dict, got {type(tests).__name__}")
    for key, parse in _FORMATS.items():
        if key in tests:
            return parse(tests)
    raise SpecError(f"unknown test format with keys {sorted(tests)}; expected one of: {', '.join(_FORMATS)}")
