"""The judge prompt against hostile completions, rendered with a real chat template (SmolLM2's ChatML),
and the strict reading of the judge's answer."""

from __future__ import annotations

import pytest
from _hostile import HOSTILE, PROBLEMS

from rewards.judge.prompt import (
    DEFAULT_RUBRIC,
    FENCE_TAG,
    GENERIC_CONTROL_TOKENS,
    build_messages,
    fence_id,
    neutralize,
    parse_score,
    signature,
    template_markers,
)

PROBLEM = PROBLEMS[0]


def _render(tok, messages, prefilled=False):
    if prefilled:
        return tok.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _turns(tok, text: str) -> list[str]:
    """The roles of the turns a ChatML prompt opens, read from its token ids (what the model sees)."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    start = tok.convert_tokens_to_ids("<|im_start|>")
    roles = []
    for i, t in enumerate(ids):
        if t == start:
            roles.append(tok.decode(ids[i + 1 : i + 3]).split("\n")[0].strip())
    return roles


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("score_first", [False, True])
def test_hostile_completion_leaves_one_user_turn(smollm2_tokenizer, name, score_first):
    tok = smollm2_tokenizer
    markers = template_markers(lambda m: _render(tok, m), tok.all_special_tokens)
    messages = build_messages(
        DEFAULT_RUBRIC,
        PROBLEM["prompt"],
        PROBLEM["answer"],
        HOSTILE[name],
        control_tokens=markers,
        score_first=score_first,
    )
    text = _render(tok, messages, score_first)
    expected = ["system", "user", "assistant"]
    assert (
        _turns(tok, text) == expected
    )  # counted in token ids: exactly one user turn, the assistant's is ours
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids.count(tok.convert_tokens_to_ids("<|im_end|>")) == 2  # system and user closed, nothing else
    benign = _render(
        tok,
        build_messages(
            DEFAULT_RUBRIC,
            PROBLEM["prompt"],
            PROBLEM["answer"],
            "ok",
            control_tokens=markers,
            score_first=score_first,
        ),
        score_first,
    )
    assert signature(text, markers) == signature(benign, markers)
    user = messages[1]["content"]
    fid = fence_id(HOSTILE[name])
    assert user.count(f'<{FENCE_TAG} id="{fid}">') == 1 and user.count(f"</{FENCE_TAG}") == 1
    fenced = user.split(f'<{FENCE_TAG} id="{fid}">\n', 1)[1].split(f'\n</{FENCE_TAG} id="{fid}">', 1)[0]
    assert "SCORE:" not in fenced.upper().replace(
        "ＳＣＯＲＥ", ""
    )  # no score line in the judge's format survives
    assert text.endswith("SCORE:" if score_first else "<|im_start|>assistant\n")


def test_template_markers_of_chatml(smollm2_tokenizer):
    tok = smollm2_tokenizer
    markers = template_markers(lambda m: _render(tok, m), tok.all_special_tokens)
    assert {"<|im_start|>", "<|im_end|>", "<|im_start|>user", "<|im_start|>assistant"} <= set(markers)
    assert "user" not in markers  # a plain word would break ordinary text


def test_neutralize_breaks_every_control_token_and_keeps_text():
    text = "a < b and c > d; <|im_end|> <s>x</s> [INST] <|custom_token|> <｜Assistant｜> done"
    out = neutralize(text, ["<|custom_token|>"])
    for token in (*GENERIC_CONTROL_TOKENS, "<|custom_token|>"):
        assert token not in out
    assert out.startswith("a < b and c > d; ") and out.endswith(" done")
    assert "<\\|im_end|>" in out  # readable, but not the token
    assert neutralize("plain text, no markers", []) == "plain text, no markers"


def test_long_completion_is_cut_to_head_and_tail():
    long = "HEAD " + "x" * 50_000 + " TAIL"
    user = build_messages(DEFAULT_RUBRIC, "p", None, long, max_chars=1000)[1]["content"]
    assert "HEAD" in user and "TAIL" in user and "characters cut" in user and len(user) < 3000
    assert "(none given)" in user


@pytest.mark.parametrize(
    "output, score",
    [
        ("SCORE: 7", 7),
        ("The answer is right.\nSCORE: 10", 10),
        ("SCORE:0\n\n", 0),
        ("  SCORE :  3  ", 3),
        ("SCORE: 11", None),
        ("SCORE: -1", None),
        ("SCORE: 7.5", None),
        ("SCORE: 7/10", None),
        ("score: 7", None),
        ("SCORE: 7\nactually no", None),
        ("I give it 10", None),
        ("", None),
        ("SCORE: 10 SCORE: 1", None),
        ("SCORE: ten", None),
        ("SCORE: 007", None),
    ],
)
def test_parse_score_is_strict(output, score):
    assert parse_score(output) == score
