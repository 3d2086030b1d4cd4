"""The run's plan as data: stages from the config, the typed `Step` records they compile to, and the typed
`StepOutput` a step leaves.

A plan is a list of stages (`config.StageConfig`: kind, the model it starts from, the traces it trains on, its
output name, per-stage overrides), written in ``pipeline.stages`` or named by ``pipeline.preset`` (`PRESETS`:
rounds, r1_zero, r1). Each kind (`STAGE_KINDS`) compiles its stage into steps; a stage that reads what no
earlier stage makes is a `ConfigError` naming its index and what it may read (docs/pipelines.md).

`plan(cfg)` lists every step in execution order. A step names its own key (the state file
``<run_dir>/state/<key>.json``), the action that runs it (`selfdistill.stages.steps.ACTIONS`), the CLI
command it belongs to, and the keys of the steps whose outputs it reads (``inputs``, by role). Nothing
else spells a key: the actions read ``step.key`` and ``step.inputs``, the report gets its keys from its
step's inputs. `format_plan(steps)` prints the plan (``selfdistill config --plan``).

    steps = plan(load_config())
    print(format_plan(steps))

Importing this module imports nothing heavy (no torch, no TRL).
"""

# long module: stage kinds, presets, plan validation and step building of the one plan; presets to move out (debt noted 2026-11-30)

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from selfdistill.configio import ConfigError
from selfdistill.registries import Registry

COMMANDS = ("base", "rl", "collect", "sft", "distill", "eval", "report")
_TIMING = ("seconds", "cpu_seconds")


@dataclass(frozen=True)
class Step:
    """One step of the plan (a record: no behaviour; `stages.steps.ACTIONS[action]` runs it)."""

    key: str  # unique; the state file name
    action: str  # a `stages.steps.ACTIONS` name
    command: str  # the CLI command that runs it: one of COMMANDS
    inputs: dict[str, Any] = field(
        default_factory=dict
    )  # role -> key (or tuple of keys) of the steps it reads
    round: int | None = None  # the stage's ordinal among its kind (in the rounds preset, the round)
    name: str | None = None  # the model it produces or evaluates, as saved models, traces and reports name it
    params: dict[str, Any] = field(default_factory=dict)  # action settings (eval role, student config name)

    @property
    def needs(self) -> list[str]:
        """Keys that must be done before this step runs: every input key, in order, once."""
        keys: list[str] = []
        for value in self.inputs.values():
            keys.extend([value] if isinstance(value, str) else value)
        return list(dict.fromkeys(keys))

    def describe(self) -> str:
        """One line: key, command, round, inputs."""
        reads = ", ".join(
            f"{role}={v if isinstance(v, str) else '[' + ', '.join(v) + ']'}"
            for role, v in self.inputs.items()
        )
        where = f"round {self.round}" if self.round is not None else ""
        return f"{self.key:28s} {self.command:8s} {where:8s} {('<- ' + reads) if reads else ''}".rstrip()


@dataclass
class StepOutput:
    """What a finished step leaves in its state file: its model (if any), its timings, the stage's metrics.

    On disk the record is one flat JSON object (``model_path``, the metrics' keys, ``seconds``,
    ``cpu_seconds``): the layout state files have always had, so run directories made before this type
    existed resume unchanged.
    """

    model_path: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable numbers, lists, dicts
    seconds: float | None = None
    cpu_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        out = dict(self.metrics)
        if self.model_path is not None:
            out["model_path"] = self.model_path
        for key in _TIMING:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def __getitem__(self, key: str) -> Any:
        """A value of the state file's flat view (``out["model_path"]``, ``out["kept"]``), for code written
        against the dict layout; new code reads the fields."""
        return self.to_json()[key]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepOutput:
        data = dict(data)
        timing = {key: data.pop(key, None) for key in _TIMING}
        return cls(model_path=data.pop("model_path", None), metrics=data, **timing)


# --- stages: what a plan is written in ---------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RESERVED = ("base", "report")
_RESERVED_PREFIXES = ("eval.", "distill.", "student.", "collect.")  # step keys the plan makes itself


@dataclass(frozen=True)
class Made:
    """Something a stage made that later stages may read by name: a model, a trace set or a student."""

    what: str  # "model" (the policy or a model trained from it), "traces" (a collect stage's), "student"
    key: str  # the step that made it
    label: str  # its eval row's name unless the eval stage names it
    by: str  # who made it, for error messages: "the base model", "stage 2 (rl)"
    dir: str | None = None  # models: the saved model's directory name under <run_dir>/models
    round: int | None = None  # the making stage's ordinal among its kind (traces: their key in the store)


