"""Sparse upcycling keeps the dense model's function exactly, for every registered architecture pair."""

import pytest
import torch
import transformers

from selfdistill.models.upcycle import PAIRS, moe_config, upcycle_checkpoint, upcycle_model

SIZES = dict(
    vocab_size=97,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)
# A tiny random dense model per supported family (extra keys exercise what each family has of its own).
DENSE = {
    "llama": ("LlamaConfig", {}),
    "mistral": ("MistralConfig", {"sliding_window": 8}),
    "qwen3": ("Qwen3Config", {"head_dim": 8}),
    "qwen2": ("Qwen2Config", {}),
}


def tiny_dense(model_type: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    cls, extra = DENSE[model_type]
    config = getattr(transformers, cls)(**{**SIZES, **extra, **overrides})
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():  # norms and biases away from their 1/0 init, so copying them is tested too
        for p in model.parameters():
            if p.dim() == 1:
                p.normal_(1.0, 0.2)
    return model


def test_every_pair_is_tested():
    assert set(DENSE) == set(PAIRS)


@pytest.mark.parametrize("dense_type", sorted(DENSE))
@pytest.mark.parametrize("router_std", [0.0, 0.5])
def test_upcycled_moe_computes_the_dense_function(dense_type, router_std):
    dense = tiny_dense(dense_type)
    moe = upcycle_model(dense, experts=4, top_k=2, router_std=router_std, seed=1)
    assert moe.config.model_type == PAIRS[dense_type].moe
    x = torch.randint(0, SIZES["vocab_size"], (3, 17), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        diff = (dense(x).logits - moe(x).logits).abs().max().item()
    assert diff <= 1e-4, f"{dense_type} -> {moe.config.model_type}: max |logit diff| {diff}"
    # really sparse: every layer is a MoE block with 4 experts
    n_experts = [layer.mlp.experts.gate_up_proj.shape[0] for layer in moe.model.layers]
    assert n_experts == [4] * SIZES["num_hidden_layers"]


def test_router_spread_routes_tokens_to_different_experts():
    """A zero router ties every logit (all tokens pick the same k experts); the default random router does not."""
    moe = upcycle_model(tiny_dense("llama"), experts=4, top_k=2, router_std=0.5)
    hidden = torch.randn(64, SIZES["hidden_size"])
    _, _, indices = moe.model.layers[0].mlp.gate(hidden)  # (N, k)
    assert len(indices.unique()) == 4


def test_expert_noise_breaks_exactness_only_when_asked():
    dense = tiny_dense("qwen3")
    noisy = upcycle_model(dense, experts=4, top_k=2, expert_noise=0.5)
    x = torch.randint(0, SIZES["vocab_size"], (2, 9))
    with torch.no_grad():
        assert (dense(x).logits - noisy(x).logits).abs().max().item() > 1e-3


def test_dense_model_is_left_untouched():
    dense = tiny_dense("llama")
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    upcycle_model(dense, experts=3, top_k=2)
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())


def test_unsupported_pairs_fail_clearly():
    gpt2 = transformers.AutoModelForCausalLM.from_config(
        transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2)
    )
    with pytest.raises(
        ValueError, match=r"cannot upcycle a 'gpt2' model exactly; supported: llama -> mixtral"
    ):
        upcycle_model(gpt2, experts=2, top_k=1)
    with pytest.raises(ValueError, match=r"cannot upcycle llama into 'qwen3_moe'"):
        moe_config(tiny_dense("llama").config, 4, 2, arch="qwen3_moe")
    with pytest.raises(ValueError, match=r"top_k <= experts"):
        moe_config(tiny_dense("llama").config, 2, 3)
    biased = tiny_dense("llama", attention_bias=True)
    with pytest.raises(ValueError, match=r"exact only with attention_bias=False"):
        upcycle_model(biased, experts=2, top_k=2)


def test_upcycle_checkpoint_round_trip(tmp_path, tokenizer):
    dense = tiny_dense("qwen3")
    dense.save_pretrained(tmp_path / "dense")
    tokenizer.save_pretrained(tmp_path / "dense")
    out = upcycle_checkpoint(tmp_path / "dense", tmp_path / "moe", experts=4, top_k=2)
    moe = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert moe.config.model_type == "qwen3_moe" and moe.config.norm_topk_prob is True
    assert (out / "tokenizer_config.json").exists()
    x = torch.randint(0, SIZES["vocab_size"], (2, 11))
    with torch.no_grad():
        assert (dense(x).logits - moe(x).logits).abs().max().item() <= 1e-4


def test_cli_upcycle_and_its_errors(tmp_path, tokenizer, capsys):
    from selfdistill.cli import main

    dense = tiny_dense("llama")
    dense.save_pretrained(tmp_path / "dense")
    tokenizer.save_pretrained(tmp_path / "dense")
    assert (
        main(["upcycle", str(tmp_path / "dense"), str(tmp_path / "moe"), "--experts", "3", "--top-k", "2"])
        == 0
    )
    moe = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "moe")
    assert moe.config.model_type == "mixtral" and moe.config.num_local_experts == 3
    assert (
        main(
            [
                "upcycle",
                str(tmp_path / "dense"),
                str(tmp_path / "x"),
                "--experts",
                "2",
                "--top-k",
                "2",
                "--arch",
                "olmoe",
            ]
        )
        == 1
    )
    assert "cannot upcycle llama into 'olmoe'" in capsys.readouterr().err
