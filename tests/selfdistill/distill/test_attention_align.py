"""Attention transfer: captured attention equals the model's own, chunked loss equals an fp64 full
reference (values and gradients, with grouped-query attention), memory of the term linear in T."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

from selfdistill.distill.attention_align import (
    AttentionAligner,
    Captured,
    attention_align_loss,
    capture_attention,
)


def tiny(heads=4, kv=2, layers=2, seed=0, arch="llama", dtype=torch.float64, attn="sdpa"):
    torch.manual_seed(seed)
    cls, cfg = (LlamaForCausalLM, LlamaConfig) if arch == "llama" else (Qwen3ForCausalLM, Qwen3Config)
    config = cfg(
        vocab_size=50,
        hidden_size=8 * heads,
        intermediate_size=32,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=8,
        max_position_embeddings=64,
        attn_implementation=attn,
    )
    return cls(config).to(dtype)


def batch(t=11, pad=3):
    torch.manual_seed(1)
    ids = torch.randint(0, 50, (2, t))
    mask = torch.ones(2, t, dtype=torch.long)
    mask[1, t - pad :] = 0  # right padding on the second row
    rows = torch.zeros(2, t, dtype=torch.bool)
    rows[:, 4:] = True  # the "completion"
    return ids, mask, rows


def reference_probs(c: Captured, key_mask):
    """Full [B, H, T, T] probabilities in fp64, the textbook way."""
    q, k = c.query.double(), c.key.double()
    k = k.repeat_interleave(q.size(1) // k.size(1), dim=1)
    t = q.size(2)
    scores = q @ k.transpose(-1, -2) * c.scaling
    allowed = torch.ones(t, t, dtype=torch.bool).tril()[None] & key_mask.bool()[:, None, :]
    return torch.softmax(scores.masked_fill(~allowed[:, None], float("-inf")), -1)


def per_row(ps, pt, loss):
    """[B, H, T, T] probabilities -> [B, T] loss per query row (masked keys have p = 0 on both sides)."""
    if loss == "kl":
        safe = pt > 0
        per = (pt * (pt.where(safe, 1).log() - ps.where(safe, 1).log())).sum(-1)
    else:
        per = (ps - pt).pow(2).sum(-1)
    return per.mean(1)


def reference_loss(cs, ct, key_mask, rows, loss, mean_heads=False):
    ps, pt = reference_probs(cs, key_mask), reference_probs(ct, key_mask)
    if mean_heads:
        ps, pt = ps.mean(1, keepdim=True), pt.mean(1, keepdim=True)
    elif ps.size(1) != pt.size(1):
        pt = pt.view(pt.size(0), ps.size(1), -1, *pt.shape[2:]).mean(2)
    per = per_row(ps, pt, loss)
    r = rows.bool() & key_mask.bool()
    return per[r].sum() / r.sum()


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_captured_attention_is_the_models_own(arch):
    model = tiny(arch=arch, attn="eager")
    ids, mask, _ = batch()
    with capture_attention(model, [0, 1]) as cap:
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    for layer in (0, 1):
        ours = reference_probs(cap[layer], mask)
        theirs = out.attentions[layer]
        real = mask.bool()
        for b in range(2):  # compare the rows of real tokens
            torch.testing.assert_close(
                ours[b][:, real[b]][:, :, real[b]], theirs[b][:, real[b]][:, :, real[b]]
            )


def test_capture_leaves_the_forward_unchanged_and_unwraps():
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    model = tiny()
    ids, mask, _ = batch()
    before = model(input_ids=ids, attention_mask=mask).logits
    with capture_attention(model, [1]) as cap:
        during = model(input_ids=ids, attention_mask=mask).logits
    assert set(cap) == {1}
    torch.testing.assert_close(before, during, rtol=0, atol=0)
    assert "sdpa" not in ALL_ATTENTION_FUNCTIONS._local_mapping  # the registry is restored


@pytest.mark.parametrize("loss", ["kl", "mse"])
@pytest.mark.parametrize(
    "heads", [(4, 2, 4, 2), (2, 1, 4, 2), (3, 1, 4, 4)]
)  # same, grouped, mean (GQA everywhere)
def test_chunked_loss_matches_fp64_reference(loss, heads):
    hs, kvs, ht, kvt = heads
    student, teacher = tiny(hs, kvs, seed=2), tiny(ht, kvt, seed=3)
    ids, mask, rows = batch()
    with capture_attention(student, [1]) as cs, capture_attention(teacher, [0]) as ct:
        student(input_ids=ids, attention_mask=mask)
        with torch.no_grad():
            teacher(input_ids=ids, attention_mask=mask)
    ours = attention_align_loss(cs[1], ct[0], mask, rows, loss=loss, chunk=3)
    # 4 teacher heads do not divide into 3: both sides are head-averaged
    ref = reference_loss(cs[1], ct[0], mask, rows, loss, mean_heads=hs == 3)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-7)
    g_ours = torch.autograd.grad(
        ours, [p for p in student.parameters()], retain_graph=True, allow_unused=True
    )
    g_ref = torch.autograd.grad(ref, [p for p in student.parameters()], allow_unused=True)
    for a, b in zip(g_ours, g_ref):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-8)


def _saved_bytes(t: int, chunk: int) -> int:
    """Distinct bytes autograd keeps for backward of the attention term alone (a tensor saved by several
    chunks, like the keys, is counted once: it is one allocation)."""
    torch.manual_seed(0)
    q = torch.randn(1, 4, t, 8, requires_grad=True)
    k = torch.randn(1, 2, t, 8, requires_grad=True)
    qt, kt = torch.randn(1, 4, t, 8), torch.randn(1, 2, t, 8)
    seen: dict[tuple, int] = {}

    def pack(x):
        seen[(x.untyped_storage().data_ptr(), x.storage_offset(), x.numel())] = x.numel() * x.element_size()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        attention_align_loss(
            Captured(q, k, 0.35), Captured(qt, kt, 0.35), torch.ones(1, t), torch.ones(1, t), chunk=chunk
        )
    return sum(seen.values())


def test_memory_of_the_term_is_linear_in_sequence_length():
    small, large = _saved_bytes(128, 32), _saved_bytes(512, 32)
    assert large / small < 5.0, (small, large)  # 4x the tokens; a [T, T] map kept for backward would be 16x
    assert large < 4 * 512 * 512 * 4  # far below one fp32 [H, T, T] probability map


def test_aligner_rejects_impossible_layer_pairs_and_names():
    student, teacher = tiny(layers=2), tiny(layers=3)
    with pytest.raises(ValueError, match="teacher layer 5 is out of range for 3 layers"):
        AttentionAligner([[0, 5]]).layers(student, teacher)
    with pytest.raises(ValueError, match="student layer -3 is out of range"):
        AttentionAligner([[-3, 0]]).layers(student, teacher)
    with pytest.raises(ValueError, match="attention_align_loss"):
        AttentionAligner([[0, 0]], loss="l1")
    with pytest.raises(ValueError, match="attention_align_heads"):
        AttentionAligner([[0, 0]], heads="first")
    with pytest.raises(ValueError, match="pairs"):
        AttentionAligner([[0]])


def test_a_step_moves_the_student_toward_the_teacher_and_leaves_the_teacher():
    student, teacher = tiny(4, 2, seed=4, dtype=torch.float32), tiny(4, 2, seed=5, dtype=torch.float32)
    teacher.requires_grad_(False)
    t_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    s_before = {k: v.clone() for k, v in student.state_dict().items()}
    ids, mask, rows = batch()
    aligner = AttentionAligner([[0, 0], [1, 1]], chunk=4)
    s_layers, t_layers = aligner.layers(student, teacher)
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    losses = []
    for _ in range(5):
        with capture_attention(student, s_layers) as cs, capture_attention(teacher, t_layers) as ct:
            student(input_ids=ids, attention_mask=mask)
            with torch.no_grad():
                teacher(input_ids=ids, attention_mask=mask)
        loss = aligner(cs, ct, s_layers, t_layers, mask, rows)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    changed = [k for k, v in student.state_dict().items() if not torch.equal(v, s_before[k])]
    assert any("q_proj" in k for k in changed) and any("k_proj" in k for k in changed)
    assert all(torch.equal(v, t_before[k]) for k, v in teacher.state_dict().items())
