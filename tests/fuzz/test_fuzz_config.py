"""Property-based fuzzing of configuration loading (``selfdistill.config.load_config``).

Random YAML documents (the demo config with random edits, random nested mappings, random text
and bytes) and random ``key=value`` overrides either load into a valid :class:`Config` or raise
:class:`ConfigError` whose message names the offending key (or, for text that is not a YAML
mapping, the file and line); never another exception.

Run: ``python -m pytest tests/fuzz/test_fuzz_config.py -q``; ``-m slow`` for 10,000 examples.
"""

from __future__ import annotations

import copy
import math
import re
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import yaml
from _fuzz import fast, slow
from hypothesis import example, given

from selfdistill.config import DEMO_CONFIG, Config, load_config
from selfdistill.configio import ConfigError, describe

DEMO = yaml.safe_load(DEMO_CONFIG.read_text())
KEYS = [k.replace("[i].", ".0.") for k, *_ in describe(Config)]  # every dotted key, list items as index 0
NAMES = sorted({part for k in KEYS for part in k.split(".")})
TMP = Path(tempfile.mkdtemp(prefix="fuzz-config-"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["auto", "cpu", "math", "code", "grpo", "fused", "eager", "policy", "tiny", "", "0"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _load_or_config_error(path: Path | None, overrides: list[str]):
    """Load; a ConfigError is an accepted outcome (returned), anything else propagates and fails the test."""
    try:
        cfg = load_config(path, overrides)
    except ConfigError as exc:
        return exc
    assert isinstance(cfg, Config)
    cfg.fingerprint()  # a loaded config is usable
    return cfg


def _names_a_key(message: str, candidates: list[str]) -> bool:
    """The message names one of the keys (any dotted suffix of it) or list index forms of it."""
    text = re.sub(r"\[(\d+)\]", r".\1", message)
    return any(part and part in text for c in candidates for part in [c, c.split(".")[-1]])


@st.composite
def edited_demo(draw):
    """The demo config with 1-4 random edits: set a known key to a random value, drop a key, add one."""
    doc = copy.deepcopy(DEMO)
    touched = []
    for _ in range(draw(st.integers(1, 4))):
        key = draw(
            st.sampled_from(KEYS) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.0", min_size=1, max_size=20)
        )
        parts = key.split(".")
        node = doc
        for part in parts[:-1]:
            if isinstance(node, list):
                if not node:
                    break
                node = node[0]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                break
        if not isinstance(node, dict):
            continue
        action = draw(st.sampled_from(["set", "set", "drop"]))
        if action == "drop":
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = draw(values)
        touched.append(key)
    return doc, touched


def check_edited_demo(case) -> None:
    doc, touched = case
    path = TMP / "edited.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    got = _load_or_config_error(path, [])
    if isinstance(got, ConfigError):
        assert _names_a_key(str(got), touched + KEYS), str(got)


test_edited_demo = fast(60)(
    example(({"run": {"rounds": float("nan")}}, ["run.rounds"]))(given(edited_demo())(check_edited_demo))
)
test_edited_demo_slow = slow(given(edited_demo())(check_edited_demo), of=3)


documents = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.builds(
        lambda d: yaml.safe_dump(d, allow_unicode=True),
        st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=8), values, max_size=4),
    ),
    st.builds(lambda d, cut: yaml.safe_dump(d)[:cut], st.just(DEMO), st.integers(0, 2000)),  # truncated demo
    st.builds(
        lambda d, junk: yaml.safe_dump(d).encode() + junk, st.just(DEMO), st.binary(min_size=1, max_size=20)
    ),
)


def check_document(doc) -> None:
    path = TMP / "doc.yaml"
    path.write_bytes(doc if isinstance(doc, bytes) else doc.encode("utf-8", errors="surrogatepass"))
    got = _load_or_config_error(path, [])
    if isinstance(got, ConfigError):
        assert str(got).strip(), "empty ConfigError"
        assert _names_a_key(str(got), KEYS + [str(path)]) or str(path) in str(got), str(got)


test_documents = fast(100)(
    example(b"\xff\xfe run: {}")(  # not UTF-8: was UnicodeDecodeError
        example("run: [" * 3000)(  # deep nesting
            example("1: 2\nrun: {}\nzz: 3")(  # int and str keys, both unknown: was TypeError in sorted()
                example("? [a, b]\n: 1")(given(documents)(check_document))
            )
        )
    )
)
test_documents_slow = slow(given(documents)(check_document), of=3)


override_values = st.one_of(
    st.text(max_size=15),
    st.sampled_from(
        ["null", "~", "[1, 2", "{a: 1}", "[]", "{}", "1e400", ".nan", "-.inf", "true", "0x10", "'x'", "[[[[["]
    ),
    st.builds(str, st.integers()),
    st.builds(repr, st.floats()),
)


@st.composite
def overrides(draw):
    out = []
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(KEYS) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.09[]", max_size=24))
        if draw(st.booleans()) and "." in key:  # an index past the end or a field of a scalar
            key = key + draw(st.sampled_from([".5", ".x", ".0.0", "..", "."]))
        out.append(f"{key}={draw(override_values)}" if draw(st.integers(0, 9)) else key)  # 1 in 10 has no '='
    return out


def check_overrides(ovs) -> None:
    got = _load_or_config_error(None, ovs)
    if isinstance(got, ConfigError):
        keys = [o.partition("=")[0] for o in ovs]
        assert _names_a_key(str(got), keys + KEYS) or any(o in str(got) for o in ovs), str(got)


test_overrides = fast(80)(
    example(["rl.max_steps=1e400"])(
        example(["run.seed=.nan"])(example(["tasks.sources.7.n=3"])(given(overrides())(check_overrides)))
    )
)
test_overrides_slow = slow(given(overrides())(check_overrides), of=3)


def test_nan_and_inf_numbers_name_their_key():
    """``.nan`` passes every ``>=`` check by being incomparable: it must be rejected, naming the key."""
    for ov in ["rl.learning_rate=.nan", "tasks.eval_fraction=.nan", "rl.learning_rate=.inf"]:
        got = _load_or_config_error(None, [ov])
        if isinstance(got, Config):  # accepted: then the value must at least be a finite number
            key = ov.partition("=")[0].split(".")
            value = getattr(getattr(got, key[0]), key[1])
            assert math.isfinite(value), f"{ov} loaded as {value}"
        else:
            assert ov.partition("=")[0].split(".")[-1] in str(got)
