"""Generic, strict conversion between plain data (YAML) and typed dataclasses.

`from_dict(Cls, data, path)` builds a dataclass from a mapping, rejecting unknown keys, wrong
types and invalid choices with a message that names the dotted key and what is allowed.
`apply_override(data, "a.b.c=value")` edits the raw mapping before conversion so overrides go
through exactly the same validation as the YAML file.

Supported field types: bool, int, float, str, Literal[...], X | None, list[X], dict[str, X]
and nested dataclasses. Field documentation lives in ``field(metadata={"doc": ...})`` and is
rendered by `describe()`; each field is documented once, where it is declared.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

import yaml


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of: " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of str to {_type_name(get_args(tp)[1])}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


# long function: one dispatch over every field type the schema uses (dataclass, list, dict, Literal, Optional, scalars)
def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:  # X | None: X's own error says what is wrong inside the value
            raise ConfigError(errors[0])
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{path}: {value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}"
            )
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
        (item,) = get_args(tp)
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
        _, item = get_args(tp)
        return {str(k): _convert(item, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            out = float(value)
        except OverflowError:  # an integer too large for a double
            raise ConfigError(f"{path}: {value} is too large for a number") from None
        if not math.isfinite(out):  # nan passes every `>= 0` range check by being incomparable
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return out
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if tp is Any:
        return value
    raise ConfigError(f"{path}: unsupported field type {tp!r}")  # pragma: no cover - programming error


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, validating every key (see module docstring)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted((k for k in data if k not in fields), key=str)  # YAML keys may be ints, None ...
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"unknown key {where}{unknown[0]!s}; allowed keys{' in ' + path if path else ''}: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{path}.{name}" if path else name)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # ConfigError, or a ValueError of a dataclass that lives outside selfdistill
        raise ConfigError(f"{path + ': ' if path else ''}{exc}") from None


def to_dict(obj: Any) -> Any:
    """Plain-data view of a config (for YAML dumps, W&B and hashing)."""
    return dataclasses.asdict(obj)


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):  # not YAML (or nested too deeply): the text itself
        return text


def apply_override(data: dict, override: str) -> None:
    """Apply ``dotted.key=value`` to the raw mapping ``data`` in place.

    Values are parsed as YAML scalars/flow collections (``3``, ``0.5``, ``true``, ``[a, b]``,
    ``null``). List elements are addressed by index: ``distill.students.0.hidden_size=48``.
    """
    if "=" not in override:
        raise ConfigError(f"override {override!r} is not of the form key=value")
    key, _, raw = override.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {override!r} has an empty key part")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {key}: {where} indexes a list of {len(node)} items")
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
            if node is None:
                node = {}
        if not isinstance(node, dict | list):
            raise ConfigError(f"override {key}: {where} is not a section")
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"override {key}: index {last} out of range")
        node[int(last)] = _parse_scalar(raw)
    else:
        node[last] = _parse_scalar(raw)


def load_yaml(path: str) -> dict:
    """Read a YAML mapping, turning parse errors into `ConfigError` with the file and line."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} (line {line}): not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})"
        ) from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"malformed YAML in {path}: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"malformed YAML in {path}{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _default_of(f: dataclasses.Field) -> Any:
    """Field ``f``'s default value (its factory called), or `dataclasses.MISSING` for a required field."""
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


def _differs(obj: Any) -> dict[str, Any]:
    """The fields of the dataclass instance ``obj`` whose values differ from its class defaults, and its first
    field always (what names the entry: a source's ``type``, a student's ``name``)."""
    return {
        f.name: getattr(obj, f.name)
        for i, f in enumerate(dataclasses.fields(obj))
        if i == 0 or getattr(obj, f.name) != _default_of(f)
    }


def show_default(value: Any) -> str:
    """A default as a config file would write it: entries of a list of sections show only the keys that differ
    from the section's own defaults (``[{type: math, n: 1000}]``), not every field's repr."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = ", ".join(f"{k}: {show_default(v)}" for k, v in _differs(value).items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(show_default(v) for v in value) + "]"
    return repr(value)


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """Rows ``(key, type, default, doc)`` for every field, recursively (for `selfdistill config`)."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.append((key, "section", "", f.metadata.get("doc", "")))
            rows.extend(describe(tp, key + "."))
            continue
        value = _default_of(f)
        default = "(required)" if value is dataclasses.MISSING else show_default(value)
        rows.append((key, _type_name(tp), default, f.metadata.get("doc", "")))
        item = get_args(tp)[0] if get_origin(tp) is list and get_args(tp) else None
        if item is not None and dataclasses.is_dataclass(item):
            rows.extend(describe(item, key + "[i]."))
        optional = (
            [a for a in get_args(tp) if dataclasses.is_dataclass(a)]
            if get_origin(tp) in (typing.Union, types.UnionType)
            else []
        )
        for inner in optional:  # an optional section (null = off): document its keys too
            rows.extend(describe(inner, key + "."))
    return rows
