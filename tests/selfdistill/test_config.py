"""Config loading and validation: every shipped config loads; bad input names the key."""

from pathlib import Path

import pytest

from selfdistill.config import Config, load_config
from selfdistill.configio import ConfigError, apply_override, describe

CONFIGS = sorted(Path(__file__).resolve().parents[2].joinpath("configs").rglob("*.yaml"))


def test_configs_exist():
    assert any(p.name == "demo.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_file_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)


def test_default_is_demo():
    cfg = load_config()
    assert cfg.run.name == "demo" and cfg.policy.source == "tiny" and cfg.policy.tiny.arch == "qwen3_moe"


def test_overrides_are_typed():
    cfg = load_config(
        None,
        [
            "rl.max_steps=7",
            "rl.learning_rate=0.5",
            "tracking.report_to=none",
            "distill.students.0.tiny.hidden_size=32",
        ],
    )
    assert cfg.rl.max_steps == 7 and cfg.rl.learning_rate == 0.5
    assert cfg.tracking.report_to == "none" and cfg.distill.students[0].tiny.hidden_size == 32
    cfg = load_config(
        None,
        [
            "fused_kernels.dw_accumulation=weight",
            "fused_kernels.fp32_logits=false",
            "rewards.math_text_fallback=true",
        ],
    )
    assert cfg.fused_kernels.dw_accumulation == "weight" and cfg.fused_kernels.fp32_logits is False
    assert cfg.rewards.math_text_fallback is True


@pytest.mark.parametrize(
    "override, needle",
    [
        ("rl.max_stepz=3", "unknown key rl.max_stepz"),
        ("rl.max_steps=abc", "rl.max_steps: expected an integer"),
        ("rl.num_generations=1", "rl.num_generations: must be >= 2"),
        ("rl.algorithm=grpoo", "unknown RL algorithm 'grpoo'; choose one of: dapo, dr_grpo, grpo, gspo"),
        ("tracking.report_to=tensorboard", "choose one of: wandb, none"),
        ("tasks.eval_fraction=1.5", "tasks.eval_fraction: must be in (0, 1)"),
        ("run.rounds=0", "run.rounds: must be >= 1"),
        ("run.dist_timeout_s=0", "run.dist_timeout_s: must be >= 1"),
        ("run.experts_implementation=fast", "choose one of: auto, eager, batched_mm, grouped_mm"),
        (
            "generation.backend=fast",
            "generation.backend: unknown generation backend 'fast'; choose one of: auto, hf, paged, vllm",
        ),
        ("generation.paged_page_size=2", "generation.paged_page_size: must be >= 4"),
        (
            "generation.vllm_gpu_memory_utilization=1.5",
            "generation.vllm_gpu_memory_utilization: must be in (0, 1]",
        ),
        ("rewards.weights={mathh: 1.0}", "unknown reward 'mathh'"),
        ("policy.source=pretrained", "model.path: is required"),
        ("distill.students.0.teacher=nobody", "must be 'policy' or an earlier student"),
        ("policy.tiny.arch=gpt9", "unknown tiny architecture 'gpt9'"),
        ("bogus=1", "unknown key bogus"),
        ("fused_kernels.dw_accumulation=bf16", "choose one of: fp32, weight"),
        ("policy.upcycle={num_experts: 4, experts_per_token: 2}", "model.upcycle: needs source=pretrained"),
        ("policy.cold_start=true", "model.cold_start: is for pretrained models"),
        ("policy.source=layers", "choose one of: tiny, pretrained"),
        (  # the demo's student is merged from the policy (path: policy); these start from a bare one
            "distill.students=[{name: student-dense, source: layers, num_layers: 2}]",
            "distill.students[student-dense].path: is required when source=layers",
        ),
        (
            "distill.students=[{name: student-dense, source: tiny, num_layers: 3}]",
            "num_layers: is only read when source=layers",
        ),
    ],
)
def test_bad_values_name_the_key(override, needle):
    with pytest.raises(ConfigError, match=None) as exc:
        load_config(None, [override])
    assert needle in str(exc.value)


def test_malformed_yaml_reports_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run:\n  name: x\n  seed: [1, 2\n")
    with pytest.raises(ConfigError, match=r"malformed YAML in .*bad.yaml \(line \d+"):
        load_config(bad)


def test_top_level_must_be_mapping(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(bad)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/nonexistent/x.yaml")


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "novalue")
    with pytest.raises(ConfigError, match="indexes a list of 1 items"):
        apply_override({"a": [{"b": 1}]}, "a.3.b=2")


def test_fingerprint_tracks_results_not_tracking():
    a = load_config()
    assert a.fingerprint() == load_config(None, ["tracking.report_to=none"]).fingerprint()
    assert a.fingerprint() != load_config(None, ["rl.max_steps=1"]).fingerprint()


def test_every_field_documented():
    missing = [key for key, _, _, doc in describe(Config) if not doc]
    assert not missing, f"undocumented config fields: {missing}"


REAL = ["policy.source=pretrained", "policy.path=models/dense"]


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["policy.upcycle={num_experts: 1}"], "upcycle.num_experts: must be >= 2"),
        (
            ["policy.upcycle={num_experts: 4, experts_per_token: 1}"],
            "upcycle.experts_per_token: must be in [2, num_experts=4]",
        ),
        (
            ["policy.upcycle={num_experts: 4, experts_per_token: 5}"],
            "upcycle.experts_per_token: must be in [2, num_experts=4]",
        ),
        (["policy.upcycle={num_experts: 4, routers: 2}"], "unknown key policy.upcycle.routers"),
        (
            [
                "distill.students.0.source=layers",
                "distill.students.0.path=m",
                "distill.students.0.num_layers=0",
            ],
            "num_layers: must be >= 1 when source=layers",
        ),
        (
            [
                "distill.students.0.source=pretrained",
                "distill.students.0.path=m",
                "distill.students.0.upcycle={num_experts: 2}",
            ],
            "students are dense; upcycling is for the policy",
        ),
    ],
)
def test_real_model_fields_are_validated(overrides, needle):
    with pytest.raises(ConfigError) as exc:
        load_config(None, REAL + overrides)
    assert needle in str(exc.value)


def test_real_model_fields_load():
    cfg = load_config(
        None,
        REAL
        + [
            "policy.upcycle={num_experts: 8, experts_per_token: 2}",
            "policy.cold_start=true",
            "distill.students.0.source=layers",
            "distill.students.0.path=x.gguf",
            "distill.students.0.num_layers=6",
        ],
    )
    assert cfg.policy.upcycle.num_experts == 8 and cfg.policy.upcycle.experts_per_token == 2
    assert cfg.policy.upcycle.arch == "auto" and cfg.policy.upcycle.expert_noise == 0.0
    assert cfg.distill.students[0].num_layers == 6 and cfg.policy.cold_start
