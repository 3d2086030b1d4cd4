"""The typed configuration of a selfdistill run: every field, its type, default and meaning.

Load with `load_config("configs/demo.yaml", ["rl.max_steps=50"])`. Unknown keys, wrong types
and impossible values raise `ConfigError` naming the key. `selfdistill config` prints this
file's documentation as a table. Each field is documented once, here.
"""

# long module: the whole schema (every section's fields, defaults, docs and checks) in one place, by design

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from rewards.judge.config import JudgeConfig
from selfdistill.configio import ConfigError, apply_override, from_dict, load_yaml, to_dict

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


def opt(default: Any, doc: str) -> Any:
    """A dataclass field with a default and its one-line documentation."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: json.loads(json.dumps(d)), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


def section(cls: type, doc: str) -> Any:
    return field(default_factory=cls, metadata={"doc": doc})


def _check(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {message}")


@dataclass
class RunConfig:
    name: str = opt("demo", "Run name; outputs go to <output_dir>/<name>/ and the W&B group is this name.")
    output_dir: str = opt("runs", "Directory that holds one sub-directory per run.")
    seed: int = opt(0, "Seed for task generation, model init, sampling and training.")
    rounds: int = opt(2, "Number of RL -> collect -> SFT rounds (the rounds preset; other plans ignore it).")
    device: Literal["auto", "cpu", "cuda"] = opt("auto", "Where models run; auto picks CUDA when available.")
    threads: int = opt(0, "torch CPU threads (0 = torch's default).")
    experts_implementation: Literal["auto", "eager", "batched_mm", "grouped_mm"] = opt(
        "auto",
        "How transformers runs a MoE block's experts (every MoE the run loads): eager (a loop over the experts), "
        "batched_mm (a weight gather per routed token; memory-hungry in training), grouped_mm (one grouped GEMM); "
        "auto: the fastest measured on the run's device (models.loading.FASTEST_EXPERTS, "
        "scripts/bench_moe_experts.py).",
    )
    dist_timeout_s: int = opt(
        1800,
        "Distributed jobs: seconds a rank waits in a collective (e.g. for rank 0 writing the report) before the "
        "job fails; raise it when one rank does long work the others wait for.",
    )

    def __post_init__(self) -> None:
        _check(self.rounds >= 1, "run.rounds", f"must be >= 1, got {self.rounds}")
        _check(self.dist_timeout_s >= 1, "run.dist_timeout_s", f"must be >= 1, got {self.dist_timeout_s}")
        _check(
            bool(self.name) and "/" not in self.name,
            "run.name",
            f"must be a non-empty name without '/', got {self.name!r}",
        )
        _check(self.threads >= 0, "run.threads", f"must be >= 0, got {self.threads}")


@dataclass
class TaskSourceConfig:
    type: str = opt("math", "Task source from the task registry: math, code, jsonl, parquet, hf.")
    n: int = opt(1000, "Number of tasks to draw from this source (generators) or at most to read (files).")
    path: str | None = opt(None, "File path (jsonl/parquet) or dataset id (hf).")
    split: str = opt("train", "Dataset split (hf).")
    subset: str | None = opt(None, "Dataset configuration name (hf).")
    kind: str = opt(
        "math", "Task kind of file/hf tasks, from the task-kind registry (generators know their own)."
    )
    prompt_field: str = opt("prompt", "Column holding the problem statement (files/hf).")
    answer_field: str = opt("answer", "Column holding the reference answer (math files/hf).")
    tests_field: str = opt("tests", "Column holding the tests (code files/hf), a mapping or JSON string.")
    difficulty: int = opt(1, "Generator difficulty level (1 = the demo's small numbers).")

    def __post_init__(self) -> None:
        _check(self.n >= 1, "tasks.sources[].n", f"must be >= 1, got {self.n}")


@dataclass
class TasksConfig:
    sources: list[TaskSourceConfig] = field(
        default_factory=lambda: [
            TaskSourceConfig(type="math", n=1000),
            TaskSourceConfig(type="code", n=1000),
        ],
        metadata={"doc": "Where tasks come from (see TaskSourceConfig)."},
    )
    eval_fraction: float = opt(
        0.1, "Fraction of tasks held out for evaluation, assigned by a hash of the prompt."
    )
    eval_max: int = opt(200, "At most this many held-out tasks are evaluated.")
    prompt_format: Literal["plain", "chat"] = opt(
        "plain", "plain: the prompt string as is; chat: wrap it as a user message for chat templates."
    )

    def __post_init__(self) -> None:
        _check(
            0.0 < self.eval_fraction < 1.0,
            "tasks.eval_fraction",
            f"must be in (0, 1), got {self.eval_fraction}",
        )
        _check(self.eval_max >= 1, "tasks.eval_max", f"must be >= 1, got {self.eval_max}")
        _check(len(self.sources) >= 1, "tasks.sources", "needs at least one source")


@dataclass
class TinyModelConfig:
    arch: str = opt("qwen3_moe", "Architecture of the tiny model built from scratch (see models/tiny.py).")
    hidden_size: int = opt(64, "Width of the tiny model.")
    num_layers: int = opt(2, "Number of transformer layers.")
    num_heads: int = opt(4, "Attention heads.")
    intermediate_size: int = opt(128, "MLP width (per expert for MoE).")
    num_experts: int = opt(8, "Experts per MoE layer (ignored by dense architectures).")
    experts_per_token: int = opt(2, "Top-k experts per token (MoE only).")

    def __post_init__(self) -> None:
        for key in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "num_experts",
            "experts_per_token",
        ):
            _check(getattr(self, key) >= 1, f"tiny.{key}", f"must be >= 1, got {getattr(self, key)}")
        _check(self.hidden_size % self.num_heads == 0, "tiny.hidden_size", "must be divisible by num_heads")
        _check(self.experts_per_token <= self.num_experts, "tiny.experts_per_token", "must be <= num_experts")


@dataclass
class BootstrapConfig:
    steps: int = opt(1200, "Pre-training steps of a tiny model on the worked-solution corpus.")
    corpus_size: int = opt(20000, "Worked solutions generated for pre-training.")
    mistake_rate: float = opt(0.4, "Fraction of corpus solutions that contain a realistic mistake.")
    learning_rate: float = opt(3e-3, "Pre-training learning rate.")
    batch_size: int = opt(64, "Pre-training batch size.")

    def __post_init__(self) -> None:
        _check(
            0.0 <= self.mistake_rate < 1.0,
            "bootstrap.mistake_rate",
            f"must be in [0, 1), got {self.mistake_rate}",
        )
        _check(self.steps >= 1 and self.batch_size >= 1, "bootstrap", "steps and batch_size must be >= 1")


@dataclass
class UpcycleConfig:
    num_experts: int = opt(4, "Experts per MoE layer; each starts as a copy of the dense MLP.")
    experts_per_token: int = opt(2, "Top-k experts per token (>= 2, or the router never gets a gradient).")
    arch: str = opt(
        "auto",
        "Target MoE model_type; auto: llama/mistral -> mixtral, qwen3 -> qwen3_moe, qwen2 -> qwen2_moe.",
    )
    router_std: float = opt(
        0.02,
        "Std of the random router init. Exact at any value (identical experts, renormalised weights); "
        "non-zero so different tokens pick different experts and the copies can diverge.",
    )
    expert_noise: float = opt(
        0.0, "Relative noise added to the expert copies (breaks exact function preservation)."
    )
    seed: int = opt(0, "Seed of the router init and expert noise.")

    def __post_init__(self) -> None:
        _check(self.num_experts >= 2, "upcycle.num_experts", f"must be >= 2, got {self.num_experts}")
        _check(
            2 <= self.experts_per_token <= self.num_experts,
            "upcycle.experts_per_token",
            f"must be in [2, num_experts={self.num_experts}], got {self.experts_per_token} (top-1 routing "
            "renormalises to weight 1: the router would never learn)",
        )
        _check(
            self.router_std >= 0 and self.expert_noise >= 0,
            "upcycle",
            "router_std and expert_noise must be >= 0",
        )


@dataclass
class ModelConfig:
    source: Literal["tiny", "pretrained"] = opt(
        "tiny", "tiny: build from scratch and pre-train on the bootstrap corpus; pretrained: load `path`."
    )
    path: str | None = opt(
        None,
        "Local directory, hub id or .gguf file of an AutoModelForCausalLM (source=pretrained); a .gguf is "
        "converted once into <run_dir>/models/imported-<name> (`selfdistill import-model` does the same by hand).",
    )
    upcycle: UpcycleConfig | None = opt(
        None,
        "source=pretrained, policy only: sparse-upcycle the dense `path` into a MoE that computes the same "
        "function (see models/upcycle.py), e.g. {num_experts: 4, experts_per_token: 2}.",
    )
    cold_start: bool = opt(
        False,
        "source=pretrained: SFT on the bootstrap corpus (procedural worked solutions, `bootstrap` settings) "
        "in the tasks' prompt format before round 1 (R1's order: cold-start SFT, then RL).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = opt(
        "auto", "Weights dtype; auto = bfloat16 on CUDA, float32 on CPU."
    )
    tiny: TinyModelConfig = section(TinyModelConfig, "Shape of a tiny model (source=tiny).")
    bootstrap: BootstrapConfig = section(BootstrapConfig, "Pre-training of a tiny model (source=tiny).")
    lora_r: int = opt(
        0,
        "LoRA rank for RL/SFT/distillation of this model (0 = full fine-tuning); adapters are merged into each saved model.",
    )
    lora_alpha: int = opt(32, "LoRA scaling numerator (the update is scaled by lora_alpha / lora_r).")
    lora_dropout: float = opt(0.0, "Dropout on the LoRA adapters' input.")
    lora_target_modules: list[str] = opt(
        ["q_proj", "k_proj", "v_proj", "o_proj"],
        "Module names that get LoRA adapters (attention by default; fused MoE experts are 3-D parameters, not modules).",
    )

    def __post_init__(self) -> None:
        if self.source == "pretrained":
            _check(bool(self.path), "model.path", "is required when source=pretrained")
        _check(
            self.upcycle is None or self.source == "pretrained", "model.upcycle", "needs source=pretrained"
        )
        _check(
            not self.cold_start or self.source != "tiny",
            "model.cold_start",
            "is for pretrained models (a tiny model is always pre-trained on the bootstrap corpus)",
        )
        _check(self.lora_r >= 0, "model.lora_r", f"must be >= 0, got {self.lora_r}")
        _check(
            0.0 <= self.lora_dropout < 1.0,
            "model.lora_dropout",
            f"must be in [0, 1), got {self.lora_dropout}",
        )
        _check(
            self.lora_r == 0 or bool(self.lora_target_modules),
            "model.lora_target_modules",
            "needs at least one module name when lora_r > 0",
        )


@dataclass
class StudentConfig(ModelConfig):
    source: Literal["tiny", "pretrained", "layers", "merge_experts"] = opt(
        "tiny",
        "tiny: build from scratch and pre-train; pretrained: load `path`; layers: keep `num_layers` evenly "
        "spaced decoder layers of the dense `path` (first and last included; embeddings, norm, LM head copied); "
        "merge_experts: the dense counterpart of the MoE `path` (or `policy`: the final policy) whose MLPs are "
        "router-usage-weighted expert averages, usage measured on the training prompts (`num_layers` > 0 cuts it).",
    )
    name: str = opt("student", "Name of the student in reports and on disk.")
    teacher: str = opt(
        "policy",
        "Whom this student learns from: the final policy, or the name of an earlier student (progressive chains).",
    )
    num_layers: int = opt(
        0,
        "source=layers: decoder layers the student keeps (1 <= num_layers <= the model's layers); "
        "source=merge_experts: the same cut after merging (0 = keep every layer).",
    )
    usage_prompts: int = opt(256, "source=merge_experts: training prompts the expert usage is measured on.")

    def __post_init__(self) -> None:
        super().__post_init__()
        key = f"distill.students[{self.name}]"
        if self.source == "layers":
            _check(
                bool(self.path), f"{key}.path", "is required when source=layers (a dense checkpoint or .gguf)"
            )
            _check(
                self.num_layers >= 1,
                f"{key}.num_layers",
                f"must be >= 1 when source=layers, got {self.num_layers}",
            )
        elif self.source == "merge_experts":
            _check(
                bool(self.path),
                f"{key}.path",
                "is required when source=merge_experts (an MoE checkpoint, or policy)",
            )
            _check(self.num_layers >= 0, f"{key}.num_layers", f"must be >= 0, got {self.num_layers}")
            _check(self.usage_prompts >= 1, f"{key}.usage_prompts", f"must be >= 1, got {self.usage_prompts}")
        else:
            _check(self.num_layers == 0, f"{key}.num_layers", "is only read when source=layers")
        _check(self.upcycle is None, f"{key}.upcycle", "students are dense; upcycling is for the policy")
        _check(not self.cold_start, f"{key}.cold_start", "is for the policy; students learn from the traces")


@dataclass
class RewardConfig:
    weights: dict[str, float] = opt(
        {"math": 1.0, "code": 1.0, "format": 0.2}, "Reward functions (registry names) and their weights."
    )
    code_timeout_s: float = opt(2.0, "Per-program deadline for code tests.")
    code_all_or_nothing: bool = opt(
        False, "Code reward 1 only if every test passes (else the passed fraction)."
    )
    math_text_fallback: bool = opt(
        False,
        "Math: read an answer stated in prose when a completion boxes nothing (rewards.math.prose). For scoring "
        "other models' outputs; keep it off for RL, where a lenient reader is what the policy learns to game.",
    )
    overlong_max_tokens: int = opt(
        0,
        "overlong reward (DAPO's soft overlong penalty): the length limit in tokens (0 = rl.max_completion_length).",
    )
    overlong_cache_tokens: int = opt(
        0,
        "overlong reward: the penalty falls linearly from 0 to -1 over the last this-many tokens before the limit "
        "(0 = a quarter of the limit).",
    )
    judge: JudgeConfig = section(
        JudgeConfig,
        "The judge reward (`judge` in weights, or collect.judge_min_score): a judge model scores each "
        "completion against a rubric (see docs/pipelines.md).",
    )

    sandbox_layers: list[str] = opt(
        [],
        "Code sandbox isolation layers the run requires (process, landlock, seccomp, namespaces, uid, cgroups): "
        "without them it refuses to start, naming the missing ones. Empty = every layer this machine offers "
        "(the sandbox's `auto`); either way the active layers are logged when the code reward starts and "
        "recorded in report.json.",
    )

    def __post_init__(self) -> None:
        from rewards.sandbox.config import ALL_LAYERS

        _check(bool(self.weights), "rewards.weights", "needs at least one reward")
        bad = [x for x in self.sandbox_layers if x not in ALL_LAYERS]
        _check(
            not bad, "rewards.sandbox_layers", f"unknown layer(s) {bad}; choose from: {', '.join(ALL_LAYERS)}"
        )
        _check(
            self.overlong_max_tokens >= 0,
            "rewards.overlong_max_tokens",
            f"must be >= 0, got {self.overlong_max_tokens}",
        )
        _check(
            self.overlong_cache_tokens >= 0,
            "rewards.overlong_cache_tokens",
            f"must be >= 0, got {self.overlong_cache_tokens}",
        )
        _check(
            self.overlong_max_tokens == 0 or self.overlong_cache_tokens <= self.overlong_max_tokens,
            "rewards.overlong_cache_tokens",
            f"must be <= overlong_max_tokens ({self.overlong_max_tokens}), got {self.overlong_cache_tokens}",
        )


@dataclass
class DynamicSamplingConfig:
    enabled: bool = opt(
        False,
        "DAPO dynamic sampling: drop groups whose rewards are all equal (zero advantages, no gradient) and "
        "refill the generation batch with groups of fresh training prompts.",
    )
    max_refills: int = opt(
        2,
        "Refill rounds (extra generation calls) per generation batch at most; still short after them, the batch "
        "is topped up with dropped groups, so its size never changes.",
    )

    def __post_init__(self) -> None:
        _check(
            self.max_refills >= 0, "rl.dynamic_sampling.max_refills", f"must be >= 0, got {self.max_refills}"
        )


@dataclass
class DifficultyFilterConfig:
    enabled: bool = opt(
        False,
        "Sample RL prompts (each round's set and dynamic-sampling refills) by their pass rates from RL and "
        "collect, kept in <run_dir>/pass_rates.json: always/never solved prompts get weight `floor`, others 1.",
    )
    floor: float = opt(
        0.1, "Sampling weight of prompts known to be always or never solved (> 0: still reachable)."
    )
    low: float = opt(0.0, "A pass rate <= this counts as never solved.")
    high: float = opt(1.0, "A pass rate >= this counts as always solved.")
    min_samples: float = opt(
        4.0, "Samples (decayed) a prompt needs before its rate counts; unknown prompts get 1."
    )
    decay: float = opt(
        0.5, "Weight of a prompt's older samples each time it is sampled again (0 = latest only)."
    )

    def __post_init__(self) -> None:
        key = "rl.difficulty_filter"
        _check(0.0 < self.floor <= 1.0, f"{key}.floor", f"must be in (0, 1], got {self.floor}")
        _check(
            0.0 <= self.low < self.high <= 1.0,
            f"{key}.low/high",
            f"need 0 <= low < high <= 1, got {self.low}, {self.high}",
        )
        _check(self.min_samples >= 0, f"{key}.min_samples", f"must be >= 0, got {self.min_samples}")
        _check(0.0 <= self.decay <= 1.0, f"{key}.decay", f"must be in [0, 1], got {self.decay}")


@dataclass
class RLConfig:
    algorithm: str = opt("gspo", "Loss from the algorithm registry: grpo, dr_grpo, dapo, gspo.")
    max_steps: int = opt(60, "Optimizer steps per round.")
    learning_rate: float = opt(1e-3, "Policy learning rate.")
    num_generations: int = opt(8, "Completions per prompt (the GRPO group size).")
    prompts_per_step: int = opt(8, "Prompts per optimizer step (batch = prompts_per_step * num_generations).")
    max_completion_length: int = opt(64, "Max new tokens per completion.")
    temperature: float = opt(1.0, "Sampling temperature of rollouts.")
    beta: float = opt(0.0, "KL coefficient to the reference policy (0 = no reference model is loaded).")
    router_aux_loss_coef: float = opt(
        0.0,
        "MoE load-balancing loss in RL. Off by default: it raised grad norms ~10x and hurt accuracy in GRPO (NeMo-RL #3169).",
    )
    max_grad_norm: float = opt(1.0, "Gradient clipping.")
    logging_steps: int = opt(5, "Log every n steps.")
    use_vllm: bool = opt(False, "Generate rollouts with vLLM (needs the vllm extra and a GPU).")
    steps_per_generation: int = opt(
        1,
        "Optimizer steps per generation batch; > 1 makes later steps off-policy so importance ratios (and GSPO) matter.",
    )
    routing: Literal["off", "measure", "replay"] = opt(
        "measure",
        "MoE only: measure the sampling-vs-training routing change, or replay the sampled experts (R2).",
    )
    freeze_router: bool = opt(False, "MoE only: keep router weights fixed during RL.")
    gradient_checkpointing: bool = opt(
        True, "Recompute activations in backward (saves memory; slower for tiny models)."
    )
    vllm_mode: Literal["colocate", "server"] = opt(
        "colocate",
        "use_vllm only: colocate = vLLM inside every training process (shares its GPU); server = a "
        "separate `trl vllm-serve`/`vllm serve` process at vllm_server_url (TRL's vllm_mode).",
    )
    vllm_server_url: str = opt(
        "http://localhost:8000", "use_vllm with vllm_mode=server: base URL of the vLLM server."
    )
    vllm_gpu_memory_utilization: float = opt(
        0.3, "use_vllm with vllm_mode=colocate: fraction of GPU memory vLLM takes."
    )
    vllm_tensor_parallel_size: int = opt(1, "use_vllm with vllm_mode=colocate: GPUs each vLLM engine spans.")
    save_steps: int = opt(
        0, "Checkpoint every n optimizer steps (0 = none: a killed RL stage restarts from its start)."
    )
    save_total_limit: int = opt(2, "Checkpoints kept per stage (older ones are deleted).")
    dynamic_sampling: DynamicSamplingConfig = section(
        DynamicSamplingConfig, "DAPO dynamic sampling (refill dead groups)."
    )
    difficulty_filter: DifficultyFilterConfig = section(
        DifficultyFilterConfig, "Online difficulty filtering of RL prompts."
    )

    def __post_init__(self) -> None:
        _check(self.save_steps >= 0, "rl.save_steps", f"must be >= 0, got {self.save_steps}")
        _check(
            self.save_total_limit >= 1, "rl.save_total_limit", f"must be >= 1, got {self.save_total_limit}"
        )
        _check(
            0 < self.vllm_gpu_memory_utilization <= 1,
            "rl.vllm_gpu_memory_utilization",
            f"must be in (0, 1], got {self.vllm_gpu_memory_utilization}",
        )
        _check(
            self.vllm_tensor_parallel_size >= 1,
            "rl.vllm_tensor_parallel_size",
            f"must be >= 1, got {self.vllm_tensor_parallel_size}",
        )
        _check(self.max_steps >= 0, "rl.max_steps", f"must be >= 0, got {self.max_steps}")
        _check(
            self.num_generations >= 2,
            "rl.num_generations",
            f"must be >= 2 (GRPO needs a group), got {self.num_generations}",
        )
        _check(
            self.prompts_per_step >= 1, "rl.prompts_per_step", f"must be >= 1, got {self.prompts_per_step}"
        )
        _check(self.temperature > 0, "rl.temperature", f"must be > 0, got {self.temperature}")
        _check(self.learning_rate > 0, "rl.learning_rate", f"must be > 0, got {self.learning_rate}")
        _check(
            self.steps_per_generation >= 1,
            "rl.steps_per_generation",
            f"must be >= 1, got {self.steps_per_generation}",
        )


@dataclass
class CollectConfig:
    num_prompts: int = opt(400, "Training prompts sampled per round.")
    k: int = opt(4, "Completions sampled per prompt (rejection sampling).")
    temperature: float = opt(0.8, "Sampling temperature.")
    top_p: float = opt(1.0, "Nucleus sampling.")
    max_new_tokens: int = opt(64, "Max new tokens per completion.")
    min_reward: float = opt(1.0, "Keep completions whose correctness reward is at least this.")
    require_format: bool = opt(True, "Keep only completions with a well-formed <think>...</think> answer.")
    max_per_prompt: int = opt(2, "Keep at most this many distinct completions per prompt.")
    chunk_size: int = opt(
        100, "Prompts per trace-store shard; a killed run resumes from the last full chunk."
    )
    batch_size: int = opt(128, "Sequences generated per forward batch.")
    judge_min_score: float | None = opt(
        None,
        "Keep only completions the judge (rewards.judge) scores at least this, in [0, 1]; unjudged ones are "
        "dropped (null = no judge filter).",
    )

    def __post_init__(self) -> None:
        _check(
            self.judge_min_score is None or 0.0 <= self.judge_min_score <= 1.0,
            "collect.judge_min_score",
            f"must be in [0, 1] or null, got {self.judge_min_score}",
        )
        _check(self.k >= 1, "collect.k", f"must be >= 1, got {self.k}")
        _check(self.temperature > 0, "collect.temperature", f"must be > 0, got {self.temperature}")
        _check(0 < self.top_p <= 1, "collect.top_p", f"must be in (0, 1], got {self.top_p}")
        _check(self.max_per_prompt >= 1, "collect.max_per_prompt", f"must be >= 1, got {self.max_per_prompt}")
        _check(self.chunk_size >= 1, "collect.chunk_size", f"must be >= 1, got {self.chunk_size}")


@dataclass
class SFTConfig:
    epochs: float = opt(2.0, "Passes over the traces.")
    learning_rate: float = opt(1e-3, "Learning rate.")
    batch_size: int = opt(32, "Sequences per optimizer step.")
    max_length: int = opt(256, "Max tokens per sequence (prompt + completion).")
    traces: Literal["current", "all"] = opt("all", "Train on this round's traces or on every round's so far.")
    max_steps: int = opt(-1, "Stop after this many steps (-1 = run the epochs).")
    gradient_checkpointing: bool = opt(
        True, "Recompute activations in backward (saves memory; slower for tiny models)."
    )
    save_steps: int = opt(
        0, "Checkpoint every n optimizer steps (0 = none: a killed stage restarts from its start)."
    )
    save_total_limit: int = opt(2, "Checkpoints kept per stage (older ones are deleted).")
    router_aux_loss_coef: float | None = opt(
        None,
        "MoE only: weight of the router load-balancing loss added to the SFT loss (null = the model config's "
        "own router_aux_loss_coef, e.g. 0.001 for Qwen3-MoE; 0 = off). Ignored by dense models.",
    )

    def __post_init__(self) -> None:
        _check(
            self.router_aux_loss_coef is None or self.router_aux_loss_coef >= 0,
            "sft.router_aux_loss_coef",
            f"must be >= 0 or null, got {self.router_aux_loss_coef}",
        )
        _check(self.save_steps >= 0, "sft.save_steps", f"must be >= 0, got {self.save_steps}")
        _check(
            self.save_total_limit >= 1, "sft.save_total_limit", f"must be >= 1, got {self.save_total_limit}"
        )
        _check(self.epochs > 0, "sft.epochs", f"must be > 0, got {self.epochs}")
        _check(self.batch_size >= 1, "sft.batch_size", f"must be >= 1, got {self.batch_size}")


@dataclass
class DistillConfig:
    method: str = opt(
        "sft",
        "Distillation method from the registry: sft (sequence-level SFT on the traces), logit_kd, on_policy, "
        "hidden_align, progressive_experts (see docs/distillation.md).",
    )
    students: list[StudentConfig] = field(
        default_factory=lambda: [StudentConfig(name="student", tiny=TinyModelConfig(arch="qwen2"))],
        metadata={"doc": "Dense students, each distilled from the traces."},
    )
    sft: SFTConfig = section(SFTConfig, "Training settings of the distillation SFT.")
    min_reward: float = opt(1.0, "Use traces whose correctness reward is at least this.")
    divergence: Literal["forward_kl", "reverse_kl", "jsd"] = opt(
        "forward_kl", "Teacher-student divergence of logit_kd / on_policy (jsd mixes the two with beta)."
    )
    beta: float = opt(0.5, "JSD interpolation: 0 = forward KL, 1 = reverse KL (divergence=jsd only).")
    temperature: float = opt(1.0, "Softmax temperature of both models in the divergence (no T^2 factor).")
    hard_weight: float = opt(
        0.5, "Weight of the hard cross-entropy on the trace tokens; (1 - hard_weight) goes to the divergence."
    )
    on_policy_fraction: float = opt(
        1.0,
        "on_policy: fraction of batches whose completions the student samples (GKD's lambda); the rest use traces.",
    )
    on_policy_max_new_tokens: int = opt(64, "on_policy: max tokens the student samples per completion.")
    on_policy_temperature: float = opt(1.0, "on_policy: sampling temperature of the student's completions.")
    hidden_align_weight: float = opt(
        0.0,
        "Weight of the hidden-state alignment loss added to any method (method=hidden_align uses 1.0 when 0).",
    )
    hidden_align_loss: Literal["nmse", "mse", "cosine"] = opt(
        "nmse",
        "Hidden-state alignment loss: nmse (squared error over the teacher state's mean square: scale-free), "
        "mse (plain; its size follows the model's hidden-state scale) or cosine (1 - cos).",
    )
    hidden_align_layers: list[list[int]] = opt(
        [[-1, -1]],
        "Pairs [student_layer, teacher_layer] of decoder-layer outputs to align (negative = from the end).",
    )
    attention_align_weight: float = opt(
        0.0,
        "Weight of the attention-transfer loss added to any method: the student's attention distributions "
        "match the teacher's on the completion tokens (0 = off; see docs/distillation.md).",
    )
    attention_align_layers: list[list[int]] = opt(
        [[-1, -1]],
        "Pairs [student_layer, teacher_layer] whose attention maps are aligned (negative = from the end).",
    )
    attention_align_loss: Literal["kl", "mse"] = opt(
        "kl", "Attention-transfer loss per query row: kl = KL(teacher || student), mse = squared difference."
    )
    attention_align_heads: Literal["auto", "mean"] = opt(
        "auto",
        "auto: head h to head h when the counts match, student head to the mean of its group of teacher "
        "heads when they divide, else both head-averaged; mean: always head-averaged.",
    )
    progressive_groups: int = opt(
        2,
        "progressive_experts: layer groups (shallow to deep) whose MoE-block regression switches on one after another.",
    )
    progressive_fraction: float = opt(
        0.5,
        "progressive_experts: share of the steps spent on the block regression; the final stage trains "
        "progressive_final alone.",
    )
    progressive_final: Literal["sft", "logit_kd"] = opt(
        "sft",
        "progressive_experts: the output objective of the final stage (sft: trace CE; logit_kd: CE + divergence).",
    )
    progressive_layers: list[list[int]] = opt(
        [],
        "progressive_experts: [student_layer, teacher_layer] pairs; empty = every student layer with the teacher "
        "layer at the same relative depth.",
    )
    progressive_weight: float = opt(1.0, "progressive_experts: weight of the MoE-block regression.")
    progressive_loss: Literal["nmse", "mse", "cosine"] = opt(
        "nmse",
        "progressive_experts: loss of the MoE-block regression, one of hidden_align_loss's (nmse: scale-free; "
        "mse: plain, reached 13-21 against a CE of ~1.2 on SmolLM2 and swamped it; cosine: 1 - cos).",
    )
    attention_align_chunk: int = opt(
        128,
        "Query positions per chunk when the aligned layers' attention is recomputed (memory O(chunk x T)).",
    )

    # long function: one check per field of one section, each naming its key
    def __post_init__(self) -> None:
        _check(0.0 <= self.beta <= 1.0, "distill.beta", f"must be in [0, 1], got {self.beta}")
        _check(self.temperature > 0, "distill.temperature", f"must be > 0, got {self.temperature}")
        _check(
            0.0 <= self.hard_weight <= 1.0,
            "distill.hard_weight",
            f"must be in [0, 1], got {self.hard_weight}",
        )
        _check(
            0.0 <= self.on_policy_fraction <= 1.0,
            "distill.on_policy_fraction",
            f"must be in [0, 1], got {self.on_policy_fraction}",
        )
        _check(
            self.on_policy_max_new_tokens >= 1,
            "distill.on_policy_max_new_tokens",
            f"must be >= 1, got {self.on_policy_max_new_tokens}",
        )
        _check(
            self.on_policy_temperature > 0,
            "distill.on_policy_temperature",
            f"must be > 0 (the student samples), got {self.on_policy_temperature}",
        )
        _check(
            self.hidden_align_weight >= 0,
            "distill.hidden_align_weight",
            f"must be >= 0, got {self.hidden_align_weight}",
        )
        _check(
            bool(self.hidden_align_layers) and all(len(p) == 2 for p in self.hidden_align_layers),
            "distill.hidden_align_layers",
            f"must be a non-empty list of [student, teacher] pairs, got {self.hidden_align_layers}",
        )
        _check(
            self.attention_align_weight >= 0,
            "distill.attention_align_weight",
            f"must be >= 0, got {self.attention_align_weight}",
        )
        _check(
            bool(self.attention_align_layers) and all(len(p) == 2 for p in self.attention_align_layers),
            "distill.attention_align_layers",
            f"must be a non-empty list of [student, teacher] pairs, got {self.attention_align_layers}",
        )
        _check(
            self.progressive_groups >= 1,
            "distill.progressive_groups",
            f"must be >= 1, got {self.progressive_groups}",
        )
        _check(
            0.0 < self.progressive_fraction <= 1.0,
            "distill.progressive_fraction",
            f"must be in (0, 1], got {self.progressive_fraction}",
        )
        _check(
            all(len(p) == 2 for p in self.progressive_layers),
            "distill.progressive_layers",
            f"must be a list of [student, teacher] pairs, got {self.progressive_layers}",
        )
        _check(
            self.progressive_weight >= 0,
            "distill.progressive_weight",
            f"must be >= 0, got {self.progressive_weight}",
        )
        _check(
            self.attention_align_chunk >= 1,
            "distill.attention_align_chunk",
            f"must be >= 1, got {self.attention_align_chunk}",
        )


@dataclass
class EvalConfig:
    num_samples: int = opt(4, "Samples per held-out problem (pass@1 is their mean accuracy).")
    temperature: float = opt(0.7, "Sampling temperature for evaluation.")
    top_p: float = opt(1.0, "Nucleus sampling for evaluation.")
    max_new_tokens: int = opt(64, "Max new tokens per sample.")
    batch_size: int = opt(128, "Sequences generated per forward batch.")
    rl_checkpoints: bool = opt(True, "Also evaluate each round's policy right after RL (before its SFT).")

    def __post_init__(self) -> None:
        _check(self.num_samples >= 1, "eval.num_samples", f"must be >= 1, got {self.num_samples}")
        _check(self.temperature >= 0, "eval.temperature", f"must be >= 0, got {self.temperature}")


@dataclass
class GenerationConfig:
    backend: str = opt(
        "auto",
        "Sampling engine of collect, eval, on-policy distillation and `selfdistill generate`: hf (static "
        "batches), paged (transformers' continuous batching), vllm (the vllm extra, CUDA), or auto (vllm on CUDA "
        "when installed, else paged where it is not slower, else hf).",
    )
    paged_on_cpu: bool = opt(
        True,
        "auto on CPU may pick paged (true) or always keeps hf (false). paged qualifies there only with "
        "paged_varlen_attention on a model it supports and paged_cpu_min_in_flight sequences: measured 1.27x hf "
        "on the demo policy (batch 128) and 1.04x on SmolLM2-135M (batch 64), 0.64-0.86x with transformers' "
        "dense attention (docs/benchmarks.md).",
    )
    paged_page_size: int = opt(32, "paged: tokens per KV-cache page.")
    paged_max_batch_tokens: int = opt(1024, "paged: most tokens (prefill + decode) in one forward.")
    paged_cpu_min_in_flight: int = opt(
        64,
        "auto on CPU picks paged only when at least this many sequences decode at once (min(batch_size, "
        "prompts x n)): below it the per-step scheduling and per-call set-up outweigh the gain (docs/benchmarks.md).",
    )
    paged_varlen_attention: bool = opt(
        True,
        "paged: attend request by request (selfdistill.generation.paged_attention) instead of transformers' dense "
        "SDPA over every request's keys at once, whose cost grows with the square of the requests in flight (CPU).",
    )
    vllm_tensor_parallel_size: int = opt(1, "vllm: GPUs the engine spans (tensor parallel).")
    vllm_gpu_memory_utilization: float = opt(
        0.85, "vllm: fraction of GPU memory the engine takes (weights + KV cache)."
    )
    vllm_prefix_caching: bool = opt(
        True, "vllm: share the KV cache of common prefixes (a prompt's k samples)."
    )
    vllm_max_model_len: int = opt(0, "vllm: context length (0 = the model's own).")

    def __post_init__(self) -> None:
        _check(
            self.paged_page_size >= 4,
            "generation.paged_page_size",
            f"must be >= 4, got {self.paged_page_size}",
        )
        _check(
            self.paged_cpu_min_in_flight >= 1,
            "generation.paged_cpu_min_in_flight",
            f"must be >= 1, got {self.paged_cpu_min_in_flight}",
        )
        _check(
            self.paged_max_batch_tokens >= 1,
            "generation.paged_max_batch_tokens",
            f"must be >= 1, got {self.paged_max_batch_tokens}",
        )
        _check(
            self.vllm_tensor_parallel_size >= 1,
            "generation.vllm_tensor_parallel_size",
            f"must be >= 1, got {self.vllm_tensor_parallel_size}",
        )
        _check(
            0 < self.vllm_gpu_memory_utilization <= 1,
            "generation.vllm_gpu_memory_utilization",
            f"must be in (0, 1], got {self.vllm_gpu_memory_utilization}",
        )
        _check(
            self.vllm_max_model_len >= 0,
            "generation.vllm_max_model_len",
            f"must be >= 0, got {self.vllm_max_model_len}",
        )


@dataclass
class TrackingConfig:
    report_to: Literal["wandb", "none"] = opt(
        "wandb", "wandb: log every stage as a W&B run; none: no tracking."
    )
    project: str = opt("selfdistill", "W&B project.")
    mode: Literal["auto", "offline", "online"] = opt(
        "auto", "auto = online when WANDB_API_KEY is set, offline otherwise (sync later with `wandb sync`)."
    )


@dataclass
class FusedKernelsConfig:
    dw_accumulation: Literal["fp32", "weight"] = opt(
        "fp32",
        "LM-head weight gradient summed over token chunks in fp32 (exact; 4*V*H extra bytes) or in the weight's "
        "dtype (bf16 on GPU: the smaller peak, as Liger; error 6.9e-3 vs 6.6e-3 at 4096x151936).",
    )
    fp32_logits: bool = opt(
        True,
        "Distillation reads each chunk's logits in fp32 from the GEMM (about 6x lower bf16 error, more chunks).",
    )


@dataclass
class TraceSetConfig:
    type: Literal["jsonl", "parquet", "hf"] = opt(
        "jsonl",
        "Where the (prompt, completion) rows are: a JSONL or parquet file, or a Hugging Face dataset.",
    )
    path: str = opt("", "File path (jsonl/parquet) or dataset id / local dataset directory (hf).")
    split: str = opt("train", "Dataset split (hf).")
    subset: str | None = opt(None, "Dataset configuration name (hf).")
    prompt_field: str = opt(
        "prompt",
        "Column holding the problem statement (rendered like the tasks' prompts, tasks.prompt_format).",
    )
    completion_field: str = opt("completion", "Column holding the completion trained on.")
    kind: str = opt(
        "math", "Task kind of the rows (chat prompts carry its instructions), from the task-kind registry."
    )
    n: int = opt(0, "Read at most this many rows (0 = all).")

    def __post_init__(self) -> None:
        _check(bool(self.path), "external[].path", "is required")
        _check(self.n >= 0, "external[].n", f"must be >= 0, got {self.n}")


@dataclass
class StageConfig:
    kind: str = opt("", "What the stage does, from the stage-kind registry: rl, collect, sft, distill, eval.")
    name: str | None = opt(
        None,
        "Its output's name, which later stages read it by (rl/sft: a model, collect: a trace set); default "
        "<kind><n>. distill makes the students of distill.students; eval: the report row's name (default: the model's).",
    )
    model: str | None = opt(
        None,
        "The model it starts from: base or an earlier stage's output name (rl/sft: trains it, collect: samples "
        "it, distill: the teacher, eval: evaluates it; null = base, for eval every model made before it).",
    )
    traces: list[str] = opt(
        [], "sft/distill: the earlier collect stages whose traces it trains on (several allowed)."
    )
    external: list[TraceSetConfig] = field(
        default_factory=list,
        metadata={"doc": "sft/distill: (prompt, completion) rows from files or a dataset, mixed in."},
    )
    overrides: dict[str, dict[str, Any]] = opt(
        {},
        "This stage's settings over the run's, by section (e.g. {rl: {max_steps: 10}}); each kind names the "
        "sections it may override.",
    )


@dataclass
class PipelineConfig:
    stage_type: ClassVar[type] = (
        StageConfig  # for code that builds stages (the presets) without importing this module
    )
    preset: str | None = opt(
        None,
        "A named plan from the preset registry: rounds (run.rounds of RL -> collect -> SFT, then distill, eval), "
        "r1_zero, r1 (see docs/pipelines.md); null = stages when given, else rounds.",
    )
    stages: list[StageConfig] = field(
        default_factory=list,
        metadata={"doc": "A custom plan: the stages in order (see StageConfig); leave preset null."},
    )


@dataclass
class Config:
    run: RunConfig = section(RunConfig, "Run identity, rounds and device.")
    tasks: TasksConfig = section(TasksConfig, "Task sources and the held-out split.")
    policy: ModelConfig = section(ModelConfig, "The MoE policy.")
    rewards: RewardConfig = section(RewardConfig, "Reward functions and their settings.")
    rl: RLConfig = section(RLConfig, "RL (TRL GRPOTrainer).")
    collect: CollectConfig = section(CollectConfig, "Rejection sampling of the policy's traces.")
    sft: SFTConfig = section(SFTConfig, "SFT of the policy on its own traces (cold start of the next round).")
    distill: DistillConfig = section(DistillConfig, "Distillation of the traces into dense students.")
    eval: EvalConfig = section(EvalConfig, "Held-out evaluation of every model.")
    generation: GenerationConfig = section(
        GenerationConfig, "Sampling engine of collect, eval and on-policy distillation."
    )
    tracking: TrackingConfig = section(TrackingConfig, "Weights & Biases.")
    kernels: Literal["eager", "fused"] = opt(
        "eager", "LM-head loss in SFT/distill: eager logits or fused kernels."
    )
    fused_kernels: FusedKernelsConfig = section(
        FusedKernelsConfig, "Options of the fused LM-head kernels (kernels: fused)."
    )
    pipeline: PipelineConfig = section(
        PipelineConfig, "The plan: a preset or the stages in order (docs/pipelines.md)."
    )

    def __post_init__(self) -> None:
        names = [s.name for s in self.distill.students]
        _check(len(names) == len(set(names)), "distill.students", f"names must be unique, got {names}")
        for i, s in enumerate(self.distill.students):
            _check(
                s.teacher == "policy" or s.teacher in names[:i],
                f"distill.students[{i}].teacher",
                f"must be 'policy' or an earlier student ({', '.join(names[:i]) or 'none'}), got {s.teacher!r}",
            )
        if "judge" in self.rewards.weights or self.collect.judge_min_score is not None:
            try:
                self.rewards.judge.require_model()
            except ValueError as exc:
                raise ConfigError(f"rewards.judge.{exc}") from None
        self.rewards.run_dir = self.run_dir  # not a field: where the judge cache goes by default

    @property
    def run_dir(self) -> Path:
        return Path(self.run.output_dir) / self.run.name

    def fingerprint(self) -> str:
        """Hash of the settings that change results: everything but tracking, and only values that
        differ from the defaults, so adding a config field (at its default) keeps old runs resumable."""
        data = _non_default(to_dict(self), to_dict(Config()))
        data.pop("tracking", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _non_default(value: Any, default: Any) -> Any:
    """The parts of ``value`` (nested dicts) that differ from ``default``; lists compare whole."""
    if isinstance(value, dict) and isinstance(default, dict):
        out = {}
        for key, v in value.items():
            if key not in default:
                out[key] = v
            elif v != default[key]:
                out[key] = _non_default(v, default[key])
        return out
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load ``path`` (default: the embedded demo) with ``key=value`` overrides, fully validated."""
    data = load_yaml(str(path or DEMO_CONFIG))
    for override in overrides or []:
        apply_override(data, override)
    cfg = from_dict(Config, data)
    _validate_registries(cfg)
    from selfdistill.planning import apply_overrides, plan

    plan(cfg)  # a plan that reads what no earlier stage makes (and the like) fails here, naming the stage
    for i, stage in enumerate(cfg.pipeline.stages):  # registry names a stage's overrides set
        where = f"pipeline.stages[{i}].overrides"
        try:
            _validate_registries(apply_overrides(cfg, stage.overrides, where))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    cfg.source_path = str(path or DEMO_CONFIG)  # not a field: where it was read from, for provenance only
    return cfg


