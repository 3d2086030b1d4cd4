"""Loading under launchers: device types not strings, configured dtypes honoured, FSDP/ZeRO-3 leave placement alone.

No GPU is needed: the resolution functions are pure, and a model loaded "for cuda:1" under an FSDP launch must
stay where it was loaded (CPU here), which a CPU-only torch proves by not failing on ``.to("cuda:1")``.
"""

from __future__ import annotations

import pytest
import torch

from selfdistill.models.loading import load_model, placement, precision_args, resolve_dtype, save_model


@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda", 3), torch.device("cuda")])
def test_auto_dtype_and_mixed_precision_on_any_cuda_rank(device):
    """Under accelerate launch/torchrun each rank's device is cuda:<local_rank>: still bf16."""
    assert resolve_dtype("auto", device) == torch.bfloat16
    assert precision_args(device, torch.bfloat16) == {"use_cpu": False, "bf16": True}
    assert precision_args(device, torch.float32)["bf16"]  # fp32 weights: bf16 autocast
    assert not precision_args(device, torch.float16)[
        "bf16"
    ]  # fp16 weights: the Trainer's scaler would refuse


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_cpu_is_float32_without_autocast(device):
    assert resolve_dtype("auto", device) == torch.float32
    assert precision_args(device, torch.float32) == {"use_cpu": True, "bf16": False}
    assert resolve_dtype("bfloat16", device) == torch.bfloat16


def test_unknown_dtype_is_a_clear_error():
    from selfdistill.configio import ConfigError

    with pytest.raises(
        ConfigError, match="unknown dtype 'fp8'; choose one of: auto, float32, bfloat16, float16"
    ):
        resolve_dtype("fp8", "cpu")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="proves the bf16 request by its refusal on a CPU-only machine"
)
def test_rl_and_sft_trainer_args_ask_for_bf16_on_a_launcher_rank(tmp_path):
    """``cuda:1`` (a launcher's rank) must give the Trainer ``bf16=True``; on this CPU-only machine transformers
    refuses exactly that request, which shows it was made (a ``device == "cuda"`` test made none)."""
    from selfdistill.config import RLConfig, SFTConfig
    from selfdistill.stages.rl import grpo_args
    from selfdistill.stages.sft import sft_args

    with pytest.raises(ValueError, match="bf16"):
        sft_args(SFTConfig(), tmp_path, 0, "none", "cuda:1", 8, "t", model_dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="bf16"):
        grpo_args(
            RLConfig(),
            tmp_path,
            seed=0,
            report_to="none",
            device="cuda:1",
            run_name="t",
            weights=[1.0],
            model_dtype=torch.bfloat16,
        )
    assert not sft_args(SFTConfig(), tmp_path, 0, "none", "cpu", 8, "t", model_dtype=torch.float32).bf16


@pytest.fixture
def saved(tiny_dense, tokenizer, tmp_path):
    return save_model(tiny_dense, tokenizer, tmp_path / "m")


