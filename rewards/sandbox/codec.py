"""Plain-data codec for values crossing the sandbox boundary (both directions).

Only exact builtin types travel: ``None, bool, int, float, str, bytes, list, tuple, dict, set,
frozenset`` (no subclasses, so an object whose ``__eq__`` is always True cannot cross). Values
are tagged JSON so tuples stay tuples and dict keys keep their types::

    [1, (2, 3), {"a": {4}}]  ->  [1, {"$t": [2, 3]}, {"$d": [["a", {"$s": [4]}]]}]

The sandboxed side encodes its return values with :func:`encode`; the trusted side parses them
with :func:`decode`, which builds fresh builtins from JSON and so can only ever yield plain
data, whatever bytes the untrusted process wrote. Size and depth are capped on both sides.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

MAX_DEPTH = 64
MAX_TEXT = 4 << 20  # bytes of one encoded value


class CodecError(ValueError):
    """A value that is not plain data, too deep, too large or malformed."""


def _enc(v: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError("value nested too deeply")
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is int:
        if v.bit_length() > 4096:
            raise CodecError("integer too large")
        return v
    if t is float:
        return v if math.isfinite(v) else {"$f": repr(v)}
    if t is list:
        return [_enc(x, depth + 1) for x in v]
    if t is tuple:
        return {"$t": [_enc(x, depth + 1) for x in v]}
    if t is set or t is frozenset:
        return {"$s" if t is set else "$fs": [_enc(x, depth + 1) for x in v]}
    if t is dict:
        return {"$d": [[_enc(k, depth + 1), _enc(x, depth + 1)] for k, x in v.items()]}
    if t is bytes:
        return {"$b": base64.b64encode(v).decode()}
    raise CodecError(f"not plain data: {t.__module__}.{t.__qualname__}")


def encode(v: Any) -> str:
    """Encode a plain value to tagged JSON text; :class:`CodecError` for anything else."""
    text = json.dumps(_enc(v, 0), separators=(",", ":"), allow_nan=False)
    if len(text) > MAX_TEXT:
        raise CodecError(f"encoded value is {len(text)} bytes (cap {MAX_TEXT})")
    return text


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _dec(o: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError("value nested too deeply")
    if o is None or isinstance(o, bool | int | float | str):
        return o
    if isinstance(o, list):
        return [_dec(x, depth + 1) for x in o]
    if isinstance(o, dict) and len(o) == 1:
        ((tag, body),) = o.items()
        if tag == "$f" and body in _FLOATS:
            return _FLOATS[body]
        if tag == "$b" and isinstance(body, str):
            return base64.b64decode(body.encode(), validate=True)
        if isinstance(body, list):
            if tag == "$t":
                return tuple(_dec(x, depth + 1) for x in body)
            if tag == "$s":
                return {_dec(x, depth + 1) for x in body}
            if tag == "$fs":
                return frozenset(_dec(x, depth + 1) for x in body)
            if tag == "$d":
                out = {}
                for pair in body:
                    if not (isinstance(pair, list) and len(pair) == 2):
                        raise CodecError("malformed dict pair")
                    out[_dec(pair[0], depth + 1)] = _dec(pair[1], depth + 1)
                return out
    raise CodecError(f"malformed tagged value: {str(o)[:80]}")


def decode(text: str | bytes) -> Any:
    """Parse text written by :func:`encode` (or by anything hostile) into fresh plain data."""
    if len(text) > MAX_TEXT:
        raise CodecError(f"encoded value is {len(text)} bytes (cap {MAX_TEXT})")
    try:
        return _dec(json.loads(text), 0)
    except CodecError:
        raise
    except (ValueError, TypeError, RecursionError) as e:  # bad JSON, unhashable key, deep nesting
        raise CodecError(f"cannot decode value: {type(e).__name__}: {str(e)[:80]}") from None