def check_backend(name: str, key: str = "generation.backend") -> None:
    """``name`` is ``auto`` or a registered generation backend."""
    from selfdistill.registries import GENERATION_BACKENDS

    if name != "auto":
        try:
            GENERATION_BACKENDS.check(name, key)
        except ConfigError:
            raise ConfigError(
                f"{key}: unknown generation backend {name!r}; choose one of: "
                f"auto, {', '.join(GENERATION_BACKENDS.names())}"
            ) from None


def _validate_registries(cfg: Config) -> None:
    """Names that point into registries are checked here so a typo fails before any work."""
    from rewards.registry import reward_names
    from selfdistill.distill.methods import DISTILL_METHODS
    from selfdistill.registries import ALGORITHMS, TASK_SOURCES, TINY_ARCHS
    from selfdistill.tasks.kinds import TASK_KINDS

    ALGORITHMS.check(cfg.rl.algorithm, "rl.algorithm")
    check_backend(cfg.generation.backend)
    DISTILL_METHODS.check(cfg.distill.method, "distill.method")
    for i, src in enumerate(cfg.tasks.sources):
        TASK_SOURCES.check(src.type, f"tasks.sources[{i}].type")
        TASK_KINDS.check(src.kind, f"tasks.sources[{i}].kind")
    for name in cfg.rewards.weights:
        if name not in reward_names():
            raise ConfigError(
                f"rewards.weights: unknown reward {name!r}; choose from: {', '.join(reward_names())}"
            )
    for key, model in [("policy", cfg.policy)] + [
        (f"distill.students[{i}]", s) for i, s in enumerate(cfg.distill.students)
    ]:
        if model.source == "tiny":
            TINY_ARCHS.check(model.tiny.arch, f"{key}.tiny.arch")
    for i, stage in enumerate(cfg.pipeline.stages):
        for j, ext in enumerate(stage.external):
            TASK_KINDS.check(ext.kind, f"pipeline.stages[{i}].external[{j}].kind")
