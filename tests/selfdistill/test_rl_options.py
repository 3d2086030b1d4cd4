"""RL options (issue #17): dynamic sampling's batch arithmetic and its refills inside a real GRPOTrainer step,
the pass-rate store of difficulty filtering (weights, persistence, sampling), composition with the MoE mixin."""

import json
import random
from collections import Counter
from types import SimpleNamespace

import pytest
import torch

from rewards.registry import register_reward
from selfdistill.config import (
    DifficultyFilterConfig,
    DynamicSamplingConfig,
    RewardConfig,
    RLConfig,
    load_config,
)
from selfdistill.rl_options.difficulty import (
    Observation,
    PassRates,
    merge_observations,
    observations,
    round_prompts,
    sampling_weight,
    weighted_sample,
    weights_for,
)
from selfdistill.rl_options.dynamic_sampling import (
    dead_groups,
    group_rows,
    merge_batches,
    refill_size,
    select_rows,
)

# ------------------------------------------------------------------ pure batch functions


def test_dead_groups_are_the_equal_reward_groups():
    nan = float("nan")
    rewards = torch.tensor(
        [0.2, 0.2, 1.2, 0.2, 0.0, 0.0, 0.3, 0.3001, nan, nan, nan, 1.0, 0.5, 0.5]
    )  # 7 groups of 2
    assert dead_groups(rewards, 2).tolist() == [True, False, True, False, True, True, True]
    with pytest.raises(ValueError, match="multiple of the group size 3"):
        dead_groups(rewards[:4], 3)


def test_dead_groups_see_through_float32_rounding_that_trl_misses():
    """0 * 1.0 + 1 * 0.2 summed in float32 (math wrong, format right) differs in the last bits: TRL gives such a
    group advantages of about -1.5e-4 and counts it as non-zero std; it is still a group of equal rewards."""
    per_func = torch.tensor([[0.0, float("nan"), 1.0]] * 8)  # math, code (n/a), format
    weights = torch.tensor([1.0, 1.0, 0.2])
    rewards = (per_func * weights).nansum(dim=1)  # (8,)
    mean = rewards.view(1, 8).mean(dim=1, keepdim=True)
    assert dead_groups(rewards, 8).tolist() == [True]
    assert float((rewards.view(1, 8) - mean).abs().max()) < 1e-6  # the spread is float noise


def test_group_rows_keeps_groups_whole():
    assert group_rows([2, 0], 3).tolist() == [6, 7, 8, 0, 1, 2]


def _batch(pid, p, c, b, layers=2, k=2, seed=0):
    """A TRL-like batch of ``b`` rows with prompt width ``p`` and completion width ``c`` (left/right padded)."""
    g = torch.Generator().manual_seed(seed)
    prompt_ids = torch.randint(1, 50, (b, p), generator=g)
    prompt_ids[0, 0] = pid  # the first row's prompt is one token shorter: a left pad
    prompt_mask = torch.ones(b, p, dtype=torch.long)
    prompt_mask[0, 0] = 0
    completion_ids = torch.randint(1, 50, (b, c), generator=g)
    completion_mask = torch.ones(b, c, dtype=torch.long)
    completion_mask[-1, -1] = 0
    completion_ids[-1, -1] = pid
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": torch.randn(b, generator=g),
        "old_per_token_logps": -torch.rand(b, c, generator=g),
        "importance_sampling_ratio": torch.rand(b, 1, generator=g),
        "moe_routing": torch.randint(0, 8, (b, layers, p + c, k), generator=g, dtype=torch.int16),
        "num_items_in_batch": torch.tensor(float(completion_mask.sum())),
    }


