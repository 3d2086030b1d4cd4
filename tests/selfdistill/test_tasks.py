"""Task sources: seeded generators, worked solutions, files, and the provably disjoint split."""

import json
import random
from types import SimpleNamespace

import pytest

from rewards.math import verify
from selfdistill.configio import ConfigError
from selfdistill.tasks import code_gen, math_gen
from selfdistill.tasks.base import Task, prompt_hash, split_tasks
from selfdistill.tasks.files import load_file_tasks, load_hf_tasks


def src(**kw):
    base = dict(
        type="jsonl",
        n=100,
        path=None,
        split="train",
        subset=None,
        kind="math",
        prompt_field="prompt",
        answer_field="answer",
        tests_field="tests",
        difficulty=1,
    )
    return SimpleNamespace(**{**base, **kw})


def test_generators_are_seeded_and_distinct():
    a = math_gen.generate_math_tasks(src(n=300), 0)
    b = math_gen.generate_math_tasks(src(n=300), 0)
    c = math_gen.generate_math_tasks(src(n=300), 1)
    assert [t.prompt for t in a] == [t.prompt for t in b]
    assert [t.prompt for t in a] != [t.prompt for t in c]
    assert len({t.prompt for t in a}) == 300
    assert {t.source.split(":")[1] for t in a} == {"arith", "frac", "linear"}


def test_correct_worked_solutions_earn_reward_and_mistakes_do_not():
    rng = random.Random(0)
    tasks = math_gen.generate_math_tasks(src(n=90), 3)
    wrong_but_rewarded = 0
    for t in tasks:
        assert verify(math_gen.worked_solution(t, rng, False), t.answer)[0] == 1.0, t.prompt
        wrong_but_rewarded += verify(math_gen.worked_solution(t, rng, True), t.answer)[0] == 1.0
    assert wrong_but_rewarded <= 3  # a slip can cancel out by chance (e.g. 4/8 -> 1/2), rarely


def test_code_tasks_expected_values_match_reference_expression():
    tasks = code_gen.generate_code_tasks(src(n=200), 0)
    for t in tasks[:50]:
        _, name, a, b = t.source.split(":")
        tpl = next(x for x in code_gen.TEMPLATES if x.name == name)
        for case in t.tests["cases"]:
            (arg,) = case["args"]
            assert tpl.fn(arg, int(a), int(b)) == case["expected"]
        assert "```python" in code_gen.worked_solution(t, random.Random(0))


def test_split_is_disjoint_and_deterministic():
    tasks = math_gen.generate_math_tasks(src(n=500), 0) + code_gen.generate_code_tasks(src(n=300), 0)
    s1 = split_tasks(tasks + tasks[:50], 0.2, 60)
    s2 = split_tasks(tasks, 0.2, 60)
    assert s1.info["overlap"] == 0 and s1.info["n_duplicates_dropped"] == 50
    assert not {prompt_hash(t.prompt) for t in s1.train} & {prompt_hash(t.prompt) for t in s1.eval}
    assert s1.info["eval_digest"] == s2.info["eval_digest"]
    assert len(s1.eval) == 60 and s1.info["eval_by_kind"] == {"code": 30, "math": 30}


def test_jsonl_tasks_and_missing_columns(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps({"question": f"{i}+1=?", "solution": str(i + 1)}) for i in range(5)))
    tasks = load_file_tasks(src(path=str(path), prompt_field="question", answer_field="solution"), 0)
    assert [t.answer for t in tasks] == ["1", "2", "3", "4", "5"]
    with pytest.raises(
        ConfigError,
        match=r"missing column\(s\) \['prompt', 'answer'\].*columns present: \['question', 'solution'\]",
    ):
        load_file_tasks(src(path=str(path)), 0)


def test_jsonl_bad_line_and_bad_tests(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "answer": "1"}\n{not json\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: not valid JSON"):
        load_file_tasks(src(path=str(path)), 0)
    code = tmp_path / "code.jsonl"
    code.write_text(json.dumps({"prompt": "write f", "tests": "{oops"}) + "\n")
    with pytest.raises(ConfigError, match="'tests' is not valid JSON"):
        load_file_tasks(src(path=str(code), kind="code"), 0)


def test_parquet_tasks(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tests = json.dumps({"fn_name": "f", "cases": [{"args": [1], "expected": 2}]})
    pq.write_table(pa.table({"prompt": ["f(x): x plus 1"], "tests": [tests]}), tmp_path / "t.parquet")
    (task,) = load_file_tasks(src(type="parquet", path=str(tmp_path / "t.parquet"), kind="code"), 0)
    assert task.kind == "code" and task.tests["fn_name"] == "f"


def test_missing_file_and_offline_hub(monkeypatch):
    with pytest.raises(ConfigError, match="task file not found"):
        load_file_tasks(src(path="/nope.jsonl"), 0)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ConfigError, match="cannot load Hugging Face dataset 'nobody/no-such-dataset'.*Offline"
    ):
        load_hf_tasks(src(type="hf", path="nobody/no-such-dataset"), 0)


def test_task_rows_for_trl():
    t = Task("id", "code", "f(x): x plus 1", tests={"fn_name": "f", "cases": []})
    row = t.to_row("chat")
    assert row["prompt"][0]["role"] == "user" and json.loads(row["tests"])["fn_name"] == "f"
