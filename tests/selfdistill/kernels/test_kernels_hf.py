"""selfdistill.kernels.hf against the models' own losses, on tiny random-init Hugging Face causal LMs."""

from __future__ import annotations

import pytest
import torch
from _kernel_cases import rel_err
from transformers import AutoConfig, AutoModelForCausalLM

from selfdistill.kernels.hf import (
    KernelSpec,
    causal_lm_distill_loss_fn,
    causal_lm_loss_fn,
    fused_causal_lm_distill_loss,
    fused_causal_lm_loss,
    lm_head_weight,
)

VOCAB = 97
TINY = dict(
    vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=64,
)  # fmt: skip


MOE = {"output_router_logits": True, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
       "router_aux_loss_coef": 0.5}  # fmt: skip


def _model(model_type: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = AutoConfig.for_model(model_type, **{**TINY, **overrides})
    return AutoModelForCausalLM.from_config(config).float()


def _batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, VOCAB, (3, 11), generator=gen)  # [B, T]
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 8:] = 0  # right padding
    labels = input_ids.clone()
    labels[:, :4] = -100  # prompt
    labels[attention_mask == 0] = -100
    return input_ids, attention_mask, labels


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    ("model_type", "overrides"),
    [
        ("qwen2", {"tie_word_embeddings": True}),
        ("llama", {"tie_word_embeddings": False}),
        ("qwen3_moe", MOE),
    ],
)  # fmt: skip
def test_loss_and_grads_match_the_models_own(model_type, overrides):
    model = _model(model_type, **overrides)
    input_ids, attention_mask, labels = _batch()
    ref = causal_lm_loss_fn("eager")(model, input_ids, attention_mask, labels)  # the model's own .loss
    ref.backward()
    ref_grads = _grads(model)
    model.zero_grad(set_to_none=True)
    got = causal_lm_loss_fn("fused")(model, input_ids, attention_mask, labels, impl="torch")
    got.backward()
    got_grads = _grads(model)
    assert rel_err(got, ref) < 1e-5
    assert got_grads.keys() == ref_grads.keys() and len(got_grads) > 5
    for name, grad in ref_grads.items():
        assert rel_err(got_grads[name], grad) < 1e-4, name


def test_num_items_in_batch_divides_the_sum():
    model = _model("qwen2")
    input_ids, attention_mask, labels = _batch(1)
    mean = fused_causal_lm_loss(model, input_ids, attention_mask, labels, impl="torch")
    n_valid = int((labels[:, 1:] != -100).sum())
    summed = fused_causal_lm_loss(
        model, input_ids, attention_mask, labels, impl="torch", num_items_in_batch=2 * n_valid
    )
    assert torch.allclose(summed * 2, mean)


@pytest.mark.parametrize(
    ("student_type", "student_overrides", "divergence", "drop_ignored"),
    [("qwen2", {"tie_word_embeddings": True}, "forward_kl", False), ("qwen2", {}, "jsd", True),
     ("qwen3_moe", MOE, "reverse_kl", False)],
)  # fmt: skip
def test_distill_matches_eager_full_logits(student_type, student_overrides, divergence, drop_ignored):
    student = _model(student_type, seed=1, **student_overrides)
    teacher = _model("llama", seed=2, hidden_size=48, tie_word_embeddings=False)
    teacher.requires_grad_(False)
    input_ids, attention_mask, labels = _batch(2)
    kw = dict(divergence=divergence, beta=0.4, temperature=1.5, hard_weight=0.25)
    fused = causal_lm_distill_loss_fn("fused")
    got = fused(
        student, teacher, input_ids, attention_mask, labels, impl="torch", drop_ignored=drop_ignored, **kw
    )
    got.backward()
    got_grads = _grads(student)
    student.zero_grad(set_to_none=True)
    ref = causal_lm_distill_loss_fn("eager")(student, teacher, input_ids, attention_mask, labels, **kw)
    ref.backward()
    assert rel_err(got, ref) < 1e-5
    ref_grads = _grads(student)
    assert got_grads.keys() == ref_grads.keys()
    for name, grad in ref_grads.items():
        assert rel_err(got_grads[name], grad) < 1e-4, name
    assert all(p.grad is None for p in teacher.parameters())