def test_merge_pads_prompts_left_completions_right_and_routing_on_both_sides():
    pad = 0
    a, b = _batch(pad, p=3, c=5, b=2, seed=1), _batch(pad, p=6, c=2, b=4, seed=2)
    out = merge_batches([a, b], pad_token_id=pad)
    assert "num_items_in_batch" not in out  # the caller recomputes it across processes
    assert out["prompt_ids"].shape == (6, 6) and out["completion_ids"].shape == (6, 5)
    # rows of `a`: prompt left-padded by 3, completion as is; rows of `b`: prompt as is, completion right-padded by 3
    assert (
        torch.equal(out["prompt_ids"][:2, 3:], a["prompt_ids"]) and (out["prompt_ids"][:2, :3] == pad).all()
    )
    assert (out["prompt_mask"][:2, :3] == 0).all() and torch.equal(out["prompt_mask"][2:], b["prompt_mask"])
    assert (
        torch.equal(out["completion_ids"][2:, :2], b["completion_ids"])
        and (out["completion_ids"][2:, 2:] == pad).all()
    )
    assert (out["completion_mask"][2:, 2:] == 0).all()
    assert torch.equal(out["old_per_token_logps"][:2], a["old_per_token_logps"])
    assert (out["old_per_token_logps"][2:, 2:] == 0).all()
    assert out["importance_sampling_ratio"].shape == (6, 1)  # per-sequence values stay one column
    assert torch.equal(out["advantages"], torch.cat([a["advantages"], b["advantages"]]))
    # the merged sequence = prompt block (6) + completion block (5); routing must follow each token
    r = out["moe_routing"]
    assert r.shape == (6, 2, 11, 2) and r.dtype == torch.int16
    assert torch.equal(r[:2, :, 3:6], a["moe_routing"][:, :, :3])  # a's prompt tokens, shifted right by 3
    assert torch.equal(r[:2, :, 6:], a["moe_routing"][:, :, 3:])  # a's completion tokens
    assert torch.equal(r[2:, :, :6], b["moe_routing"][:, :, :6])
    assert torch.equal(r[2:, :, 6:8], b["moe_routing"][:, :, 6:])
    assert r[:2, :, :3].tolist() == [[[[0, 1]] * 3] * 2] * 2  # padded tokens: distinct experts 0..k-1
    assert r[2:, :, 8:].tolist() == [[[[0, 1]] * 3] * 2] * 4


def test_merge_and_select_name_unknown_keys_and_mismatches():
    a = _batch(0, 3, 4, 2)
    with pytest.raises(ValueError, match=r"cannot merge batch key\(s\) \['pixel_values'\]"):
        merge_batches([a, {**a, "pixel_values": torch.zeros(2, 3)}], 0)
    with pytest.raises(ValueError, match="different keys"):
        merge_batches([a, {k: v for k, v in a.items() if k != "old_per_token_logps"}], 0)
    with pytest.raises(ValueError, match="moe_routing has 9 positions, expected prompt 3 \\+ completion 4"):
        merge_batches([{**a, "moe_routing": a["moe_routing"][:, :, :-1].repeat(1, 1, 9, 1)[:, :, :9]}], 0)
    sel = select_rows(a, torch.tensor([1]))
    assert sel["prompt_ids"].shape == (1, 3) and "num_items_in_batch" not in sel
    assert torch.equal(sel["moe_routing"], a["moe_routing"][1:])


def test_refill_size_scales_by_live_fraction_within_bounds():
    assert refill_size(0, 0.5, 8) == 0
    assert refill_size(2, 0.5, 8) == 4
    assert refill_size(3, 1.0, 8) == 3
    assert refill_size(2, 0.0, 8) == 8  # nothing alive seen yet: a whole batch
    assert refill_size(8, 0.1, 8) == 8


# ------------------------------------------------------------------ pass-rate store


def test_observations_and_merge_count_per_prompt():
    obs = observations(["a", "a", "b", "a", "b"], [1.0, 0.0, 0.5, None, 1.0])
    assert {o.task_id: (o.n, o.s) for o in obs} == {"a": (2, 1.0), "b": (2, 1.5)}
    merged = merge_observations([obs, [Observation("a", 2, 2.0)]])
    assert {o.task_id: (o.n, o.s) for o in merged} == {"a": (4, 3.0), "b": (2, 1.5)}
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        observations(["a"], [2.0])


def test_weights_floor_always_and_never_solved_unknown_full():
    kw = dict(floor=0.1, low=0.0, high=1.0, min_samples=4)
    assert sampling_weight(8, 8, **kw) == 0.1  # always solved
    assert sampling_weight(8, 0, **kw) == 0.1  # never solved
    assert sampling_weight(8, 3, **kw) == 1.0  # in between
    assert sampling_weight(2, 0, **kw) == 1.0  # too few samples to judge
    assert sampling_weight(0, 0, **kw) == 1.0  # unknown
    store = PassRates(decay=0.5)
    store.update("r1.rl", [Observation("solved", 8, 8), Observation("hard", 8, 0), Observation("mid", 8, 4)])
    dcfg = DifficultyFilterConfig(enabled=True)
    assert weights_for(store, ["solved", "hard", "mid", "new"], dcfg) == [0.1, 0.1, 1.0, 1.0]


