"""Dense students merged from an MoE: exact on an upcycled model, usage-weighted otherwise, refused where inexact."""

import pytest
import torch
from test_upcycle import tiny_dense

from selfdistill.config import StudentConfig
from selfdistill.configio import ConfigError
from selfdistill.models.merging import dense_counterpart, expert_usage, merge_experts
from selfdistill.models.upcycle import upcycle_model


def _batches(seed=0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 97, (4, 12), generator=gen)
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0
    return [
        {"input_ids": ids[:2], "attention_mask": mask[:2]},
        {"input_ids": ids[2:], "attention_mask": mask[2:]},
    ]


@pytest.mark.parametrize(
    ("dense_type", "expected"), [("llama", "llama"), ("mistral", "mistral"), ("qwen3", "qwen3")]
)
def test_upcycle_then_merge_gives_back_the_dense_logits(dense_type, expected):
    dense = tiny_dense(dense_type)
    moe = upcycle_model(dense, experts=4, top_k=2, router_std=0.5, seed=1)
    usage = expert_usage(moe, _batches())
    assert set(usage) == {0, 1, 2} and all(abs(float(u.sum()) - 1) < 1e-6 for u in usage.values())
    assert any(float(u.max() - u.min()) > 0.01 for u in usage.values())  # a real, uneven measurement
    merged = merge_experts(moe, usage)
    assert merged.config.model_type == expected == dense_counterpart(moe.config)
    assert merged.num_parameters() == dense.num_parameters()
    ids = torch.randint(0, 97, (3, 10), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        diff = (merged(input_ids=ids).logits - dense(input_ids=ids).logits).abs().max().item()
    assert diff <= 1e-5, diff


def test_merged_mlp_is_the_usage_weighted_average_of_distinct_experts():
    moe = upcycle_model(tiny_dense("qwen3"), experts=3, top_k=1, expert_noise=0.5, seed=2)
    usage = {i: torch.tensor([0.5, 0.3, 0.2]) for i in range(3)}
    merged = merge_experts(moe, usage)
    gate_up, down = moe.model.layers[1].mlp.experts.gate_up_proj, moe.model.layers[1].mlp.experts.down_proj
    inter = gate_up.shape[1] // 2
    want_gate = 0.5 * gate_up[0, :inter] + 0.3 * gate_up[1, :inter] + 0.2 * gate_up[2, :inter]
    want_down = 0.5 * down[0] + 0.3 * down[1] + 0.2 * down[2]
    torch.testing.assert_close(merged.model.layers[1].mlp.gate_proj.weight, want_gate)
    torch.testing.assert_close(merged.model.layers[1].mlp.down_proj.weight, want_down)
    with pytest.raises(ValueError, match="usage of layer 0 must be 3 shares summing to 1"):
        merge_experts(moe, {i: torch.tensor([0.5, 0.5, 0.5]) for i in range(3)})


def test_inexact_families_are_refused_by_name():
    moe = upcycle_model(tiny_dense("qwen2"), experts=2, top_k=1)
    with pytest.raises(
        ValueError, match="cannot merge the experts of a 'qwen2_moe' model.*supported: mixtral"
    ):
        merge_experts(moe)


def test_config_requires_a_path_and_plans_after_the_policy():
    with pytest.raises(ConfigError, match="path"):
        StudentConfig(name="m", source="merge_experts")
    with pytest.raises(ConfigError, match="usage_prompts"):
        StudentConfig(name="m", source="merge_experts", path="policy", usage_prompts=0)
    from selfdistill.config import load_config
    from selfdistill.planning import plan

    cfg = load_config(
        overrides=[
            "distill.students.0.source=merge_experts",
            "distill.students.0.path=policy",
            "distill.students.0.num_layers=1",
        ]
    )
    base = next(s for s in plan(cfg) if s.action == "student_base")
    assert base.inputs == {"moe": "r3.sft"}


def test_student_base_merged_from_the_final_policy(tmp_path):
    """The pipeline step: the final policy (a tiny Qwen3-MoE) merged into a dense Qwen3, cut to 1 layer, saved."""
    from _run_helpers import small_config

    from selfdistill.config import TinyModelConfig
    from selfdistill.models.loading import load_model, save_model
    from selfdistill.models.tiny import build_tiny
    from selfdistill.models.tokenizer import build_char_tokenizer
    from selfdistill.pipeline import Run, execute
    from selfdistill.planning import plan

    cfg = small_config(
        tmp_path,
        "distill.students.0.source=merge_experts",
        "distill.students.0.path=policy",
        "distill.students.0.num_layers=1",
        "distill.students.0.usage_prompts=8",
    )
    tokenizer = build_char_tokenizer()
    policy = build_tiny(
        TinyModelConfig(
            arch="qwen3_moe",
            hidden_size=32,
            num_layers=2,
            num_heads=4,
            intermediate_size=32,
            num_experts=4,
            experts_per_token=2,
        ),
        tokenizer,
        0,
    )
    run = Run(cfg)
    run.finish("r1.sft", {"model_path": str(save_model(policy, tokenizer, tmp_path / "policy"))})
    step = next(s for s in plan(cfg) if s.action == "student_base")
    out = execute(run, step)
    student, _ = load_model(out.model_path, device="cpu")
    assert student.config.model_type == "qwen3" and student.config.num_hidden_layers == 1
    assert out.metrics["usage_prompts"] == 8 and set(out.metrics["expert_usage"]) == {"0", "1"}
    assert abs(sum(out.metrics["expert_usage"]["0"]) - 1) < 1e-3
    assert out.metrics["params"] == student.num_parameters() < policy.num_parameters()
