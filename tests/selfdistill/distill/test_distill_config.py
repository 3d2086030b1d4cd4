"""The distill section's new settings: parsed from overrides, bad values named, methods registered."""

from __future__ import annotations

import pytest

from selfdistill.config import load_config
from selfdistill.configio import ConfigError
from selfdistill.distill.methods import DISTILL_METHODS, align_weight
from selfdistill.distill.objective import OBJECTIVE_KINDS


def test_overrides_parse_and_methods_are_registered():
    cfg = load_config(
        overrides=[
            "distill.method=on_policy",
            "distill.divergence=jsd",
            "distill.beta=0.2",
            "distill.hidden_align_layers=[[0, 1], [-1, -1]]",
            "distill.hidden_align_weight=0.5",
        ]
    )
    d = cfg.distill
    assert (d.method, d.divergence, d.beta, d.hidden_align_layers) == (
        "on_policy",
        "jsd",
        0.2,
        [[0, 1], [-1, -1]],
    )
    assert align_weight("on_policy", d) == 0.5
    assert align_weight("hidden_align", load_config(overrides=["distill.method=hidden_align"]).distill) == 1.0
    assert align_weight("logit_kd", load_config().distill) == 0.0


def test_every_method_names_an_objective_the_trainer_has():
    for name in DISTILL_METHODS.names():
        method = DISTILL_METHODS.get(name)
        assert method.name == name and method.objective in OBJECTIVE_KINDS, method


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("distill.progressive_fraction=0", "distill.progressive_fraction: must be in"),
        ("distill.progressive_final=kd", "distill.progressive_final"),
        (
            "distill.method=kd",
            "distill.method: unknown distillation method 'kd'; choose one of: hidden_align, logit_kd, on_policy, progressive_experts, sft",
        ),
        ("distill.divergence=kl", "'kl' is not allowed; choose one of: forward_kl, reverse_kl, jsd"),
        ("distill.hard_weight=1.5", "distill.hard_weight: must be in [0, 1], got 1.5"),
        ("distill.temperature=0", "distill.temperature: must be > 0, got 0"),
        ("distill.hidden_align_layers=[[0]]", "must be a non-empty list of [student, teacher] pairs"),
        ("distill.on_policy_fraction=2", "distill.on_policy_fraction: must be in [0, 1], got 2"),
    ],
)
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(overrides=[override])


def test_the_table_says_when_the_teacher_runs():
    sft, hidden = DISTILL_METHODS.get("sft"), DISTILL_METHODS.get("hidden_align")
    d = load_config().distill
    assert not sft.needs_teacher(d) and hidden.needs_teacher(d)  # hidden_align's default weight is 1.0
    assert DISTILL_METHODS.get("logit_kd").needs_teacher(d) and DISTILL_METHODS.get("on_policy").on_policy
    assert sft.needs_teacher(load_config(overrides=["distill.hidden_align_weight=0.5"]).distill)
    assert sft.needs_teacher(load_config(overrides=["distill.attention_align_weight=0.5"]).distill)