def test_decay_and_sources_applied_once():
    store = PassRates(decay=0.5)
    assert store.update("r1.rl", [Observation("a", 8, 8)])
    assert not store.update("r1.rl", [Observation("a", 8, 0)])  # a rerun of the same source changes nothing
    store.update("r1-collect-00000", [Observation("a", 4, 0)])
    assert store.rates["a"] == (8.0, 4.0)  # 0.5 * (8, 8) + (4, 0)
    assert store.rate("a") == 0.5 and store.rate("unseen") is None


def test_store_persists_atomically_and_resumes(tmp_path):
    path = tmp_path / "run" / "pass_rates.json"
    store = PassRates(decay=0.25)
    store.update("r1.rl", [Observation("a", 8, 2), Observation("b", 8, 8)])
    store.save(path)
    assert not list(path.parent.glob("*.tmp")) and json.loads(path.read_text())["sources"] == ["r1.rl"]
    again = PassRates.load(path, decay=0.25)
    assert again.rates == store.rates and again.sources == ["r1.rl"]
    again.update("r1-collect-00000", [Observation("a", 4, 4)])  # continues from the stored counts
    assert again.rates["a"] == (0.25 * 8 + 4, 0.25 * 2 + 4)
    with pytest.raises(ValueError, match="decay 0.25, the config says 0.5"):
        PassRates.load(path, decay=0.5)
    assert PassRates.load(tmp_path / "none.json", decay=0.5).rates == {}


def test_weighted_sampling_follows_the_weights():
    weights = [0.1, 1.0, 1.0, 0.1]
    counts = Counter(weighted_sample(4, weights, 1, random.Random(i))[0] for i in range(4000))
    share_low = (counts[0] + counts[3]) / 4000
    assert abs(share_low - 0.2 / 2.2) < 0.02, counts  # odds proportional to the weights
    picks = weighted_sample(4, weights, 4, random.Random(0))
    assert sorted(picks) == [0, 1, 2, 3]  # without replacement
    rows = [{"task_id": str(i)} for i in range(100)]
    chosen = round_prompts(rows, [1.0 if i < 50 else 0.01 for i in range(100)], 20, "seed")
    assert len(chosen) == 20 and sum(int(r["task_id"]) < 50 for r in chosen) >= 18
    assert chosen == round_prompts(rows, [1.0 if i < 50 else 0.01 for i in range(100)], 20, "seed")  # seeded
    with pytest.raises(ValueError, match="must be > 0"):
        weighted_sample(2, [1.0, 0.0], 1, random.Random(0))


def test_config_rejects_bad_settings():
    from selfdistill.configio import ConfigError

    with pytest.raises(ConfigError, match="rl.difficulty_filter.floor"):
        DifficultyFilterConfig(floor=0.0)
    with pytest.raises(ConfigError, match="rl.dynamic_sampling.max_refills"):
        DynamicSamplingConfig(max_refills=-1)
    with pytest.raises(ConfigError, match="rewards.overlong_cache_tokens"):
        RewardConfig(overlong_max_tokens=8, overlong_cache_tokens=9)
    cfg = load_config(None, ["rl.dynamic_sampling.enabled=true", "rl.difficulty_filter.floor=0.2"])
    assert cfg.rl.dynamic_sampling.enabled and cfg.rl.difficulty_filter.floor == 0.2


# ------------------------------------------------------------------ real GRPOTrainer steps


def lively(prompts, completions, **kwargs):
    """Prompts starting with 'dead' get a constant reward (a dead group); others a reward that differs
    between distinct completions, so their groups carry gradient."""
    return [
        0.5 if p.startswith("dead") else len(c) + 1e-3 * sum(map(ord, c))
        for p, c in zip(prompts, completions)
    ]


register_reward("lively", f"{__name__}:lively")

LIVE = ["1+1=", "2+3=", "4+4=", "5+2=", "7+1=", "9+9="]
DEAD = ["dead 1", "dead 2", "dead 3"]


