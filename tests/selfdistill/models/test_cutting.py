"""Students cut from a dense model: evenly spaced layers, copied weights, tied embeddings kept tied."""

import pytest
import torch
import transformers

from selfdistill.configio import ConfigError
from selfdistill.models.cutting import cut_layers, evenly_spaced


@pytest.mark.parametrize(
    "total,keep,expected",
    [
        (30, 1, [0]),
        (30, 2, [0, 29]),
        (30, 4, [0, 10, 19, 29]),
        (5, 5, [0, 1, 2, 3, 4]),
        (30, 10, None),
    ],
)
def test_evenly_spaced(total, keep, expected):
    got = evenly_spaced(total, keep)
    assert len(got) == keep and got == sorted(set(got))
    if keep > 1:
        assert got[0] == 0 and got[-1] == total - 1
    if expected is not None:
        assert got == expected


@pytest.mark.parametrize("keep", [0, 7, -1])
def test_bad_layer_counts_fail_clearly(keep):
    with pytest.raises(ConfigError, match=r"num_layers must be between 1 and the model's 6 layers"):
        evenly_spaced(6, keep)


def _dense(tied: bool, model_type: str = "llama"):
    torch.manual_seed(0)
    cls = {"llama": transformers.LlamaConfig, "qwen3": transformers.Qwen3Config}[model_type]
    config = cls(
        vocab_size=53,
        hidden_size=32,
        intermediate_size=40,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        tie_word_embeddings=tied,
    )
    return transformers.AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("tied", [True, False])
def test_cut_keeps_chosen_layers_and_shared_parts(tied):
    dense = _dense(tied)
    student = cut_layers(dense, 3)
    keep = evenly_spaced(6, 3)
    assert student.config.num_hidden_layers == 3 and len(student.model.layers) == 3
    for j, i in enumerate(keep):
        for (n1, p1), (n2, p2) in zip(
            student.model.layers[j].named_parameters(), dense.model.layers[i].named_parameters()
        ):
            assert n1 == n2 and torch.equal(p1, p2)
    assert torch.equal(student.model.embed_tokens.weight, dense.model.embed_tokens.weight)
    assert torch.equal(student.model.norm.weight, dense.model.norm.weight)
    assert torch.equal(student.lm_head.weight, dense.lm_head.weight)
    assert (student.lm_head.weight is student.model.embed_tokens.weight) == tied
    # a model cut to all its layers is the same function
    x = torch.randint(0, 53, (2, 9))
    with torch.no_grad():
        assert torch.allclose(cut_layers(dense, 6)(x).logits, dense(x).logits, atol=1e-6)
        assert not torch.allclose(student(x).logits, dense(x).logits, atol=1e-3)


def test_per_layer_config_follows_kept_layers():
    dense = _dense(False, "qwen3")
    dense.config.layer_types = ["full_attention", "sliding_attention"] * 3
    dense.config.sliding_window = 4
    student = cut_layers(dense, 2)  # keeps layers 0 and 5
    assert student.config.layer_types == ["full_attention", "sliding_attention"]


def test_moe_cannot_be_cut():
    from selfdistill.models.upcycle import upcycle_model

    with pytest.raises(ConfigError, match="Mixture-of-Experts"):
        cut_layers(upcycle_model(_dense(False), 2, 2), 2)


def test_cli_cut_layers_and_its_error(tmp_path, tokenizer, capsys):
    """`selfdistill cut-layers` saves what `cut_layers` builds (a student base for scripts/exp_distill.py)."""
    import json

    from selfdistill.cli import main

    dense = _dense(True)
    dense.save_pretrained(tmp_path / "dense")
    tokenizer.save_pretrained(tmp_path / "dense")
    assert main(["cut-layers", str(tmp_path / "dense"), str(tmp_path / "cut"), "--layers", "3"]) == 0
    student = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "cut").eval()
    assert student.config.num_hidden_layers == 3
    x = torch.randint(0, 53, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(student(x).logits, cut_layers(dense, 3)(x).logits)
    assert (
        "kept=[0, 2, 5]" in json.loads((tmp_path / "cut" / "selfdistill_import.json").read_text())["source"]
    )
    assert main(["cut-layers", str(tmp_path / "dense"), str(tmp_path / "bad"), "--layers", "7"]) == 1
    assert "num_layers must be between 1 and the model's 6 layers, got 7" in capsys.readouterr().err