@pytest.mark.parametrize("engine", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_training_load_under_fsdp_or_zero3_leaves_placement_to_the_trainer(saved, monkeypatch, engine):
    """Every rank moving the whole model to its GPU before FSDP/ZeRO-3 shards it is what stops a 30B model on 80 GB
    cards. Loading for training under an engine must not move it; the weights are those of a plain load."""
    reference, _ = load_model(saved, device="cpu", dtype="float32")
    monkeypatch.setenv(engine, "true")
    assert placement("cuda:1", train=True).device is None
    assert placement("cuda:1", train=False).device == "cuda:1"  # sampling needs the whole model on the rank
    if engine == "ACCELERATE_USE_DEEPSPEED":
        pytest.importorskip("deepspeed")  # ZeRO-3 init from accelerate's plugin needs deepspeed itself
    model, _ = load_model(saved, device="cuda:1", dtype="float32", train=True)  # a CPU-only torch: no cuda:1
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    ref = dict(reference.named_parameters())
    assert all(torch.equal(p, ref[name]) for name, p in model.named_parameters())


def test_outside_an_engine_the_model_goes_to_its_device(saved, monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert placement("cuda:0", train=True).device == "cuda:0"
    model, _ = load_model(saved, device="cpu", dtype="bfloat16", train=True)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_sampling_load_under_fsdp_switches_rank0_only_loading_off(monkeypatch):
    """FSDP's cpu_ram_efficient_loading gives ranks > 0 meta tensors, which collect/eval cannot sample from."""
    import os

    from selfdistill.models.loading import _loading_context

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "true")
    with _loading_context(placement("cuda:1", train=False)):
        assert os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "false"
    assert os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"
    with _loading_context(placement("cuda:1", train=True)):  # training keeps rank-0 loading
        assert os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"


def test_policy_and_student_dtypes_reach_the_pipeline_loads(saved, tmp_path):
    """``policy.dtype`` and ``students[].dtype`` were read by nothing: the pipeline's loads must use them."""
    from selfdistill.config import load_config
    from selfdistill.pipeline import Run, plan
    from selfdistill.stages import steps as S
    from selfdistill.tracking import NullStage

    cfg = load_config(
        None,
        [
            f"run.output_dir={tmp_path}",
            "tracking.report_to=none",
            "run.device=cpu",
            "policy.dtype=bfloat16",
            "distill.students.0.dtype=float32",
            "tasks.sources.0.n=40",
            "tasks.sources.1.n=20",
            "tasks.eval_max=2",
            "eval.num_samples=1",
            "eval.max_new_tokens=2",
            "rewards.weights={math: 1.0}",
        ],
    )
    run = Run(cfg)
    run.finish("r1.sft", {"model_path": str(saved)})
    run.finish("distill.student-dense", {"model_path": str(saved)})
    steps = {s.key: s for s in plan(cfg)}
    policy = S.eval_step(run, NullStage(), steps["eval.policy-r1"])
    student = S.eval_step(run, NullStage(), steps["eval.student-dense"])
    # on CPU the eval row's memory is the weights' bytes: 2 per parameter in bfloat16, 4 in float32
    params = policy["params"]
    assert policy["memory_mb"] == pytest.approx(params * 2 / 2**20)
    assert student["memory_mb"] == pytest.approx(params * 4 / 2**20)


def test_experts_implementation_auto_picks_the_measured_fastest_and_keeps_the_function(
    tiny_moe, tokenizer, tmp_path
):
    """`run.experts_implementation`: auto resolves per device type from one table; every implementation computes
    the same logits (the switch is a speed choice only); a dense model is left alone; a typo is a clear error."""
    from selfdistill.configio import ConfigError
    from selfdistill.models.loading import FASTEST_EXPERTS, resolve_experts_implementation

    assert resolve_experts_implementation("auto", "cpu") == FASTEST_EXPERTS["cpu"]
    assert resolve_experts_implementation("auto", "cuda:1") == FASTEST_EXPERTS["cuda"]
    with pytest.raises(ConfigError, match="unknown experts implementation 'fast'"):
        resolve_experts_implementation("fast", "cpu")
    path = save_model(tiny_moe, tokenizer, tmp_path / "moe")
    ids = torch.randint(3, tiny_moe.config.vocab_size, (2, 12))  # (B, T)
    logits = {}
    for impl in ("eager", "batched_mm", "grouped_mm"):
        model, _ = load_model(path, device="cpu", dtype="float32", experts=impl)
        assert model.config._experts_implementation == impl
        with torch.no_grad():
            logits[impl] = model(input_ids=ids).logits  # (B, T, V)
    assert torch.allclose(logits["eager"], logits["grouped_mm"], atol=1e-5)
    assert torch.allclose(logits["eager"], logits["batched_mm"], atol=1e-5)
    auto, _ = load_model(path, device="cpu", dtype="float32")
    assert auto.config._experts_implementation == FASTEST_EXPERTS["cpu"]


def test_dense_models_have_no_experts_implementation(tiny_dense):
    from selfdistill.models.loading import set_experts_implementation

    assert set_experts_implementation(tiny_dense, "eager", "cpu") is None


def test_sft_warmup_follows_the_steps_that_run(tmp_path):
    """The warm-up is a tenth of the steps that will run (max_steps when set), not of the data: 2 steps on
    160 rows used to warm up for 2 steps, the first at learning rate 0; under 20 steps there is none."""
    from selfdistill.config import SFTConfig
    from selfdistill.stages.sft import sft_args

    short = sft_args(SFTConfig(max_steps=2, batch_size=8), tmp_path, 0, "none", "cpu", 160, "t")
    assert short.warmup_steps == 0
    assert sft_args(SFTConfig(max_steps=10), tmp_path, 0, "none", "cpu", 160, "t").warmup_steps == 0
    assert sft_args(SFTConfig(max_steps=50), tmp_path, 0, "none", "cpu", 10_000, "t").warmup_steps == 5
    by_epochs = sft_args(
        SFTConfig(epochs=1, batch_size=8, max_steps=-1), tmp_path, 0, "none", "cpu", 8000, "t"
    )
    assert by_epochs.warmup_steps == 20  # 1000 steps: capped


def test_rl_warmup_follows_max_steps(tmp_path):
    """10 RL steps used to warm up for 1, which ran at learning rate 0 (a tenth of the round wasted)."""
    from selfdistill.config import RLConfig
    from selfdistill.stages.rl import grpo_args

    def warmup(steps: int) -> int:
        args = grpo_args(
            RLConfig(max_steps=steps),
            tmp_path,
            seed=0,
            report_to="none",
            device="cpu",
            run_name="t",
            weights=[1.0],
        )
        return args.warmup_steps

    assert (warmup(10), warmup(40), warmup(200)) == (0, 4, 5)
