"""Each distillation method trains the student for real steps on tiny models and leaves the teacher untouched."""

from __future__ import annotations

import pytest
import torch
from _distill_helpers import ROWS, changed, state_copy, tiny_pair

from selfdistill.config import DistillConfig, SFTConfig
from selfdistill.distill.methods import build_objective
from selfdistill.distill.on_policy import prompt_lengths, sample_on_policy
from selfdistill.distill.trainer import OnPolicy, distill_trainer_class
from selfdistill.distill.vocab import check_shared_vocab
from selfdistill.models.loading import save_model
from selfdistill.stages.distill import distill
from selfdistill.stages.sft import sft_args, tokenize_rows
from selfdistill.traces import Trace, TraceStore
from selfdistill.tracking import NullStage

SFT = SFTConfig(max_steps=2, batch_size=4, max_length=64, learning_rate=1e-2)


def _train(method: str, tmp_path, **dcfg_overrides):
    tok, teacher, student = tiny_pair()
    dcfg = DistillConfig(method=method, sft=SFT, **dcfg_overrides)
    teacher_before, student_before = state_copy(teacher), state_copy(student)
    objective = build_objective(method, dcfg, "fused", student, teacher)
    on_policy = (
        OnPolicy(max_new_tokens=8, pad_id=tok.pad_token_id, eos_id=tok.eos_token_id)
        if method == "on_policy"
        else None
    )
    args = sft_args(SFT, tmp_path, 0, "none", "cpu", len(ROWS), "test")
    trainer = distill_trainer_class()(
        model=student,
        args=args,
        train_dataset=tokenize_rows(tok, ROWS, 64),
        processing_class=tok,
        teacher=teacher,
        objective=objective,
        on_policy=on_policy,
    )
    proj_before = [p.detach().clone() for p in objective.aligner.parameters()] if objective.aligner else []
    trainer.train()
    return trainer, teacher, teacher_before, student, student_before, objective, proj_before


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("logit_kd", {"divergence": "jsd"}),
        ("on_policy", {"divergence": "reverse_kl"}),
        ("hidden_align", {"hidden_align_loss": "cosine", "hidden_align_layers": [[0, 2], [-1, -1]]}),
        ("logit_kd", {"hidden_align_weight": 0.5}),
        ("sft", {"attention_align_weight": 1.0, "attention_align_layers": [[0, 0], [-1, -1]]}),
        (
            "logit_kd",
            {"attention_align_weight": 0.5, "attention_align_loss": "mse", "hidden_align_weight": 0.5},
        ),
    ],
)
def test_step_changes_student_not_teacher(tmp_path, method, extra):
    trainer, teacher, t_before, student, s_before, objective, proj_before = _train(method, tmp_path, **extra)
    assert trainer.state.global_step == 2
    assert not changed(t_before, teacher), "the teacher's weights moved"
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    moved = changed(s_before, student)
    assert len(moved) >= len(s_before) // 2, f"only {len(moved)} of {len(s_before)} student tensors changed"
    if objective.aligner is not None:  # the projection is trained too
        assert all(not torch.equal(a, b) for a, b in zip(proj_before, objective.aligner.parameters()))
    if method == "on_policy":
        assert trainer.on_policy_batches == 2
    logged = [h for h in trainer.state.log_history if "distill/attention" in h]
    assert bool(logged) == (extra.get("attention_align_weight", 0) > 0)
    assert all(h["distill/attention"] > 0 for h in logged)


def test_sample_on_policy_keeps_prompts_and_labels_completions():
    tok, _, student = tiny_pair()
    rows = tokenize_rows(tok, ROWS[:3], 64)
    width = max(len(r) for r in rows["input_ids"])
    ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows["input_ids"]])
    labels = torch.tensor([r + [-100] * (width - len(r)) for r in rows["labels"]])
    torch.manual_seed(0)
    new_ids, mask, new_labels = sample_on_policy(
        student,
        ids,
        labels,
        pad_id=tok.pad_token_id,
        eos_id=tok.eos_token_id,
        max_new_tokens=6,
        temperature=1.0,
    )
    plen = prompt_lengths(labels)
    for b, n in enumerate(plen.tolist()):
        assert torch.equal(new_ids[b, :n], ids[b, :n])  # the trace prompt, unchanged
        assert (new_labels[b, :n] == -100).all()
        completion = new_labels[b][new_labels[b] != -100]
        assert 1 <= len(completion) <= 6
        assert torch.equal(new_ids[b, n : n + len(completion)], completion)
        assert mask[b].sum() == n + len(completion)
    assert student.training  # restored after sampling in eval mode


def test_vocab_mismatch_names_both_sides():
    tok, teacher, student = tiny_pair()
    other = tiny_pair()[0]
    other.add_tokens(["<extra>"])
    teacher.resize_token_embeddings(len(other))
    with pytest.raises(
        ValueError,
        match=r"logit_kd needs teacher and student to share a tokenizer.*student "
        r"TokenizersBackend with 107 tokens \(lm_head 107\), teacher "
        r"TokenizersBackend with 108 tokens \(lm_head 108\)",
    ):
        check_shared_vocab("logit_kd", tok, other, student, teacher)
    check_shared_vocab("logit_kd", tok, tiny_pair()[0], student, tiny_pair()[1])  # same tokenizer: fine


def test_registry_method_end_to_end(tmp_path):
    """Through `distill()` as the pipeline calls it: teacher loaded from disk, traces from a store."""
    tok, teacher, student = tiny_pair()
    teacher_path = save_model(teacher, tok, tmp_path / "teacher")
    store = TraceStore(tmp_path / "traces")
    store.append(
        [
            Trace(
                prompt=r["prompt"],
                completion=r["completion"],
                reward=1.0,
                kind="math",
                task_id=str(i),
                round=1,
                model="t",
            )
            for i, r in enumerate(ROWS)
        ],
        shard="r1",
    )
    before = state_copy(student)
    dcfg = DistillConfig(method="logit_kd", sft=SFT, hidden_align_weight=0.1)
    out = distill(
        "logit_kd",
        student,
        tok,
        teacher=str(teacher_path),
        store=store,
        dcfg=dcfg,
        out_dir=tmp_path / "out",
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
        prompt_format="plain",
        kernels="fused",
    )
    assert out["method"] == "logit_kd" and out["rows"] == len(ROWS) and out["steps"] == 2
    assert out["align_weight"] == 0.1 and changed(before, student)