@dataclass(frozen=True)
class StageKind:
    """One kind of stage: how it becomes steps, and which config sections a stage of it may override."""

    compile: Callable[
        [_Plan, Any, int, int], list[Step]
    ]  # (plan so far, StageConfig, index, ordinal) -> steps
    overridable: tuple[str, ...]
    summary: str


def _dir(name: str) -> str:
    """A model's directory name: its stage name with dots as dashes (``r1.rl`` -> ``r1-rl``)."""
    return name.replace(".", "-")


def _one_or_many(keys: list[str]) -> str | tuple[str, ...]:
    return keys[0] if len(keys) == 1 else tuple(keys)


@dataclass
class _Plan:
    """A plan being compiled: the steps so far and what earlier stages made, by name."""

    cfg: Any
    steps: list[Step] = field(default_factory=list)
    made: dict[str, Made] = field(default_factory=dict)

    def where(self, i: int, st) -> str:
        return f"pipeline.stages[{i}] ({st.kind})"

    def model(self, st, i: int, students: bool = False) -> Made:
        """The model stage ``i`` starts from (``base`` when it names none)."""
        name = st.model or "base"
        wanted = ("model", "student") if students else ("model",)
        made = self.made.get(name)
        if made is None or made.what not in wanted:
            allowed = [n for n, m in self.made.items() if m.what in wanted]
            what = f"is {made.what} ({made.by}), not a model" if made else "is made by no earlier stage"
            if made is not None and made.what == "student" and not students:
                what = f"is a student ({made.by}); {st.kind} stages start from the policy's models"
            raise ConfigError(
                f"{self.where(i, st)}: model {name!r} {what}; choose one of: {', '.join(allowed)}"
            )
        return made

    def traces(self, st, i: int, needed: bool) -> list[Made]:
        """The trace sets stage ``i`` trains on (each an earlier collect stage's output)."""
        if st.kind not in ("sft", "distill") and (st.traces or st.external):
            raise ConfigError(
                f"{self.where(i, st)}: {st.kind} stages train on no traces; drop traces/external "
                "(only sft and distill stages take them)"
            )
        sets = []
        for name in st.traces:
            made = self.made.get(name)
            if made is None or made.what != "traces":
                allowed = [n for n, m in self.made.items() if m.what == "traces"]
                what = (
                    f"is a {made.what} ({made.by}), not traces"
                    if made
                    else "is collected by no earlier stage"
                )
                raise ConfigError(
                    f"{self.where(i, st)}: traces {name!r} {what}; choose from the earlier collect "
                    f"stages: {', '.join(allowed) or 'none'}"
                )
            sets.append(made)
        if needed and not sets and not st.external:
            raise ConfigError(
                f"{self.where(i, st)}: needs traces to train on: name earlier collect stages in traces "
                "or give external sets"
            )
        return sets

    def name(self, st, i: int, n: int) -> str:
        """The output name of stage ``i`` (``<kind><n>`` when it gives none), checked to be new and well formed."""
        name = st.name or f"{st.kind}{n}"
        if not _NAME.match(name) or name in _RESERVED or name.startswith(_RESERVED_PREFIXES):
            raise ConfigError(
                f"{self.where(i, st)}: name {name!r} is not allowed: use letters, digits, '_', '-', '.' "
                f"(not starting with one of those), not {', '.join(_RESERVED)} and not starting with "
                f"{', '.join(_RESERVED_PREFIXES)}"
            )
        return name

    def make(self, name: str, made: Made, i: int, st) -> None:
        if name in self.made:
            raise ConfigError(
                f"{self.where(i, st)}: output name {name!r} is already made by {self.made[name].by}; "
                "every output needs its own name"
            )
        self.made[name] = made


def _external(st) -> dict[str, Any]:
    from selfdistill.configio import to_dict

    return {"external": tuple(to_dict(e) for e in st.external)} if st.external else {}


def _overrides(st) -> dict[str, Any]:
    return {"overrides": st.overrides} if st.overrides else {}


