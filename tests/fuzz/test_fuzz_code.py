"""Property-based fuzzing of the code reward (``rewards.code``): random test specs and programs.

Random tests of every format (call-based, stdin/stdout, assert-style with and without
``imports``) and malformed ones (wrong types, unknown keys, broken JSON text, broken test code),
against programs that pass, fail, raise, loop, exit, print, or are not code at all, are scored
in batches through the real sandbox. The reward must never raise, must return one score per
record with ``0 <= passed <= total`` and a reward in [0, 1], and every verdict other than PASS
must say why (a non-empty ``detail``); an INVALID caused by a helper the tests use but do not
define must say to pass it as ``imports``.

Run: ``python -m pytest tests/fuzz/test_fuzz_code.py -q``; ``-m slow`` for 5,000 batches (about 12,500 records).
"""

from __future__ import annotations

import json

import hypothesis.strategies as st
import pytest
from _fuzz import fast, slow
from hypothesis import example, given

from rewards.code import CodeReward, CodeRewardConfig
from rewards.common import Status
from rewards.sandbox.config import Limits, SandboxConfig

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.integers()
    | st.floats()
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)

PROGRAMS = [
    "def f(*args, **kwargs):\n    return {value!r}\n",
    "def f(x=None, *args, **kwargs):\n    return x\n",
    "def f(*args, **kwargs):\n    raise ValueError('no')\n",
    "def f(*args, **kwargs):\n    while True:\n        pass\n",
    "def f(:\n    return 1\n",
    "def g(*args):\n    return 1\n",
    "import sys\nprint(sys.stdin.read().strip())\n",
    "print(input())\n",
    "print(1 / 0)\n",
    "import sys\nsys.exit(3)\n",
    "import os\nos._exit(0)\n",
    "print('x' * 3_000_000)\n",
    "def f(*args, **kwargs):\n    return object()\n",
    "def f(*args, **kwargs):\n    return [float('nan')]\n",
]


@st.composite
def completions(draw):
    kind = draw(st.sampled_from(["program"] * 8 + ["prose", "unclosed", "chat"]))
    if kind == "prose":
        return draw(st.text(max_size=40))
    body = draw(st.sampled_from(PROGRAMS)).format(value=draw(json_values))
    if kind == "unclosed":
        return f"```python\n{body}"
    text = f"Here it is:\n```python\n{body}```\n"
    return [{"role": "assistant", "content": text}] if kind == "chat" else text


call_specs = st.fixed_dictionaries(
    {
        "fn_name": st.sampled_from(["f", "f", "g", "1bad", "", None, 3]),
        "cases": st.lists(
            st.one_of(
                st.fixed_dictionaries(
                    {"args": st.lists(json_values, max_size=2), "expected": json_values},
                    optional={
                        "kwargs": st.dictionaries(st.sampled_from(["x", "y"]), json_values, max_size=1)
                    },
                ),
                st.fixed_dictionaries({"args": json_values}),  # no expected
                json_values,
            ),
            max_size=3,
        )
        | json_values,
    }
)
stdio_specs = st.fixed_dictionaries(
    {
        "stdio": st.lists(
            st.one_of(
                st.fixed_dictionaries({"stdin": st.text(max_size=10), "stdout": st.text(max_size=10)}),
                st.fixed_dictionaries({"stdin": json_values, "stdout": json_values}),
            ),
            max_size=3,
        )
        | json_values
    }
)
ASSERTS = [
    "assert f(1) == 1\nassert f([1, 2]) == [1, 2]\n",
    "def check(candidate):\n    assert candidate(2) == 2\n",
    "def check(candidate):\n    assert helper(candidate(1)) == 1\n",  # helper only in imports
    "assert f(",
    "import math\nassert f(3) == 3\nx = 1\nassert f(x) == x\n",
    "def check(candidate):\n    raise RuntimeError('broken test')\n",
    "assert f(lambda: 1) == 1\n",
    "pass\n",
]
assert_specs = st.fixed_dictionaries(
    {
        "asserts": st.sampled_from(ASSERTS) | st.text(max_size=20) | json_values,
        "entry_point": st.sampled_from(["f", "f", "", None, "not valid"]),
    },
    optional={
        "imports": st.sampled_from(
            ["def helper(x):\n    return x\n", "def helper(:\n", "", ["import math", "x = 1"]]
        )
        | json_values
    },
)
malformed = st.one_of(
    json_values,
    st.text(max_size=30),
    st.builds(json.dumps, json_values),
    st.dictionaries(st.sampled_from(["tests", "cases", "stdio", "asserts", "fn"]), json_values, max_size=2),
)
specs = st.one_of(call_specs, call_specs, stdio_specs, assert_specs, assert_specs, malformed)
batches = st.lists(
    st.tuples(completions(), specs | st.builds(json.dumps, call_specs | stdio_specs | assert_specs)),
    min_size=1,
    max_size=4,
)


