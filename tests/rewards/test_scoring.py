"""`selfdistill score` (rewards.scoring.main): math and code records, malformed lines, order, extra keys."""

import json

from rewards.scoring import main

CODE_TESTS = {"fn_name": "f", "cases": [{"args": [i], "kwargs": {}, "expected": i * 3 + 2} for i in range(3)]}


def _code(src: str) -> str:
    return f"<think>plan</think>\n```python\n{src}\n```"


def _run(tmp_path, lines: list[str], *extra: str) -> tuple[int, list[dict]]:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc = main([str(src), "-o", str(dst), *extra])
    return rc, [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]


def test_math_records_keys_carried_and_order_kept(tmp_path):
    recs = [
        {
            "kind": "math",
            "completion": "<think>a</think>\\boxed{\\frac{1}{2}}",
            "answer": "0.5",
            "id": 7,
            "meta": {"m": 1},
        },
        {"kind": "math", "completion": "\\boxed{3 or 4}", "answer": "3", "id": 8},
        {"kind": "math", "completion": "no box", "answer": "3", "id": 9},
        {"kind": "math", "completion": "\\boxed{4}", "answer": "3", "id": 10},
        {"kind": "math", "completion": "\\boxed{4}", "answer": "", "id": 11},
    ]
    rc, out = _run(tmp_path, [json.dumps(r) for r in recs], "--workers", "1")
    assert rc == 0
    assert [o["id"] for o in out] == [7, 8, 9, 10, 11]
    assert [o["status"] for o in out] == ["PASS", "AMBIGUOUS", "NO_ANSWER", "FAIL", "INVALID"]
    assert [o["reward"] for o in out] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert out[0]["meta"] == {"m": 1} and out[0]["completion"] == recs[0]["completion"]


def test_malformed_lines_reported_with_line_numbers_and_rest_scored(tmp_path, capsys):
    lines = [
        json.dumps({"kind": "math", "completion": "\\boxed{2}", "answer": "2"}),
        "{not json",
        "",  # blank: skipped silently
        json.dumps([1, 2]),
        json.dumps({"completion": "\\boxed{2}", "answer": "2"}),  # no kind
        json.dumps({"kind": "poetry", "completion": "x"}),
        json.dumps({"kind": "math", "completion": "\\boxed{5}", "answer": "5"}),
    ]
    rc, out = _run(tmp_path, lines, "--workers", "1")
    err = capsys.readouterr().err
    assert rc == 0
    assert len(out) == 6  # one output line per non-blank input line, in order
    assert out[0]["status"] == "PASS" and out[5]["status"] == "PASS"
    assert out[1]["status"] == "INVALID" and out[1]["line"] == 2 and out[1]["raw"] == "{not json"
    assert out[2]["status"] == "INVALID" and out[2]["line"] == 4
    assert out[3]["status"] == "INVALID" and "kind" in out[3]["detail"]
    assert out[4]["status"] == "INVALID" and "poetry" in out[4]["detail"]
    assert "line 2: not valid JSON" in err and "line 4: expected a JSON object" in err
    assert "6 records" in err


def test_code_and_math_records_in_one_file(tmp_path):
    lines = [
        json.dumps(
            {
                "kind": "code",
                "completion": _code("def f(x):\n    return x*3+2"),
                "tests": CODE_TESTS,
                "id": "c1",
            }
        ),
        json.dumps({"kind": "math", "completion": "\\boxed{7}", "answer": "7", "id": "m1"}),
        json.dumps(
            {"kind": "code", "completion": _code("def f(x):\n    return x"), "tests": CODE_TESTS, "id": "c2"}
        ),
    ]
    rc, out = _run(tmp_path, lines, "--workers", "1")
    assert rc == 0
    assert [o["id"] for o in out] == ["c1", "m1", "c2"]
    assert out[0]["reward"] == 1.0 and out[0]["status"] == "PASS" and out[0]["passed"] == out[0]["total"] == 3
    assert out[1]["reward"] == 1.0 and out[1]["status"] == "PASS"
    assert out[2]["reward"] < 1.0 and out[2]["status"] != "PASS"
    assert all(0.0 <= o["reward"] <= 1.0 for o in out)


def test_unreadable_input_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_math_text_fallback_flag_reads_prose_answers_only_when_asked(tmp_path):
    rec = {"kind": "math", "completion": "Adding them up, the final answer is 42.", "answer": "42"}
    _, off = _run(tmp_path, [json.dumps(rec)], "--workers", "1")
    _, on = _run(tmp_path, [json.dumps(rec)], "--workers", "1", "--math-text-fallback")
    _, after = _run(tmp_path, [json.dumps(rec)], "--workers", "1")  # the flag does not leak into later calls
    assert [off[0]["status"], on[0]["status"], after[0]["status"]] == ["NO_ANSWER", "PASS", "NO_ANSWER"]


def test_every_line_has_a_detail_and_every_non_pass_says_why(tmp_path):
    """Issue 18: `detail` on every verdict of every kind; code FAIL names the failing test."""
    wrong = {"fn_name": "f", "cases": [{"args": [1], "expected": 5}]}
    recs = [
        {"kind": "math", "completion": "\\boxed{4}", "answer": "3"},
        {"kind": "math", "completion": "\\boxed{3}", "answer": "3"},
        {"kind": "code", "completion": _code("def f(x):\n    return x * 3 + 2"), "tests": CODE_TESTS},
        {"kind": "code", "completion": _code("def f(x):\n    return x"), "tests": wrong},
        {"kind": "code", "completion": "no code", "tests": wrong},
        {"kind": "code", "completion": _code("def f(x):\n    return x"), "tests": {"stdio": "nope"}},
        {"kind": "nope"},
    ]
    rc, out = _run(tmp_path, [json.dumps(r) for r in recs], "--workers", "1")
    assert rc == 0 and all(isinstance(o.get("detail"), str) for o in out)
    assert [o["status"] for o in out] == ["FAIL", "PASS", "PASS", "FAIL", "NO_CODE", "INVALID", "INVALID"]
    assert all(o["detail"].strip() for o in out if o["status"] != "PASS")
    assert "'4'" in out[0]["detail"] and "expected 5, got 1" in out[3]["detail"]


def test_a_plugin_scorer_without_reasons_still_gets_a_detail(tmp_path):
    from rewards import registry

    registry.register_scorer("silent", "tests.rewards.test_scoring:_silent_scorer")
    try:
        from rewards.scoring import score_all

        out = score_all([{"kind": "silent"}], workers=1)
    finally:
        registry._SCORERS.pop("silent", None)
    assert out == [{"reward": 0.0, "status": "FAIL", "detail": "FAIL: the scorer gave no reason"}]


def _silent_scorer(records, workers):
    return [{"reward": 0.0, "status": "FAIL"} for _ in records]