def _trace_inputs(sets: list[Made]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, params) of a step that trains on ``sets``: the collect keys and their keys in the store."""
    if not sets:
        return {}, {}
    return {"traces": _one_or_many([m.key for m in sets])}, {"trace_rounds": tuple(m.round for m in sets)}


def _rl(p: _Plan, st, i: int, n: int) -> list[Step]:
    src, _ = p.model(st, i), p.traces(st, i, needed=False)
    name = p.name(st, i, n)
    p.make(name, Made("model", name, name, f"stage {i} (rl)", _dir(name), n), i, st)
    return [Step(name, "rl", "rl", {"policy": src.key}, n, name=_dir(name), params=_overrides(st))]


def _collect(p: _Plan, st, i: int, n: int) -> list[Step]:
    """Its traces go to the store as round ``n`` (shards ``r<n>-collect-*``): the n-th collect stage's key."""
    src, _ = p.model(st, i), p.traces(st, i, needed=False)
    name = p.name(st, i, n)
    p.make(name, Made("traces", name, name, f"stage {i} (collect)", round=n), i, st)
    return [
        Step(
            name,
            "collect",
            "collect",
            {"policy": src.key},
            n,
            name=f"policy-{src.dir}",
            params=_overrides(st),
        )
    ]


def _sft(p: _Plan, st, i: int, n: int) -> list[Step]:
    src, sets = p.model(st, i), p.traces(st, i, needed=True)
    name = p.name(st, i, n)
    inputs, params = _trace_inputs(sets)
    p.make(name, Made("model", name, name, f"stage {i} (sft)", _dir(name), n), i, st)
    return [
        Step(
            name,
            "sft",
            "sft",
            {"policy": src.key, **inputs},
            n,
            name=_dir(name),
            params={**params, **_external(st), **_overrides(st)},
        )
    ]


# long function: students, chain collects and their inputs in one pass; to split (debt noted 2026-11-30)
def _distill(p: _Plan, st, i: int, n: int) -> list[Step]:
    """Per student of ``distill.students``: its base, then distillation from its teacher (this stage's model, or
    an earlier student). In a chain whose method learns from sequences (`DistillMethod.learns_from_sequences`),
    a student learns from its teacher student's own sampled, reward-filtered traces: the teacher collects them
    first (``collect.<teacher>``, once per teacher; part of the distill command)."""
    from selfdistill.distill.methods import get_method

    if st.name is not None:
        raise ConfigError(
            f"{p.where(i, st)}: a distill stage makes the students of distill.students, named there; "
            f"drop name {st.name!r}"
        )
    teacher_model, sets = p.model(st, i), p.traces(st, i, needed=True)
    cfg = p.cfg
    sequences = get_method(cfg.distill.method).learns_from_sequences
    steps: list[Step] = []
    for s in cfg.distill.students:
        teacher = teacher_model.key if s.teacher == "policy" else f"distill.{s.teacher}"
        base = f"student.{s.name}.base"
        merges_policy = (
            s.source == "merge_experts" and s.path == "policy"
        )  # its base is built from the teacher
        steps.append(
            Step(
                base,
                "student_base",
                "distill",
                {"moe": teacher_model.key} if merges_policy else {},
                name=f"student-{s.name}-base",
                params={"student": s.name},
            )
        )
        inputs: dict[str, Any] = {"student": base, "teacher": teacher}
        params: dict[str, Any] = {"student": s.name, "traces_from": "policy"}
        if s.teacher != "policy" and sequences:
            collect = f"collect.{s.teacher}"
            if not any(step.key == collect for step in steps):
                steps.append(
                    Step(
                        collect,
                        "student_collect",
                        "distill",
                        {"model": teacher},
                        name=f"student-{s.teacher}",
                        params={"student": s.teacher},
                    )
                )
            inputs["traces"] = collect
            params["traces_from"] = s.teacher
        else:
            more_inputs, more_params = _trace_inputs(sets)
            inputs.update(more_inputs)
            params.update(more_params, **_external(st))
        steps.append(
            Step(
                f"distill.{s.name}",
                "distill",
                "distill",
                inputs,
                name=f"student-{s.name}",
                params={**params, **_overrides(st)},
            )
        )
        p.make(
            s.name,
            Made("student", f"distill.{s.name}", s.name, f"stage {i} (distill)", f"student-{s.name}"),
            i,
            st,
        )
    return steps


