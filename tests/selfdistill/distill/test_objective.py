"""The distillation objective equals a plain-torch fp64 computation from full logits and hidden states."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _distill_helpers import ROWS, tiny_pair

from selfdistill.config import DistillConfig
from selfdistill.distill.hidden_align import HiddenAligner
from selfdistill.distill.objective import Objective, batch_loss


def _batch(tok):
    ids, labels = [], []
    for r in ROWS[:3]:
        p = tok(r["prompt"], add_special_tokens=False)["input_ids"]
        c = tok(r["completion"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids.append(p + c)
        labels.append([-100] * len(p) + c)
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tok.pad_token_id)
    mask = torch.zeros_like(input_ids)
    lab = torch.full_like(input_ids, -100)
    for b, (i, y) in enumerate(zip(ids, labels)):
        input_ids[b, : len(i)], mask[b, : len(i)], lab[b, : len(y)] = torch.tensor(i), 1, torch.tensor(y)
    return input_ids, mask, lab  # [B, T] each, right-padded


@pytest.fixture(scope="module")
def fp64():
    tok, teacher, student = tiny_pair()
    teacher.set_experts_implementation("eager")  # grouped_mm has no fp64 kernel
    return tok, teacher.double().eval(), student.double().eval(), _batch(tok)


def _divergence(ls, lt, divergence, beta):  # rows of log-probs [N, V] -> [N]
    ps, pt = ls.exp(), lt.exp()
    if divergence == "forward_kl":
        return (pt * (lt - ls)).sum(-1)
    if divergence == "reverse_kl":
        return (ps * (ls - lt)).sum(-1)
    m = beta * pt + (1 - beta) * ps  # generalised JSD (TRL/GKD convention)
    return beta * (pt * (lt - m.log())).sum(-1) + (1 - beta) * (ps * (ls - m.log())).sum(-1)


def plain_distill(student, teacher, ids, mask, labels, *, divergence, beta, temperature, hard_weight):
    s = student(input_ids=ids, attention_mask=mask).logits[:, :-1].flatten(0, 1)  # [N, V]
    t = teacher(input_ids=ids, attention_mask=mask).logits[:, :-1].flatten(0, 1)
    y = labels[:, 1:].flatten()
    valid = y != -100
    ls, lt = F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1)
    ce = F.cross_entropy(s, y.clamp_min(0), reduction="none")
    rows = (1 - hard_weight) * _divergence(ls, lt, divergence, beta) + hard_weight * ce
    return rows[valid].mean()


def plain_align(student, teacher, ids, mask, labels, pairs, weights, loss):
    hs = student(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    ht = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    keep = labels != -100
    total = 0.0
    for (i, j), w in zip(pairs, weights):  # hidden_states[k + 1] is the output of layer k (k not the last)
        s, t = hs[i + 1][keep] @ w.t(), ht[j + 1][keep]
        if loss == "cosine":
            total = total + (1 - (s * t).sum(-1) / (s.norm(dim=-1) * t.norm(dim=-1))).mean()
        elif loss == "mse":
            total = total + (s - t).pow(2).mean()
        else:  # nmse: squared error relative to the teacher's squared norm over the same positions
            total = total + (s - t).pow(2).sum() / t.pow(2).sum()
    return total / len(pairs)


@pytest.mark.parametrize("kernels", ["fused", "eager"])
@pytest.mark.parametrize(
    ("divergence", "beta", "temperature", "hard_weight"),
    [
        ("forward_kl", 0.5, 1.0, 0.0),
        ("reverse_kl", 0.5, 2.0, 0.3),
        ("jsd", 0.3, 1.5, 0.5),
    ],
)
def test_logit_objective_matches_plain_torch(fp64, kernels, divergence, beta, temperature, hard_weight):
    _, teacher, student, (ids, mask, labels) = fp64
    obj = Objective(
        kind="distill",
        kernels=kernels,
        divergence=divergence,
        beta=beta,
        temperature=temperature,
        hard_weight=hard_weight,
    )
    loss, parts = batch_loss(student, teacher, ids, mask, labels, obj)
    want = plain_distill(
        student,
        teacher,
        ids,
        mask,
        labels,
        divergence=divergence,
        beta=beta,
        temperature=temperature,
        hard_weight=hard_weight,
    )
    assert loss.dtype == torch.float64 and want.item() > 0
    torch.testing.assert_close(loss, want, rtol=1e-9, atol=1e-10)
    assert parts == {"main": pytest.approx(want.item())}


@pytest.mark.parametrize("loss_name", ["nmse", "mse", "cosine"])
@pytest.mark.parametrize("kind", ["lm", "distill"])
def test_hidden_alignment_adds_plain_torch_term(fp64, loss_name, kind):
    _, teacher, student, (ids, mask, labels) = fp64
    pairs = [[0, 1], [1, 0]]  # student layer 0 -> teacher layer 1, student 1 -> teacher 0
    torch.manual_seed(0)
    aligner = HiddenAligner(pairs, 32, 64, loss_name).double()
    obj = Objective(
        kind=kind,
        kernels="fused",
        divergence="jsd",
        beta=0.5,
        hard_weight=0.2,
        aligner=aligner,
        align_weight=0.7,
    )
    loss, parts = batch_loss(student, teacher, ids, mask, labels, obj)
    align = plain_align(
        student, teacher, ids, mask, labels, pairs, [p.weight for p in aligner.proj], loss_name
    )
    if kind == "lm":
        main = F.cross_entropy(
            student(input_ids=ids, attention_mask=mask).logits[:, :-1].flatten(0, 1),
            labels[:, 1:].flatten(),
            ignore_index=-100,
        )
    else:
        main = plain_distill(
            student, teacher, ids, mask, labels, divergence="jsd", beta=0.5, temperature=1.0, hard_weight=0.2
        )
    torch.testing.assert_close(loss, main + 0.7 * align, rtol=1e-9, atol=1e-10)
    assert parts["align"] == pytest.approx(align.item()) and align.item() > 0


def test_default_alignment_loss_is_scale_free():
    """The default hidden-alignment loss does not grow with the model's hidden-state scale: SmolLM2's layer
    outputs have norms in the hundreds, where a plain MSE ended at 191 and swamped the trace cross-entropy
    (student at 0%). Scaling both states by c leaves it unchanged, and a student state of zeros scores 1."""
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 5, 16, dtype=torch.float64)  # [B, T, H]
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False  # padding: must not enter the normaliser either
    t[1, 3:] = 1e6
    aligner = HiddenAligner([[-1, -1]], 16, 16, DistillConfig().hidden_align_loss)
    base = aligner([s], [t], mask)
    for c in (1e-3, 300.0):
        torch.testing.assert_close(aligner([c * s], [c * t], mask), base, rtol=1e-12, atol=0)
    assert 1.0 < base.item() < 3.0  # unrelated states: E||s - t||^2 / E||t||^2 = 2
    torch.testing.assert_close(
        aligner([torch.zeros_like(s)], [t], mask), torch.tensor(1.0, dtype=torch.float64)
    )


def test_alignment_gradient_reaches_student_and_projection_not_teacher(fp64):
    _, teacher, student, (ids, mask, labels) = fp64
    aligner = HiddenAligner([[-1, -1]], 32, 64, "mse").double()
    obj = Objective(kind="lm", kernels="fused", aligner=aligner, align_weight=1.0)
    student.zero_grad()
    loss, _ = batch_loss(student, teacher, ids, mask, labels, obj)
    loss.backward()
    assert aligner.proj[0].weight.grad.abs().sum() > 0
    assert student.model.layers[-1].mlp.down_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    student.zero_grad()


def test_identity_projection_for_equal_widths_and_bad_layer():
    aligner = HiddenAligner([[0, 0]], 48, 48, "cosine")
    assert isinstance(aligner.proj[0], torch.nn.Identity) and not list(aligner.parameters())
    with pytest.raises(ValueError, match="teacher layer 5 is out of range for 3 layers"):
        HiddenAligner([[0, 5]], 32, 64).layers(3, 3)
    with pytest.raises(ValueError, match="unknown hidden_align_loss 'l1'; choose one of: nmse, mse, cosine"):
        HiddenAligner([[0, 0]], 32, 64, "l1")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_objective_on_cuda_matches_eager():
    """The Triton path (bf16 models on CUDA) agrees with the eager full-logits loss, alignment included."""
    tok, teacher, student = tiny_pair()
    teacher, student = teacher.cuda().bfloat16().eval(), student.cuda().bfloat16()
    ids, mask, labels = (t.cuda() for t in _batch(tok))
    torch.manual_seed(0)
    aligner = HiddenAligner([[-1, -1]], 32, 64, "mse").cuda()
    losses = []
    for kernels in ("fused", "eager"):
        obj = Objective(
            kind="distill",
            kernels=kernels,
            divergence="jsd",
            hard_weight=0.3,
            aligner=aligner,
            align_weight=0.5,
        )
        losses.append(batch_loss(student, teacher, ids, mask, labels, obj)[0].float())
    torch.testing.assert_close(losses[0], losses[1], rtol=2e-2, atol=2e-2)
