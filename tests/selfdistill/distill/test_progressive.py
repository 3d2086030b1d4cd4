"""Progressive expert distillation: the schedule, the MoE-block capture and the objective's expert phase."""

from __future__ import annotations

import pytest
import torch
from _distill_helpers import ROWS, changed, state_copy, tiny_pair

from selfdistill.config import DistillConfig, SFTConfig
from selfdistill.configio import from_dict
from selfdistill.distill.hidden_align import HiddenAligner
from selfdistill.distill.methods import build_objective
from selfdistill.distill.objective import Objective, batch_loss
from selfdistill.distill.progressive import ProgressiveSchedule, capture_mlps, default_pairs
from selfdistill.distill.trainer import distill_trainer_class
from selfdistill.stages.distill import planned_steps
from selfdistill.stages.sft import sft_args, tokenize_rows


def test_default_pairs_span_both_depths():
    assert default_pairs(3, 3) == [[0, 0], [1, 1], [2, 2]]
    assert default_pairs(2, 30) == [[0, 0], [1, 29]]
    assert default_pairs(4, 8) == [[0, 0], [1, 2], [2, 5], [3, 7]]
    assert default_pairs(1, 5) == [[0, 4]]


def test_schedule_unlocks_shallow_groups_first_then_stops():
    s = ProgressiveSchedule.build(n_student=4, n_teacher=8, groups=2, total_steps=100, fraction=0.6)
    assert s.progressive_steps == 60 and s.layers() == ([0, 1, 2, 3], [0, 2, 5, 7])
    assert s.active(0) == [0, 1] and s.active(29) == [0, 1]  # group 0: the two shallow pairs
    assert s.active(30) == [0, 1, 2, 3] and s.active(59) == [0, 1, 2, 3]
    assert s.active(60) == [] and s.active(1000) == []  # the final stage: the output objective alone
    three = ProgressiveSchedule.build(3, 3, groups=3, total_steps=9, fraction=1.0)
    assert [three.active(k) for k in (0, 3, 6, 9)] == [[0], [0, 1], [0, 1, 2], []]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": 5}, r"progressive_groups must be in \[1, 4\]"),
        ({"groups": 0}, "progressive_groups"),
        ({"fraction": 0.0}, "progressive_fraction"),
        ({"pairs": [[0, 9]]}, "teacher layer 9 is out of range for 8 layers"),
    ],
)
def test_schedule_errors_name_the_setting(kwargs, message):
    args = {"n_student": 4, "n_teacher": 8, "groups": 2, "total_steps": 10, "fraction": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        ProgressiveSchedule.build(**args)


def _batch(tok):
    ids = [tok(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"] for r in ROWS[:2]]
    width = max(map(len, ids))
    input_ids = torch.full((2, width), tok.pad_token_id)
    mask = torch.zeros_like(input_ids)
    for b, i in enumerate(ids):
        input_ids[b, : len(i)], mask[b, : len(i)] = torch.tensor(i), 1
    labels = input_ids.masked_fill(mask == 0, -100)
    labels[:, :6] = -100
    return input_ids, mask, labels


def test_moe_block_capture_is_the_routed_mixture():
    tok, teacher, _ = tiny_pair()
    ids, mask, _ = _batch(tok)
    with capture_mlps(teacher, [1]) as got:
        teacher(input_ids=ids, attention_mask=mask)
    block = teacher.model.layers[1]
    seen = {}
    handle = block.post_attention_layernorm.register_forward_hook(lambda m, a, o: seen.setdefault("x", o))
    teacher(input_ids=ids, attention_mask=mask)
    handle.remove()
    ref = block.mlp(seen["x"])
    torch.testing.assert_close(got[1], ref[0] if isinstance(ref, tuple) else ref)


def test_expert_phase_regresses_blocks_then_final_stage_uses_the_output_objective():
    tok, teacher, student = tiny_pair()
    teacher.requires_grad_(False)
    ids, mask, labels = _batch(tok)
    n_s, n_t = len(student.model.layers), len(teacher.model.layers)
    schedule = ProgressiveSchedule.build(n_s, n_t, groups=3, total_steps=6, fraction=0.5)
    experts = HiddenAligner([list(p) for p in schedule.pairs], 32, 64, DistillConfig().progressive_loss)
    obj = Objective(kind="distill", kernels="eager", hard_weight=0.5, schedule=schedule, experts=experts)
    loss0, parts0 = batch_loss(student, teacher, ids, mask, labels, obj, step=0)
    assert set(parts0) == {"main", "experts"} and parts0["experts"] > 0
    ce = batch_loss(student, teacher, ids, mask, labels, Objective(kind="lm", kernels="eager"))[0]
    assert parts0["main"] == pytest.approx(
        ce.item(), rel=1e-6
    )  # the expert phase's main term is the trace CE
    loss0.backward()
    assert (
        experts.proj[0].weight.grad is not None and experts.proj[2].weight.grad is None
    )  # only group 0 counts
    _, parts_final = batch_loss(student, teacher, ids, mask, labels, obj, step=3)
    kd = batch_loss(
        student, teacher, ids, mask, labels, Objective(kind="distill", kernels="eager", hard_weight=0.5)
    )[0]
    assert set(parts_final) == {"main"} and parts_final["main"] == pytest.approx(kd.item(), rel=1e-6)


def _block_regression(objective, student, teacher, ids, mask, scale: float) -> float:
    """The objective's block regression over every schedule pair, on the real MLP outputs times ``scale``."""
    s_layers = [s for s, _ in objective.schedule.pairs]
    t_layers = [t for _, t in objective.schedule.pairs]
    with torch.no_grad(), capture_mlps(student, s_layers) as ms, capture_mlps(teacher, t_layers) as mt:
        student(input_ids=ids, attention_mask=mask)
        teacher(input_ids=ids, attention_mask=mask)
        return objective.experts(
            [scale * ms[i] for i in s_layers], [scale * mt[j] for j in t_layers], mask.bool()
        ).item()


@pytest.mark.parametrize(("loss", "growth"), [(None, 1.0), ("mse", 100.0)])
def test_block_regression_is_scale_free_by_default(loss, growth):
    """The default (nmse) regression does not grow with the MLP outputs' scale: a plain MSE reached 13-21
    against a CE of ~1.2 on SmolLM2 and swamped it. ``progressive_loss: mse`` keeps the old, scale^2 one."""
    tok, teacher, student = tiny_pair()
    ids, mask, _ = _batch(tok)
    dcfg = DistillConfig(method="progressive_experts", **({"progressive_loss": loss} if loss else {}))
    objective = build_objective("progressive_experts", dcfg, "eager", student, teacher, total_steps=4)
    base = _block_regression(objective, student, teacher, ids, mask, 1.0)
    scaled = _block_regression(objective, student, teacher, ids, mask, 10.0)
    assert base > 0 and scaled == pytest.approx(growth * base, rel=1e-4)
    assert objective.experts.loss == (loss or "nmse")


def test_progressive_loss_rejects_an_unknown_loss():
    with pytest.raises(
        ValueError, match="distill.progressive_loss: 'l1' is not allowed; choose one of: nmse, mse, cosine"
    ):
        from_dict(DistillConfig, {"method": "progressive_experts", "progressive_loss": "l1"}, "distill")


def test_progressive_experts_trains_in_stages_and_leaves_the_teacher(tmp_path):
    """4 real DistillTrainer steps: groups 0 then 0+1 regress MoE blocks (steps 0-1), then the output objective."""
    tok, teacher, student = tiny_pair()
    sft = SFTConfig(max_steps=4, batch_size=4, max_length=64, learning_rate=1e-2)
    dcfg = DistillConfig(
        method="progressive_experts",
        sft=sft,
        progressive_groups=2,
        progressive_fraction=0.5,
        progressive_final="logit_kd",
    )
    args = sft_args(sft, tmp_path, 0, "none", "cpu", len(ROWS), "test")
    objective = build_objective(
        "progressive_experts", dcfg, "fused", student, teacher, total_steps=planned_steps(args, len(ROWS))
    )
    assert objective.kind == "distill" and objective.schedule.progressive_steps == 2
    t_before, s_before = state_copy(teacher), state_copy(student)
    proj_before = [p.detach().clone() for p in objective.experts.parameters()]
    trainer = distill_trainer_class()(
        model=student,
        args=args,
        train_dataset=tokenize_rows(tok, ROWS, 64),
        processing_class=tok,
        teacher=teacher,
        objective=objective,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [("distill/experts" in h) for h in logs] == [True, True, False, False]
    assert not changed(t_before, teacher)
    assert len(changed(s_before, student)) >= len(s_before) // 2
    assert any(not torch.equal(a, b) for a, b in zip(proj_before, objective.experts.parameters()))


def test_planned_steps_counts_epochs_and_batches(tmp_path):
    by_epochs = sft_args(SFTConfig(epochs=3, batch_size=4), tmp_path, 0, "none", "cpu", 10, "t")
    assert planned_steps(by_epochs, 10) == 9  # ceil(10 / 4) = 3 batches x 3 epochs
    assert planned_steps(sft_args(SFTConfig(max_steps=7), tmp_path, 0, "none", "cpu", 10, "t"), 10) == 7