def _eval(p: _Plan, st, i: int, n: int) -> list[Step]:
    """One eval step per model: the one it names, or (no model) every model and student made before it."""
    p.traces(st, i, needed=False)
    if st.model is None:
        if st.name is not None:
            raise ConfigError(
                f"{p.where(i, st)}: an eval of every model names each row by its model; drop name "
                f"{st.name!r} or name a model"
            )
        targets = [(m.label, m) for m in p.made.values() if m.what in ("model", "student")]
    else:
        made = p.model(st, i, students=True)
        label = st.name or made.label
        if made.what == "student" and label != made.label:
            raise ConfigError(
                f"{p.where(i, st)}: a student's eval row is named by the student ({made.label!r}); "
                f"drop name {st.name!r}"
            )
        targets = [(label, made)]
    steps = []
    for label, made in targets:
        role = "base" if made.key == "base" else "student" if made.what == "student" else "policy"
        steps.append(
            Step(
                f"eval.{label}",
                "eval",
                "eval",
                {"model": made.key},
                made.round,
                name=label,
                params={"role": role, **_overrides(st)},
            )
        )
    return steps


STAGE_KINDS = Registry("stage kind")
STAGE_KINDS.register(
    "rl", StageKind(_rl, ("rl", "rewards"), "RL of its model (TRL GRPOTrainer, the rewards)")
)
STAGE_KINDS.register(
    "collect",
    StageKind(_collect, ("collect", "rewards"), "rejection-sample its model's traces into the store"),
)
STAGE_KINDS.register(
    "sft", StageKind(_sft, ("sft",), "SFT of its model on the named traces (and external sets)")
)
STAGE_KINDS.register(
    "distill",
    StageKind(_distill, ("distill",), "each student of distill.students: its base, then distillation"),
)
STAGE_KINDS.register(
    "eval", StageKind(_eval, ("eval",), "held-out evaluation of its model (or of every model)")
)


# --- presets: plans by name --------------------------------------------------------------------


def _stage(
    cfg, kind: str, name: str | None = None, model: str | None = None, traces: list[str] | None = None
):
    """A stage record of the config's schema (`config.StageConfig`, reached through the config so this module
    does not import `selfdistill.config`, which imports it to validate plans)."""
    return cfg.pipeline.stage_type(kind=kind, name=name, model=model, traces=list(traces or []))


def rounds_preset(cfg) -> list:
    """run.rounds of rl -> collect -> sft (each round's SFT of its RL'd policy on the traces of sft.traces: every
    round's so far, or the current one), then distillation from the last round's policy, then evaluation."""
    stages, prev = [], "base"
    for r in range(1, cfg.run.rounds + 1):
        stages += [
            _stage(cfg, "rl", f"r{r}.rl", prev),
            _stage(cfg, "collect", f"r{r}.collect", f"r{r}.rl"),
            _stage(cfg, "sft", f"r{r}.sft", f"r{r}.rl", _round_traces(cfg, r)),
        ]
        prev = f"r{r}.sft"
    return stages + _distill_and_evals(cfg, prev, rl_rounds=range(1, cfg.run.rounds + 1))


def _round_traces(cfg, r: int) -> list[str]:
    """The collect stages round ``r``'s SFT trains on: every round's so far (``sft.traces: all``) or its own."""
    return [f"r{q}.collect" for q in (range(1, r + 1) if cfg.sft.traces == "all" else [r])]


def _distill_and_evals(cfg, final: str, rl_rounds) -> list:
    """Distillation from ``final`` on every round's traces, then the evaluations: the base, each round's policy
    (``r<r>.sft``; its RL'd policy ``r<r>.rl`` first when ``eval.rl_checkpoints`` and ``r`` is in ``rl_rounds``),
    each student."""
    stages = [
        _stage(cfg, "distill", model=final, traces=[f"r{r}.collect" for r in range(1, cfg.run.rounds + 1)]),
        _stage(cfg, "eval", model="base"),
    ]
    for r in range(1, cfg.run.rounds + 1):
        if cfg.eval.rl_checkpoints and r in rl_rounds:
            stages.append(_stage(cfg, "eval", f"policy-r{r}-rl", f"r{r}.rl"))
        stages.append(_stage(cfg, "eval", f"policy-r{r}", f"r{r}.sft"))
    return stages + [_stage(cfg, "eval", model=s.name) for s in cfg.distill.students]