def _trainer(tokenizer, model, tmp_path, rows, pool, *, routing="off", max_refills=2, **args):
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from selfdistill.models.moe import moe_trainer_class
    from selfdistill.rl_options.trainer import RLOptionsMixin, rl_options_class

    base = moe_trainer_class(GRPOTrainer, routing=routing)
    cls = rl_options_class(base, dynamic_sampling=True, max_refills=max_refills)
    assert issubclass(cls, RLOptionsMixin) and issubclass(cls, base)

    class Probe(cls):  # records what the loss sees: the merged batch
        seen: list = []

        def compute_loss(self, model, inputs, *a, **kw):
            self.seen.append({k: v.clone() for k, v in inputs.items() if isinstance(v, torch.Tensor)})
            return super().compute_loss(model, inputs, *a, **kw)

    kwargs = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=2,
        max_completion_length=6,
        max_steps=1,
        learning_rate=1e-2,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
        loss_type="grpo",
        router_aux_loss_coef=0.0,
    )
    kwargs.update(args)
    trainer = Probe(
        model=model,
        reward_funcs=[lively],
        args=GRPOConfig(**kwargs),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.seen = []
    trainer.set_refill_pool(pool)
    return trainer


def _logged(trainer):
    return next(h for h in trainer.state.log_history if "dynamic_sampling/dead_frac" in h)


def test_dead_groups_are_dropped_and_refilled_in_a_real_step(tokenizer, tiny_moe, tmp_path):
    # one generation batch = 4 prompts x 2 = the whole dataset: exactly 2 dead groups of 4
    rows = [{"prompt": p} for p in ["dead 1", "dead 2", "1+1=", "2+3="]]
    trainer = _trainer(tokenizer, tiny_moe, tmp_path, rows, [{"prompt": p} for p in LIVE])
    trainer.train()
    logged = _logged(trainer)
    assert logged["dynamic_sampling/dead_frac"] == 0.5
    assert logged["dynamic_sampling/refilled_frac"] == 0.5
    assert logged["dynamic_sampling/dead_kept_frac"] == 0.0
    assert logged["dynamic_sampling/refill_rounds"] == 1.0
    # 4 groups first, then refill_size(2 needed, 0.5 alive, 4) = 4 more prompts drawn: 8 groups for 4 trained on
    assert logged["dynamic_sampling/sampled_groups_ratio"] == 2.0
    (batch,) = trainer.seen
    assert batch["advantages"].shape == (8,)
    # TRL shuffles the rows before the loss, so count rows: a live group of 2 has advantages +-0.707, never 0
    assert (batch["advantages"].abs() > 1e-6).all(), "a dead group reached the loss"


def test_short_batch_is_topped_up_with_dead_groups(tokenizer, tiny_moe, tmp_path):
    rows = [{"prompt": p} for p in ["dead 1", "dead 2", "1+1=", "2+3="]]
    trainer = _trainer(tokenizer, tiny_moe, tmp_path, rows, [{"prompt": p} for p in DEAD], max_refills=1)
    trainer.train()
    logged = _logged(trainer)
    assert logged["dynamic_sampling/dead_frac"] == 0.5 and logged["dynamic_sampling/refilled_frac"] == 0.0
    assert (
        logged["dynamic_sampling/dead_kept_frac"] == 0.5 and logged["dynamic_sampling/refill_rounds"] == 1.0
    )
    (batch,) = trainer.seen
    assert batch["advantages"].shape == (8,) and int((batch["advantages"].abs() <= 1e-6).sum()) == 4


def test_refills_compose_with_moe_routing_replay(tokenizer, tiny_moe, tmp_path):
    """Refill prompts are longer than the first batch's: the merged routing must line up with the merged tokens
    (replay raises on any mismatch) and be forced in the loss; steps_per_generation=2 splits the merged batch."""
    rows = [{"prompt": p} for p in ["dead 1", "dead 2", "1+1=", "2+3="]]
    pool = [{"prompt": "a much longer prompt " + p} for p in LIVE]
    trainer = _trainer(
        tokenizer,
        tiny_moe,
        tmp_path,
        rows,
        pool,
        routing="replay",
        per_device_train_batch_size=4,
        steps_per_generation=2,
        max_steps=2,
    )
    trainer.train()
    assert _logged(trainer)["dynamic_sampling/refilled_frac"] == 0.5
    assert len(trainer.seen) == 2
    for batch in trainer.seen:
        width = batch["prompt_ids"].shape[1] + batch["completion_ids"].shape[1]
        assert batch["moe_routing"].shape[:3] == (4, 1, width)
    rates = [
        h["moe/routing_change_rate"] for h in trainer.state.log_history if "moe/routing_change_rate" in h
    ]
    assert rates and rates[0] == 0.0  # first step replays its own sampling routing: nothing changed


def test_train_rl_records_pass_rates_per_task(tokenizer, tiny_moe, tmp_path):
    from selfdistill.stages.rl import train_rl
    from selfdistill.tracking import NullStage

    rows = [
        {"prompt": p, "kind": "math", "answer": "2", "tests": "", "task_id": f"t{i}"}
        for i, p in enumerate(LIVE[:4])
    ]
    rl = RLConfig(
        max_steps=1,
        num_generations=2,
        prompts_per_step=4,
        max_completion_length=6,
        learning_rate=1e-2,
        algorithm="grpo",
        logging_steps=1,
        difficulty_filter=DifficultyFilterConfig(enabled=True),
        dynamic_sampling=DynamicSamplingConfig(enabled=True),
    )
    out = train_rl(
        tiny_moe,
        tokenizer,
        rows,
        rl,
        RewardConfig(weights={"math": 1.0, "lively": 1.0}),
        tmp_path,
        seed=0,
        stage=NullStage(),
        device="cpu",
        run_name="t",
        refill_pool=([{**r, "task_id": "pool-" + r["task_id"]} for r in rows], [1.0] * 4),
    )
    obs = {o.task_id: o for o in out["observations"]}
    logged = next(h for h in out["history"] if "dynamic_sampling/dead_frac" in h)
    assert (
        logged["dynamic_sampling/dead_frac/math"] == logged["dynamic_sampling/dead_frac"]
    )  # every row is math
    assert {k for k in obs if not k.startswith("pool-")} == {"t0", "t1", "t2", "t3"}
    assert all(o.n == 2 and 0 <= o.s <= o.n for o in obs.values())  # one group of 2 per prompt drawn


def test_overlong_reward_reaches_trl_with_token_lengths(tokenizer, tiny_moe, tmp_path):
    from selfdistill.stages.rl import train_rl, with_overlong_limit
    from selfdistill.tracking import NullStage

    rcfg = RewardConfig(weights={"lively": 1.0, "overlong": 1.0})
    assert with_overlong_limit(rcfg, 6).overlong_max_tokens == 6
    assert (
        with_overlong_limit(
            RewardConfig(weights={"overlong": 1.0}, overlong_max_tokens=9), 6
        ).overlong_max_tokens
        == 9
    )
    rows = [{"prompt": p} for p in LIVE[:4]]
    rl = RLConfig(
        max_steps=1,
        num_generations=2,
        prompts_per_step=4,
        max_completion_length=6,
        learning_rate=1e-2,
        algorithm="grpo",
        logging_steps=1,
    )
    out = train_rl(
        tiny_moe, tokenizer, rows, rl, rcfg, tmp_path, seed=0, stage=NullStage(), device="cpu", run_name="t"
    )
    logged = next(h for h in out["history"] if "rewards/overlong_reward/mean" in h)
    # an untrained tiny model rarely stops early: most completions hit the 6-token limit (penalty -1)
    assert -1.0 <= logged["rewards/overlong_reward/mean"] < 0.0


def test_collect_reports_per_prompt_observations_once_per_chunk(tiny_moe, tokenizer, tmp_path):
    from selfdistill.config import CollectConfig
    from selfdistill.stages.collect import collect_round
    from selfdistill.tasks import math_gen
    from selfdistill.traces import TraceStore
    from selfdistill.tracking import NullStage

    tasks = math_gen.generate_math_tasks(SimpleNamespace(n=6, difficulty=1), 0)
    ccfg = CollectConfig(
        num_prompts=6,
        k=2,
        max_new_tokens=8,
        chunk_size=3,
        batch_size=16,
        min_reward=0.0,
        require_format=False,
    )
    seen: dict = {}
    store = PassRates()

    def observe(shard, obs):
        seen[shard] = obs
        store.update(shard, obs)

    kw = dict(
        ccfg=ccfg,
        rcfg=RewardConfig(weights={"math": 1.0}),
        round_=1,
        seed=0,
        model_name="m",
        prompt_format="plain",
        stage=NullStage(),
        observe=observe,
    )
    collect_round(tiny_moe, tokenizer, tasks, TraceStore(tmp_path), **kw)
    assert sorted(seen) == ["r1-collect-00000", "r1-collect-00001"]
    assert sorted(o.task_id for obs in seen.values() for o in obs) == sorted(t.task_id for t in tasks)
    assert all(o.n == 2 for obs in seen.values() for o in obs)
    seen.clear()
    collect_round(tiny_moe, tokenizer, tasks, TraceStore(tmp_path), **kw)  # resumed: every chunk is on disk
    assert seen == {} and len(store.sources) == 2


def test_a_stage_override_turns_difficulty_filtering_on_for_that_rl_stage(tmp_path):
    """`pipeline.stages[i].overrides.rl.difficulty_filter` decides for that stage; the run-wide value is the
    default. (The filter used to read the run-wide config only, so a per-stage override was silently ignored.)"""
    from selfdistill.stages.steps import _difficulty_rows, config_of

    cfg = load_config(
        None, ["rl.max_steps=2", "rl.prompts_per_step=2", "rl.difficulty_filter.enabled=false"]
    )  # run-wide off (the demo turns it on)
    assert not cfg.rl.difficulty_filter.enabled
    run = SimpleNamespace(cfg=cfg, dir=tmp_path)
    step = SimpleNamespace(
        key="r1.rl", params={"overrides": {"rl": {"difficulty_filter": {"enabled": True}}}}
    )
    rows = [{"task_id": f"t{i}", "prompt": f"p{i}"} for i in range(10)]

    chosen, pool, store, info = _difficulty_rows(run, config_of(run, step), rows, 1)
    assert store is not None and pool is not None and info["round_prompts"] == len(chosen) == 4

    off = SimpleNamespace(key="r2.rl", params={})  # no override: the run-wide setting (off) holds
    assert _difficulty_rows(run, config_of(run, off), rows, 1) == (rows, None, None, {})


# ------------------------------------------------------------------ the pipeline: persisted, killed, resumed


@pytest.mark.slow
def test_pass_rates_persist_and_a_killed_run_resumes_with_them(tmp_path):
    """Two rounds with difficulty filtering and dynamic sampling; one run is SIGKILLed during round 2's RL and
    resumed. Round 2 must draw its prompts from the rates stored by round 1 (its RL and collect), so the resumed
    run ends with the same store, the same round-2 prompt weights and the same weights as the uninterrupted run."""
    import shutil
    import subprocess
    import sys

    from test_resume import TINY_RUN, _env, _kill_when

    from selfdistill.distributed import param_digest
    from selfdistill.models.loading import load_model

    opts = [
        "run.rounds=2",
        "rl.difficulty_filter.enabled=true",
        "rl.difficulty_filter.min_samples=2",
        "rl.dynamic_sampling.enabled=true",
        "rl.dynamic_sampling.max_refills=1",
        "rl.save_steps=0",
    ]

    def start(out, log):
        cmd = [sys.executable, "-m", "selfdistill.cli", "run", *TINY_RUN, *opts, f"run.output_dir={out}"]
        return subprocess.Popen(cmd, stdout=log.open("a"), stderr=subprocess.STDOUT, env=_env())

    ref, broken = tmp_path / "ref", tmp_path / "broken"
    assert start(ref, tmp_path / "ref.log").wait(timeout=900) == 0, (tmp_path / "ref.log").read_text()[-3000:]
    store = json.loads((ref / "r" / "pass_rates.json").read_text())
    assert store["sources"][0] == "r1.rl" and "r2.rl" in store["sources"]
    assert any(s.startswith("r1-collect-") for s in store["sources"]) and store["rates"]
    r2 = json.loads((ref / "r" / "state" / "r2.rl.json").read_text())
    assert r2["difficulty"]["down_weighted"] > 0, (
        "round 1 found no always/never solved prompt: nothing was tested"
    )
    assert any("dynamic_sampling/dead_frac" in h for h in r2["history"])

    run = broken / "r"
    (run / "state").mkdir(parents=True)
    shutil.copy(ref / "r" / "state" / "base.json", run / "state" / "base.json")  # skip the slow pre-training
    log = tmp_path / "broken.log"
    proc = start(broken, log)
    _kill_when(
        proc, run / "state" / "r1.sft.json", log
    )  # round 2's RL has at most begun: the store holds round 1
    assert not (run / "state" / "r2.rl.json").exists()
    assert "r2.rl" not in json.loads((run / "pass_rates.json").read_text())["sources"]
    assert start(broken, log).wait(timeout=900) == 0, log.read_text()[-3000:]
    assert json.loads((run / "pass_rates.json").read_text()) == store
    assert json.loads((run / "state" / "r2.rl.json").read_text())["difficulty"] == r2["difficulty"]
    digests = [param_digest(load_model(d / "r" / "models" / "r2-rl")[0]) for d in (ref, broken)]
    assert digests[0] == digests[1]
