"""Architecture support matrix: every registered MoE family runs each pipeline stage on a tiny config.

Stages: a GRPO step (full fine-tuning, every parameter must change), `generate` as collect does (batched,
left-padded, sampling), an SFT step, and LoRA with the fused experts included (their LoRA weights must get
gradients). Qwen3-MoE runs by default; the rest with `pytest -m slow tests/selfdistill/moe`.
"""

import pytest
import torch
from _moe_helpers import (
    changed,
    grpo_config,
    prompt_dataset,
    reward_digits,
    sft_config,
    sft_dataset,
    snapshot,
    tiny_model_and_tokenizer,
)

from selfdistill.models.moe.archs import ARCHS
from selfdistill.models.moe.control import expert_lora_config, generation_safe
from selfdistill.models.moe.trl import make_grpo_trainer_class, make_sft_trainer_class

ARCH_PARAMS = [a if a == "qwen3_moe" else pytest.param(a, marks=pytest.mark.slow) for a in ARCHS]


@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_grpo_step_full_finetune_changes_every_parameter(arch, tmp_path):
    model, tok = tiny_model_and_tokenizer(arch)
    before = snapshot(model)
    trainer = make_grpo_trainer_class(replay=False)(
        model=model,
        reward_funcs=[reward_digits],
        args=grpo_config(tmp_path, num_generations=4),
        train_dataset=prompt_dataset(),
        processing_class=tok,
    )
    trainer.train()
    unchanged = [name for name, moved in changed(before, model).items() if not moved]
    assert not unchanged, f"{arch}: parameters not updated: {unchanged}"
    logged = trainer.state.log_history[0]
    assert "moe/load_imbalance" in logged and "moe/routing_change_rate" in logged


@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_generate_batched_like_collect(arch):
    model, tok = tiny_model_and_tokenizer(arch)
    enc = tok(["1+1=", "12+30="], return_tensors="pt", padding=True)
    out = model.generate(
        **enc, max_new_tokens=6, do_sample=True, temperature=1.0, pad_token_id=tok.pad_token_id
    )
    assert out.shape[0] == 2 and out.shape[1] <= enc["input_ids"].shape[1] + 6
    assert all(isinstance(t, str) for t in tok.batch_decode(out[:, enc["input_ids"].shape[1] :]))


@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_sft_step_logs_router_diagnostics(arch, tmp_path):
    model, tok = tiny_model_and_tokenizer(arch)
    before = snapshot(model)
    trainer = make_sft_trainer_class()(
        model=model, args=sft_config(tmp_path), train_dataset=sft_dataset(), processing_class=tok
    )
    trainer.train()
    moved = changed(before, model)
    assert sum(moved.values()) > 0.9 * len(moved)
    logged = trainer.state.log_history[0]
    assert logged["moe/load_imbalance"] >= 1.0 and logged["moe/router_entropy"] > 0
    # SFT keeps the architecture's aux loss, and TRL then writes output_router_logits=True into the config,
    # which breaks `generate`: the collect stage must call generation_safe first
    assert model.config.output_router_logits is ARCHS[arch].has_aux_loss
    enc = tok(["1+1="], return_tensors="pt")
    assert generation_safe(model).generate(**enc, max_new_tokens=3).shape[0] == 1


@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_lora_with_experts_gets_gradients(arch, tmp_path):
    from peft import get_peft_model

    model, tok = tiny_model_and_tokenizer(arch)
    peft_model = get_peft_model(model, expert_lora_config(model, r=4, alpha=8))
    expert_lora = {n: p for n, p in peft_model.named_parameters() if p.requires_grad and ".experts." in n}
    attn_lora = [n for n, p in peft_model.named_parameters() if p.requires_grad and ".self_attn." in n]
    assert expert_lora and attn_lora
    assert not [n for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" not in n]
    ids = tok(["1+1=2", "2+3=5"], return_tensors="pt", padding=True)["input_ids"]
    opt = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):  # lora_B starts at 0, so lora_A only gets a gradient from the second step
        opt.zero_grad()
        peft_model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
    no_grad = [n for n, p in expert_lora.items() if p.grad is None or p.grad.abs().sum() == 0]
    assert not no_grad, f"{arch}: expert LoRA weights without gradient: {no_grad}"


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(ARCHS))
def test_grpo_step_with_expert_lora(arch, tmp_path):
    model, tok = tiny_model_and_tokenizer(arch)
    trainer = make_grpo_trainer_class(replay=True)(
        model=model,
        reward_funcs=[reward_digits],
        args=grpo_config(tmp_path, num_generations=4, max_steps=2),
        train_dataset=prompt_dataset(8),
        processing_class=tok,
        peft_config=expert_lora_config(model, r=4, alpha=8),
    )
    lora = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    params = dict(trainer.model.named_parameters())
    moved = [n for n in lora if not torch.equal(lora[n], params[n].detach())]
    assert any(".experts." in n and "lora_B" in n for n in moved), f"{arch}: expert LoRA did not train"