def rft_rounds_preset(cfg) -> list:
    """Round 1 is rejection-sampling fine-tuning (RFT) of the base: sample it, fine-tune it on its own correct
    traces. Each later round runs RL from the current policy, samples the RL'd policy, and fine-tunes the
    current policy (not the RL'd one) on the traces of ``sft.traces``: RL explores, fine-tuning keeps what it
    found. Then distillation from the last round's policy and evaluation, as in ``rounds``.

    Why (issue 17, docs/benchmarks.md): on the demo's tiny policy RL lowers held-out math at every setting
    tried while RFT raises it, and the RL'd policy's correct traces lift math beyond what RFT alone finds."""
    stages = [
        _stage(cfg, "collect", "r1.collect", "base"),
        _stage(cfg, "sft", "r1.sft", "base", _round_traces(cfg, 1)),
    ]
    prev = "r1.sft"
    for r in range(2, cfg.run.rounds + 1):
        stages += [
            _stage(cfg, "rl", f"r{r}.rl", prev),
            _stage(cfg, "collect", f"r{r}.collect", f"r{r}.rl"),
            _stage(cfg, "sft", f"r{r}.sft", prev, _round_traces(cfg, r)),
        ]
        prev = f"r{r}.sft"
    return stages + _distill_and_evals(cfg, prev, rl_rounds=range(2, cfg.run.rounds + 1))


def r1_zero_preset(cfg) -> list:
    """DeepSeek-R1-Zero: pure RL from the base, then its traces, distilled into the students."""
    return [
        _stage(cfg, "rl", "r1-zero", "base"),
        _stage(cfg, "collect", "zero-traces", "r1-zero"),
        _stage(cfg, "distill", model="r1-zero", traces=["zero-traces"]),
        _stage(cfg, "eval"),
    ]


def r1_preset(cfg) -> list:
    """DeepSeek-R1 (§2.3): R1-Zero -> cold-start traces -> SFT of the base -> reasoning RL -> rejection sampling ->
    SFT of the base on the new traces and the cold-start ones -> RL -> distillation of those traces."""
    return [
        _stage(cfg, "rl", "r1-zero", "base"),
        _stage(cfg, "collect", "cold-start", "r1-zero"),
        _stage(cfg, "sft", "cold-start-sft", "base", ["cold-start"]),
        _stage(cfg, "rl", "reasoning-rl", "cold-start-sft"),
        _stage(cfg, "collect", "rejection", "reasoning-rl"),
        _stage(cfg, "sft", "rejection-sft", "base", ["rejection", "cold-start"]),
        _stage(cfg, "rl", "final-rl", "rejection-sft"),
        _stage(cfg, "distill", model="final-rl", traces=["rejection", "cold-start"]),
        _stage(cfg, "eval"),
    ]


PRESETS = Registry("pipeline preset")
PRESETS.register("rounds", rounds_preset)
PRESETS.register("rft_rounds", rft_rounds_preset)
PRESETS.register("r1_zero", r1_zero_preset)
PRESETS.register("r1", r1_preset)


def stages_of(cfg) -> tuple[str, list]:
    """(the plan's name, its stages): ``pipeline.stages`` as written, or the preset's (``rounds`` by default)."""
    p = cfg.pipeline
    if p.stages:
        if p.preset is not None:
            raise ConfigError(
                f"pipeline: give a preset or stages, not both (preset={p.preset!r} and "
                f"{len(p.stages)} stages); leave preset null for a custom plan"
            )
        return "custom", list(p.stages)
    name = p.preset or "rounds"
    return name, PRESETS.get(name, "pipeline.preset")(cfg)


# --- per-stage overrides -----------------------------------------------------------------------


def _merged(section, values: dict[str, Any]) -> dict[str, Any]:
    """``section`` (a config dataclass) as plain data with ``values`` over it: nested sections merge key by key,
    any other value (a number, a list, a mapping such as ``rewards.weights``) is replaced whole."""
    import dataclasses

    from selfdistill.configio import to_dict

    out = to_dict(section)
    for k, v in values.items():
        inner = getattr(section, k, None)
        out[k] = _merged(inner, v) if dataclasses.is_dataclass(inner) and isinstance(v, dict) else v
    return out


