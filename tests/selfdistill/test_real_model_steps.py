"""The pipeline's start steps for a real checkpoint: cold start, upcycling and a student cut by layers.

A tiny random Llama checkpoint with the character tokenizer stands in for SmolLM2 (the slow
`test_smollm2.py` runs the real one): the base step cold-starts it on the bootstrap corpus, upcycles
it into a Mixtral and saves that; the student's base step cuts 2 of its 3 layers.
"""

import json

import torch
import transformers

from selfdistill.config import load_config
from selfdistill.pipeline import Run, execute, plan


def _dense_checkpoint(path, tokenizer):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_base_steps_cold_start_upcycle_and_cut(tmp_path, tokenizer):
    dense = _dense_checkpoint(tmp_path / "dense", tokenizer)
    cfg = load_config(
        None,
        [
            f"run.output_dir={tmp_path}",
            "run.name=real",
            "tracking.report_to=none",
            "tasks.sources=[{type: math, n: 60}]",
            "policy.source=pretrained",
            f"policy.path={dense}",
            "policy.upcycle={num_experts: 4, experts_per_token: 2}",
            "policy.cold_start=true",
            "policy.bootstrap={steps: 2, corpus_size: 32, batch_size: 4, learning_rate: 0.01}",
            f"distill.students=[{{name: cut, source: layers, path: {dense}, num_layers: 2}}]",
        ],
    )
    run = Run(cfg)
    steps = {s.key: s for s in plan(cfg)}
    base = execute(run, steps["base"])
    assert base["upcycled"] == {"arch": "mixtral", "num_experts": 4, "top_k": 2}
    assert base["cold_start_rows"] == 32 and base["cold_start_loss"] is not None
    moe = transformers.AutoModelForCausalLM.from_pretrained(base["model_path"])
    original = transformers.AutoModelForCausalLM.from_pretrained(dense)
    assert moe.config.model_type == "mixtral" and base["params"] == moe.num_parameters()
    # the cold start trained the attention (copied unchanged by upcycling) before the upcycle
    q_moe, q_dense = (
        moe.model.layers[0].self_attn.q_proj.weight,
        original.model.layers[0].self_attn.q_proj.weight,
    )
    assert not torch.equal(q_moe, q_dense)
    student = execute(run, steps["student.cut.base"])
    assert student["kept_layers"] == [0, 2]
    cut = transformers.AutoModelForCausalLM.from_pretrained(student["model_path"])
    assert cut.config.num_hidden_layers == 2 and student["params"] == cut.num_parameters()
    assert torch.equal(
        cut.model.layers[1].mlp.down_proj.weight, original.model.layers[2].mlp.down_proj.weight
    )
    assert (
        json.loads((tmp_path / "real" / "state" / "base.json").read_text())["model_path"]
        == base["model_path"]
    )
