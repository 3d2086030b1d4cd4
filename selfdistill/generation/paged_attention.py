"""Block-diagonal ("varlen") attention for transformers' continuous batching on CPU.

Why: continuous batching packs every request of a step into one row of tokens: queries (1, H, Nq, d) against the
keys of every request read back from the paged cache (1, Hkv, Nk, d). Without flash-attention (CPU), transformers
runs that as one dense SDPA over all Nq x Nk pairs with a block-diagonal mask, so a decode step of B requests of
length L costs B x (B x L) instead of B x L: quadratic in the requests in flight (docs/benchmarks.md, "Sampling
backends"). This function computes the same attention request by request: each request's queries and keys are
gathered into a padded (B, H, Lq, d) / (B, Hkv, Lk, d) batch (Lq, Lk the longest in the step) and one SDPA call
runs with a causal mask aligned on each request's last key, the layout of `cu_seq_lens_q` / `cu_seq_lens_k`.

Used by the `paged` backend (`paged.py`) for the duration of a `generate` call, through `attention_for(model)`;
only plain causal attention is taken over (no sliding window, attention sinks, softcap or dropout); anything else
keeps transformers' own implementation.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

NAME = "selfdistill_varlen_sdpa"


def varlen_sdpa_forward(
    module: torch.nn.Module,
    query: torch.Tensor,  # (1, H, Nq, d): every request's new tokens, packed
    key: torch.Tensor,  # (1, Hkv, Nk, d): every request's cache (past + new), packed in the same order
    value: torch.Tensor,  # (1, Hkv, Nk, d)
    attention_mask: torch.Tensor | None,  # the dense (1, 1, Nq, Nk) block-diagonal mask: not needed here
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,  # (B + 1,) int
    cu_seq_lens_k: torch.Tensor | None = None,  # (B + 1,) int
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Attention of each request's queries over its own keys only; returns (1, Nq, H, d) like transformers' SDPA."""
    if cu_seq_lens_q is None or cu_seq_lens_k is None:
        raise RuntimeError(f"{NAME} serves continuous batching only: cu_seq_lens_q / cu_seq_lens_k missing")
    cu_q, cu_k = cu_seq_lens_q.long(), cu_seq_lens_k.long()
    len_q, len_k = cu_q[1:] - cu_q[:-1], cu_k[1:] - cu_k[:-1]  # (B,), (B,)
    keep = len_q > 0  # padding sequences (static shapes) have no queries
    cu_q, cu_k, len_q, len_k = cu_q[:-1][keep], cu_k[:-1][keep], len_q[keep], len_k[keep]
    lq, lk = int(len_q.max()), int(len_k.max())
    q_pos = torch.arange(lq, device=query.device)
    k_pos = torch.arange(lk, device=query.device)
    q_valid = q_pos[None, :] < len_q[:, None]  # (B, Lq)
    k_valid = k_pos[None, :] < len_k[:, None]  # (B, Lk)
    q_index = torch.where(q_valid, cu_q[:, None] + q_pos[None, :], 0)  # (B, Lq) into Nq
    k_index = torch.where(k_valid, cu_k[:, None] + k_pos[None, :], 0)  # (B, Lk) into Nk
    q = query[0][:, q_index].transpose(0, 1)  # (B, H, Lq, d)
    k = key[0][:, k_index].transpose(0, 1)  # (B, Hkv, Lk, d)
    v = value[0][:, k_index].transpose(0, 1)  # (B, Hkv, Lk, d)
    # query i of a request sits at key position len_k - len_q + i: it sees keys up to there (causal)
    q_at = (len_k - len_q)[:, None] + q_pos[None, :]  # (B, Lq)
    mask = (k_pos[None, None, :] <= q_at[:, :, None]) & k_valid[:, None, :]  # (B, Lq, Lk)
    out = torch.nn.functional.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=mask[:, None],
        scale=scaling,
        enable_gqa=q.shape[1] != k.shape[1],
    )  # (B, H, Lq, d)
    packed = query.new_zeros(query.shape[2], query.shape[1], query.shape[3])  # (Nq, H, d)
    packed[q_index[q_valid]] = out.transpose(1, 2)[q_valid]  # back to the packed order
    return packed.unsqueeze(0), None  # (1, Nq, H, d)


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, varlen_sdpa_forward)


def supported(model) -> str | None:
    """Why ``model``'s attention cannot be swapped for `varlen_sdpa_forward` (None when it can)."""
    config = model.config.get_text_config()
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return f"attention is {model.config._attn_implementation!r}, not sdpa"
    sliding = "sliding_attention" in (getattr(config, "layer_types", None) or [])
    if sliding or (getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)):
        return "sliding-window attention"
    for flag in ("attn_logit_softcapping", "attention_dropout"):
        if getattr(config, flag, None):
            return f"{flag} is set"
    if any(hasattr(m, "sinks") for m in model.modules()):
        return "attention sinks"
    return None


@contextmanager
def attention_for(model, enabled: bool):
    """Run the body with ``model`` attending through `varlen_sdpa_forward` (when ``enabled`` and supported)."""
    if not enabled or supported(model) is not None:
        yield
        return
    _register()
    original = model.config._attn_implementation
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(original)