def apply_overrides(cfg, overrides: dict[str, dict[str, Any]], where: str = "overrides"):
    """``cfg`` with the named sections replaced by their overridden values, validated as the config file is
    (types and ranges here; registry names by `config.load_config`); errors name ``where`` and the key."""
    import dataclasses

    from selfdistill.configio import from_dict

    if not overrides:
        return cfg
    changes = {}
    for section, values in overrides.items():
        if section == "distill" and "students" in values:
            raise ConfigError(
                f"{where}.distill.students: the students are the run's (distill.students); a stage "
                "cannot change them"
            )
        current = getattr(cfg, section, None)
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"{where}: {section!r} is not a config section")
        changes[section] = from_dict(type(current), _merged(current, values), f"{where}.{section}")
    return dataclasses.replace(cfg, **changes)  # registry names in it: `config.load_config` checks them


def _check_overrides(cfg, st, i: int, kind: StageKind) -> None:
    where = f"pipeline.stages[{i}].overrides"
    bad = [s for s in st.overrides if s not in kind.overridable]
    if bad:
        raise ConfigError(
            f"{where}: {st.kind} stages may override {', '.join(kind.overridable)}; got {bad[0]!r}"
        )
    apply_overrides(cfg, st.overrides, where)


# --- the plan ----------------------------------------------------------------------------------


def _check_unique(steps: list[Step]) -> None:
    """Step keys (state files) and saved model directories must not collide (stage names could make them)."""
    for what, values in (
        ("step key", [s.key for s in steps]),
        ("model directory", [s.name for s in steps if s.action in SAVES_MODEL]),
    ):
        seen: set[str] = set()
        for v in values:
            if v in seen:
                raise ConfigError(f"pipeline: two steps share the {what} {v!r}; rename one of the stages")
            seen.add(v)


SAVES_MODEL = (
    "base",
    "rl",
    "sft",
    "student_base",
    "distill",
)  # actions that save a model under its Step.name


def plan(cfg) -> list[Step]:
    """Every step of the run in execution order: the base model, each stage's steps, the report."""
    _, stages = stages_of(cfg)
    p = _Plan(cfg)
    p.steps.append(Step("base", "base", "base", name="base"))
    p.made["base"] = Made("model", "base", "base", "the base model", "base")
    counts: dict[str, int] = {}
    for i, st in enumerate(stages):
        kind = STAGE_KINDS.get(st.kind, f"pipeline.stages[{i}].kind")
        _check_overrides(cfg, st, i, kind)
        counts[st.kind] = counts.get(st.kind, 0) + 1
        p.steps += kind.compile(p, st, i, counts[st.kind])
    evals = [s for s in p.steps if s.action == "eval"]
    if not evals:
        raise ConfigError(
            "pipeline.stages: the plan evaluates no model (the report is made of eval rows); add "
            "{kind: eval} to evaluate every model"
        )
    trained = [s.key for s in p.steps if s.action in ("rl", "sft")]
    report_inputs = {
        "evals": tuple(e.key for e in evals),
        "final": trained[-1] if trained else "base",  # the last model trained from the policy
        "rl": tuple(s.key for s in p.steps if s.action == "rl"),
        "collect": tuple(s.key for s in p.steps if s.action == "collect"),
        "distill": tuple(s.key for s in p.steps if s.action == "distill"),  # in config order of the students
        "student_collect": tuple(s.key for s in p.steps if s.action == "student_collect"),
    }
    # `timed` is not an input: the report lists the seconds of those of these steps that are done;
    # `steps`: the plan itself, which the report lists with each step's inputs and outputs
    done = tuple(p.steps)
    p.steps.append(
        Step(
            "report",
            "report",
            "report",
            report_inputs,
            params={"timed": tuple(s.key for s in done), "steps": done},
        )
    )
    _check_unique(p.steps)
    return p.steps


def format_stages(cfg) -> str:
    """The resolved stages, one a line: index, kind, output name, model, traces, overrides."""
    name, stages = stages_of(cfg)
    lines = [f"plan: {name}"]
    for i, st in enumerate(stages):
        reads = ", ".join(
            [f"model={st.model or ('every model' if st.kind == 'eval' else 'base')}"]
            + ([f"traces=[{', '.join(st.traces)}]"] if st.traces else [])
            + ([f"external=[{', '.join(e.path for e in st.external)}]"] if st.external else [])
            + ([f"overrides={st.overrides}"] if st.overrides else [])
        )
        lines.append(f"{i:3d}  {st.kind:8s} {st.name or '':20s} {reads}")
    return "\n".join(lines)


def format_plan(steps: list[Step]) -> str:
    """The plan as a table, one step a line, in execution order."""
    return "\n".join(f"{i:3d}  {s.describe()}" for i, s in enumerate(steps, 1))
