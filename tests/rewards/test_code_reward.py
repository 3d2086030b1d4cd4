"""The code reward end to end: extraction, the three test formats, statuses, TRL contract."""

import json

import pytest

from rewards.code import CodeReward, CodeRewardConfig, code_reward, score_records
from rewards.code.extract import extract_code
from rewards.common import Status
from rewards.sandbox.config import Limits, SandboxConfig

TESTS = {"fn_name": "f", "cases": [{"args": [i], "kwargs": {}, "expected": i * 3 + 2} for i in range(5)]}


def py(src: str) -> str:
    return f"<think>plan</think>\n```python\n{src}\n```"


@pytest.fixture(scope="module")
def reward():
    r = CodeReward(CodeRewardConfig(sandbox=SandboxConfig(workers=2, limits=Limits(test_timeout_s=1.0))))
    yield r
    r.close()


def test_extract_last_python_block_and_truncated_fence():
    text = "```python\ndef f(): return 1\n```\ntext\n```py\ndef f(): return 2\n```\n```\nnot python\n```"
    assert extract_code(text) == "def f(): return 2"
    assert extract_code(text, "first_python") == "def f(): return 1"
    assert extract_code(text, "last_any") == "not python"
    assert extract_code("```python\ndef f(x):\n    return x") is None  # truncated
    with pytest.raises(ValueError, match="choose one of"):
        extract_code(text, "nope")


def test_trl_contract_demo_shape():
    good = "<think>multiply then add</think>\n```python\ndef f(x):\n    return x*3+2\n```"
    out = code_reward(
        ["p"] * 4,
        [good, py("def f(x):\n    return x*3+1"), "no code", good],
        tests=[TESTS, json.dumps(TESTS), TESTS, TESTS],
        kind=["code", "code", "code", "math"],
    )
    assert out == [1.0, 0.0, 0.0, None]
    assert code_reward.__name__ == "code_reward" and CodeReward.__name__ == "CodeReward"
    assert CodeReward().__name__ == "code_reward"


def test_conversational_completion(reward):
    comp = [{"role": "assistant", "content": py("def f(x):\n    return x*3+2")}]
    assert reward(["p"], [comp], tests=[TESTS]) == [1.0]


@pytest.mark.parametrize(
    "src,status,passed",
    [
        ("def f(x):\n    return x*3+2", Status.PASS, 5),
        ("def f(x):\n    return 2 if x == 0 else 0", Status.FAIL, 1),
        ("def f(x) return", Status.SYNTAX_ERROR, 0),
        ("def f(x):\n    return 1/0", Status.RUNTIME_ERROR, 0),
        ("raise ValueError", Status.RUNTIME_ERROR, 0),
        ("def g(x):\n    return x", Status.RUNTIME_ERROR, 0),
        ("def f(x):\n    while True: pass", Status.TIMEOUT, 0),
        ("def f(x):\n    return bytearray(1 << 40)", Status.MEMORY, 0),
        ("def f(x):\n    print('x' * 4096 * 1024)", Status.OUTPUT_LIMIT, 0),
        ("def f(x):\n    return float(x*3+2)", Status.FAIL, 0),  # type-aware: int expected
        ("def f(x):\n    return True if x == 0 else x*3+2", Status.PASS, 5),  # wait: 0*3+2 = 2, not True
    ],
)
def test_statuses(reward, src, status, passed):
    if "True if" in src:  # True is not 2: type-aware comparison fails the first case
        status, passed = Status.FAIL, 4
    [s] = reward.score([py(src)], [TESTS])
    assert (s.status, s.passed, s.total) == (status, passed, 5)
    assert s.reward == pytest.approx(passed / 5)


def test_all_or_nothing():
    r = CodeReward(CodeRewardConfig(all_or_nothing=True, sandbox=SandboxConfig(workers=1)))
    try:
        assert r(
            ["p"] * 2,
            [py("def f(x):\n    return 2 if x == 0 else x*3+2"), py("def f(x):\n    return 2")],
            tests=[TESTS, TESTS],
        ) == [1.0, 0.0]
    finally:
        r.close()


def test_stdio(reward):
    tests = {"stdio": [{"stdin": "3\n", "stdout": "6\n"}, {"stdin": "4\n5\n", "stdout": "8\n10"}]}
    prog = "import sys\nfor line in sys.stdin:\n    print(int(line) * 2)"
    [ok, short, extra] = reward.score([py(prog), py("print(6)"), py(prog + "\nprint('junk')")], [tests] * 3)
    assert (ok.status, ok.passed) == (Status.PASS, 2)
    assert (short.passed, extra.passed) == (1, 0)  # exact line count: a correct prefix is not enough


def test_asserts_mbpp_converted_and_harness(reward):
    add = py("def add(a, b):\n    return a + b")
    mbpp = {
        "asserts": "assert add(1, 2) == 3\nassert add(2, 2) == 5\nassert add(1.5, 1) == 2.5",
        "entry_point": "add",
    }
    he = {
        "asserts": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert abs(candidate(.5, .25) - .75) < 1e-9",
        "entry_point": "add",
    }
    mixed = {
        "asserts": "import math\nassert math.isclose(add(1, 2), 3)\nassert add(*[1, 1]) == 2",
        "entry_point": "add",
    }
    s1, s2, s3 = reward.score([add] * 3, [mbpp, he, mixed])
    assert (s1.status, s1.passed, s1.total) == (Status.FAIL, 2, 3)
    assert (s2.status, s2.passed, s2.total) == (Status.PASS, 1, 1)
    assert (s3.status, s3.passed, s3.total) == (Status.PASS, 2, 2)


def test_asserts_unsafe_reported_invalid(reward):
    tests = {"asserts": "assert apply(lambda x: x + 1, 2) == 3", "entry_point": "apply"}
    helper = {"asserts": "assert helper(2) == 3 and apply(2) == 3", "entry_point": "apply"}
    src = py(
        "def apply(f, x=None):\n    return f(x) if callable(f) else f + 1\ndef helper(x):\n    return x + 1"
    )
    s1, s2 = reward.score([src, src], [tests, helper])
    assert s1.status == Status.INVALID and s1.reward == 0.0
    assert s2.status == Status.INVALID


def test_invalid_tests_and_no_code(reward):
    s1, s2, s3 = reward.score([py("x=1"), py("x=1"), "no code here"], ["{not json", {"weird": 1}, TESTS])
    assert s1.status == s2.status == Status.INVALID
    assert (s3.status, s3.total) == (Status.NO_CODE, 5)


def test_score_records_shape():
    out = score_records(
        [
            {"completion": py("def f(x):\n    return x*3+2"), "tests": TESTS},
            {"completion": "nothing", "tests": TESTS},
        ],
        workers=1,
    )
    assert out == [
        {"reward": 1.0, "status": "PASS", "passed": 5, "total": 5, "detail": ""},
        {"reward": 0.0, "status": "NO_CODE", "passed": 0, "total": 5, "detail": "no fenced code block"},
    ]