SCORED = [0]  # records scored by the fuzz properties (a batch is one hypothesis example)


@pytest.fixture(scope="module")
def reward():
    limits = Limits(test_timeout_s=0.3, load_timeout_s=1.0)
    r = CodeReward(CodeRewardConfig(sandbox=SandboxConfig(workers=2, limits=limits)))
    yield r
    r.close()
    print(f"code fuzz: {SCORED[0]} records scored")


def check_batch(reward: CodeReward, batch) -> None:
    texts = [c for c, _ in batch]
    tests = [t for _, t in batch]
    # the TRL contract: never raises, one value (or None) per completion
    values = reward(prompts=[""] * len(batch), completions=texts, tests=tests)
    assert len(values) == len(batch) and all(v is None or 0.0 <= v <= 1.0 for v in values)
    from rewards.common import completion_text

    scores = reward.score([completion_text(c) for c in texts], tests)
    assert len(scores) == len(batch)
    SCORED[0] += len(batch)
    for s, (_, spec) in zip(scores, batch):
        assert isinstance(s.status, Status) and 0.0 <= s.reward <= 1.0 and 0 <= s.passed <= s.total, s
        if s.status != Status.PASS:
            assert s.detail.strip(), f"{s.status} without a reason for tests {spec!r:.200}"
        if s.status == Status.INVALID and "helper" in s.detail:
            assert "imports" in s.detail, s.detail


_HELPER = ("```python\ndef f(x):\n    return x\n```", {"asserts": ASSERTS[2], "entry_point": "f"})

test_code_fuzz = fast(40)(
    example(
        batch=[("", {"asserts": "pass", "entry_point": "f", "imports": [None]})]
    )(  # was TypeError out of score()
        example(batch=[_HELPER])(  # INVALID for a helper the tests use: must say to pass it as imports
            example(
                batch=[("```python\nprint(1/0)\n```", {"stdio": [{"stdin": "", "stdout": "1"}]})]
            )(  # reason: exit + stderr
                given(batch=batches)(check_batch)
            )
        )
    )
)
test_code_fuzz_slow = slow(
    given(batch=batches)(check_batch), of=2
)  # batches of 1-4 records: >= 10,000 records


def test_missing_helper_is_invalid_and_says_how_to_supply_it(reward):
    (s,) = reward.score([_HELPER[0]], [_HELPER[1]])
    assert s.status == Status.INVALID and "'helper'" in s.detail and "imports" in s.detail
    (s,) = reward.score([_HELPER[0]], [{**_HELPER[1], "imports": "def helper(x):\n    return x\n"}])
    assert s.status == Status.PASS, s


@pytest.mark.parametrize(
    "program,tests,words",
    [
        (
            "def f(x):\n    return x + 1\n",
            {"fn_name": "f", "cases": [{"args": [1], "expected": 2}, {"args": [2], "expected": 2}]},
            ["test 2 of 2", "expected 2, got 3"],
        ),
        (
            "def f(x):\n    raise KeyError(x)\n",
            {"fn_name": "f", "cases": [{"args": [1], "expected": 1}]},
            ["test 1 of 1", "KeyError"],
        ),
        (
            "print('a')\nprint('c')\n",
            {"stdio": [{"stdin": "", "stdout": "a\nb\n"}]},
            ["line 2", "expected 'b', got 'c'"],
        ),
        ("import sys\nsys.exit(3)\n", {"stdio": [{"stdin": "", "stdout": "1"}]}, ["SystemExit"]),
        ("def f(:\n", {"fn_name": "f", "cases": [{"args": [1], "expected": 1}]}, ["syntax error"]),
    ],
)
def test_reasons_name_the_failing_test(reward, program, tests, words):
    (s,) = reward.score([f"```python\n{program}```"], [tests])
    assert s.status != Status.PASS and all(w in s.detail for w in words), s.detail
