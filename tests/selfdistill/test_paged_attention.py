"""Block-diagonal attention of the paged backend: request by request equals each request attending alone (fp64
reference over mixed prefill/decode/padding layouts with GQA), and greedy text through it equals hf's."""

import math

import pytest
import torch

from selfdistill.config import GenerationConfig
from selfdistill.generation import paged_attention, sample


def reference(q, k, v, len_q, len_k, scale):
    """One request alone: q (H, lq, d) over k, v (Hkv, lk, d), query i at key position lk - lq + i (causal)."""
    groups = q.shape[0] // k.shape[0]
    k, v = k.repeat_interleave(groups, 0), v.repeat_interleave(groups, 0)
    scores = q @ k.transpose(1, 2) * scale  # (H, lq, lk)
    allowed = torch.arange(len_k)[None, :] <= (len_k - len_q + torch.arange(len_q))[:, None]
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, -1) @ v  # (H, lq, d)


@pytest.mark.parametrize("gqa", [1, 3])
def test_varlen_attention_equals_each_request_attending_alone(gqa):
    torch.manual_seed(0)
    # decode (1 new token over 7), fresh prefill (5 over 5), chunked prefill (3 over 10), a first token, and a
    # padding sequence with no tokens (static shapes pad the batch that way)
    lens = [(1, 7), (5, 5), (3, 10), (1, 1), (0, 0)]
    heads_kv, d = 2, 8
    heads = heads_kv * gqa
    cu_q = torch.tensor([0] + list(torch.cumsum(torch.tensor([q for q, _ in lens]), 0)), dtype=torch.int32)
    cu_k = torch.tensor([0] + list(torch.cumsum(torch.tensor([k for _, k in lens]), 0)), dtype=torch.int32)
    q = torch.randn(1, heads, int(cu_q[-1]), d, dtype=torch.float64)
    k = torch.randn(1, heads_kv, int(cu_k[-1]), d, dtype=torch.float64)
    v = torch.randn(1, heads_kv, int(cu_k[-1]), d, dtype=torch.float64)
    scale = 1 / math.sqrt(d)
    out, weights = paged_attention.varlen_sdpa_forward(
        torch.nn.Module(), q, k, v, None, scaling=scale, cu_seq_lens_q=cu_q, cu_seq_lens_k=cu_k
    )
    assert weights is None and out.shape == (1, int(cu_q[-1]), heads, d)
    for i, (lq, lk) in enumerate(lens):
        if lq == 0:
            continue
        qs, ks = slice(int(cu_q[i]), int(cu_q[i + 1])), slice(int(cu_k[i]), int(cu_k[i + 1]))
        want = reference(q[0, :, qs], k[0, :, ks], v[0, :, ks], lq, lk, scale)  # (H, lq, d)
        torch.testing.assert_close(out[0, qs].transpose(0, 1), want, rtol=1e-10, atol=1e-10)


def test_varlen_attention_needs_the_continuous_batching_layout():
    x = torch.zeros(1, 2, 3, 4)
    with pytest.raises(RuntimeError, match="cu_seq_lens_q / cu_seq_lens_k missing"):
        paged_attention.varlen_sdpa_forward(torch.nn.Module(), x, x, x, None)


@pytest.mark.parametrize("which", ["tiny_moe", "tiny_dense"])
def test_paged_greedy_text_through_varlen_attention_equals_hf(which, tokenizer, request, monkeypatch):
    model = request.getfixturevalue(which)
    calls = []
    original = paged_attention.varlen_sdpa_forward

    def counting(*args, **kwargs):
        calls.append(kwargs["cu_seq_lens_q"].numel() - 1)
        return original(*args, **kwargs)

    monkeypatch.setattr(paged_attention, "varlen_sdpa_forward", counting)
    prompts = ["What is 1+2?", "Compute 13*7, then box it.", "x", "def f(a, b):\n    return"]
    args = dict(n=3, temperature=0.0, max_new_tokens=16, batch_size=5, seed=0)
    hf = sample(model, tokenizer, prompts, **args, backend="hf")
    on = sample(model, tokenizer, prompts, **args, backend="paged", settings=GenerationConfig())
    assert calls and max(calls) > 1  # it ran, on steps batching several requests
    n_calls = len(calls)
    off = sample(
        model,
        tokenizer,
        prompts,
        **args,
        backend="paged",
        settings=GenerationConfig(paged_varlen_attention=False),
    )
    assert len(calls) == n_calls  # switched off: transformers' own attention
    assert hf.completions == on.completions == off.completions
    assert model.config._attn_implementation == "sdpa"  # restored after the call
