"""The local judge: a real (tiny) model in its worker process, end to end: load, render, generate, parse,
cache, timeouts, and that the caller's process never imports torch for it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from _hostile import HOSTILE, PROBLEMS

from rewards.judge import JudgeConfig, JudgeReward


@pytest.fixture(scope="module")
def scripted_judge(scripted_judge_dir, tmp_path_factory):
    judge = JudgeReward(
        JudgeConfig(model=str(scripted_judge_dir), device="cpu", max_new_tokens=8, batch_size=4),
        cache_dir=tmp_path_factory.mktemp("judge_cache"),
    )
    yield judge
    judge.close()


def test_local_judge_end_to_end_and_cache(scripted_judge):
    names = sorted(HOSTILE)[:6] + ["very_long", "empty"]
    prompts = [PROBLEMS[0]["prompt"]] * len(names)
    comps = [HOSTILE[n] for n in names]
    refs = [PROBLEMS[0]["answer"]] * len(names)
    verdicts = scripted_judge.judge(prompts, comps, refs)
    assert [v.score for v in verdicts] == [0.7] * len(
        names
    )  # the model's own "SCORE: 7", read from its answer
    assert all(v.status == "JUDGED" and v.output.strip() == "SCORE: 7" and not v.cached for v in verdicts)
    assert scripted_judge(prompts, comps, answer=refs) == [0.7] * len(names)  # TRL contract, from the cache
    assert scripted_judge.stats["cache_hits"] == len(names)


def test_worker_renders_one_user_turn_for_every_hostile_completion(scripted_judge_dir, smollm2_tokenizer):
    """The worker's own `render` (what the model reads), run here on the same model directory."""
    from rewards.judge import worker
    from rewards.judge.local import DEFAULT_LOADER
    from rewards.judge.types import JudgeItem

    spec = {
        "model": str(scripted_judge_dir),
        "loader": DEFAULT_LOADER,
        "device": "cpu",
        "dtype": "auto",
        "threads": 1,
    }
    worker.ensure_loaded(spec)
    tok = smollm2_tokenizer
    start, end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    for score_first in (False, True):
        settings = {"rubric": "r", "max_chars": 8000, "score_first": score_first}
        for name, completion in HOSTILE.items():
            text, why = worker.render(
                settings, JudgeItem(PROBLEMS[1]["prompt"], PROBLEMS[1]["answer"], completion)
            )
            assert text is not None, (name, why)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert ids.count(start) == 3 and ids.count(end) == 2, (
                name
            )  # system, user, then the judge's own turn
            assert text.count("<|im_start|>user") == 1, name


def test_batch_past_its_deadline_times_out_to_none(random_judge_dir, tmp_path):
    judge = JudgeReward(
        JudgeConfig(
            model=str(random_judge_dir), device="cpu", max_new_tokens=4000, timeout_s=1.0, batch_size=2
        ),
        cache_dir=tmp_path,
    )
    try:
        verdicts = judge.judge(["p", "p"], ["a", "b"], [None, None])
        assert [(v.score, v.status) for v in verdicts] == [(None, "TIMEOUT")] * 2
        assert judge.backend.restarts == 1 and len(judge.cache) == 0
    finally:
        judge.close()


def test_bad_model_path_fails_when_the_judge_is_built(tmp_path):
    with pytest.raises(RuntimeError, match="cannot load the judge model"):
        JudgeReward(JudgeConfig(model=str(tmp_path / "missing"), device="cpu", load_timeout_s=120))


def test_cut_off_answer_is_none_and_torch_stays_out_of_the_caller(scripted_judge_dir, tmp_path):
    """Two tokens are not enough for "SCORE: 7": the answer does not parse, so the reward is None (never 0 or 1),
    the verdict is cached (the judge said it), and the calling process never imported torch or transformers."""
    code = textwrap.dedent(f"""
        import sys
        from rewards.judge import JudgeConfig, JudgeReward
        judge = JudgeReward(JudgeConfig(model={str(scripted_judge_dir)!r}, device="cpu", max_new_tokens=2),
                            cache_dir={str(tmp_path)!r})
        (v,) = judge.judge(["What is 2+2?"], ["4"], ["4"])
        print(v.score, v.status, repr(v.output), len(judge.cache), "torch" in sys.modules, "transformers" in sys.modules)
        judge.close()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "None UNPARSEABLE 'SCORE' 1 False False"