def test_drop_ignored_gives_the_same_loss_and_survives_all_ignored():
    model = _model("llama")
    input_ids, attention_mask, labels = _batch(3)
    full = fused_causal_lm_loss(model, input_ids, attention_mask, labels, impl="torch")
    dropped = fused_causal_lm_loss(model, input_ids, attention_mask, labels, impl="torch", drop_ignored=True)
    assert rel_err(dropped, full) < 1e-6
    none = fused_causal_lm_loss(
        model, input_ids, attention_mask, torch.full_like(labels, -100), drop_ignored=True
    )
    none.backward()
    assert none.item() == 0.0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_kernel_spec_options_reach_the_fused_kernels():
    """`fused_kernels` config options travel with the loss function; "weight" accumulation on the fp32 tiny model
    gives the same loss and gradients, and a bad option fails by name when the loss runs."""
    model = _model("llama")
    input_ids, attention_mask, labels = _batch(4)
    weight_mode = causal_lm_loss_fn(KernelSpec("fused", dw_accumulation="weight"))
    assert weight_mode.keywords == {"dw_accumulation": "weight"}
    distill = causal_lm_distill_loss_fn(KernelSpec("fused", fp32_logits=False))
    assert distill.keywords == {"dw_accumulation": "fp32", "fp32_logits": False}
    assert causal_lm_loss_fn(KernelSpec("eager", dw_accumulation="weight")) is causal_lm_loss_fn("eager")
    got = weight_mode(model, input_ids, attention_mask, labels, impl="torch")
    ref = causal_lm_loss_fn("fused")(model, input_ids, attention_mask, labels, impl="torch")
    assert rel_err(got, ref) < 1e-6
    with pytest.raises(ValueError, match="dw_accumulation"):
        causal_lm_loss_fn(KernelSpec("fused", dw_accumulation="bf16"))(
            model, input_ids, attention_mask, labels
        )


def test_unknown_kernels_name_the_choices():
    with pytest.raises(ValueError, match="choose one of: fused, eager"):
        causal_lm_loss_fn("liger")


def test_logit_softcapping_is_refused_by_name():
    model = _model("gemma2", head_dim=8, final_logit_softcapping=30.0)
    with pytest.raises(ValueError, match="config.final_logit_softcapping=30.0"):
        lm_head_weight(model)


def test_vocab_mismatch_is_refused():
    input_ids, attention_mask, labels = _batch()
    with pytest.raises(ValueError, match="vocabularies differ"):
        fused_causal_lm_distill_loss(
            _model("qwen2"), _model("qwen2", vocab_size=101), input_ids, attention_mask, labels
        )


@pytest.mark.parametrize(
    ("model_type", "overrides"), [("qwen2", {"tie_word_embeddings": True}), ("qwen3_moe", MOE)]
)
def test_fused_loss_runs_through_a_ddp_wrapper(model_type, overrides, tmp_path):
    """Under DDP the trainer hands the wrapper: the fused loss must go through its forward (DDP prepares the
    gradient all-reduce there) and give the unwrapped model's loss and gradients (one gloo rank on CPU)."""
    import torch.distributed as torch_dist
    from torch.nn.parallel import DistributedDataParallel

    torch_dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        model = _model(model_type, **overrides)
        input_ids, attention_mask, labels = _batch()
        ref = causal_lm_loss_fn("fused")(model, input_ids, attention_mask, labels, impl="torch")
        ref.backward()
        ref_grads = _grads(model)
        model.zero_grad(set_to_none=True)
        ddp = DistributedDataParallel(model)
        got = causal_lm_loss_fn("fused")(ddp, input_ids, attention_mask, labels, impl="torch")
        got.backward()  # DDP all-reduces (world size 1: the same gradients) only if its forward ran
        assert rel_err(got, ref) < 1e-6
        got_grads = _grads(model)
        assert got_grads.keys() == ref_grads.keys()
        for name, grad in ref_grads.items():
            assert rel_err(got_grads[name], grad) < 1e-5, name
    finally:
        torch_dist.destroy_process_group()
