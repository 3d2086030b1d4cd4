"""The run's plan as data: typed `Step` records built from the config, and the typed `StepOutput` they leave.

`plan(cfg)` lists every step in execution order. A step names its own key (the state file
``<run_dir>/state/<key>.json``), the action that runs it (`selfdistill.stages.steps.ACTIONS`), the CLI
command it belongs to, and the keys of the steps whose outputs it reads (``inputs``, by role). Nothing
else spells a key: the actions read ``step.key`` and ``step.inputs``, the report gets its keys from its
step's inputs. `format_plan(steps)` prints the plan (``selfdistill config --plan``).

    steps = plan(load_config())
    print(format_plan(steps))

Importing this module imports nothing heavy (no torch, no TRL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    round: int | None = None
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


def _rounds(cfg, prev: str) -> tuple[list[Step], str]:
    """rl -> collect -> sft per round, each round starting from the previous round's SFT output."""
    steps = []
    for r in range(1, cfg.run.rounds + 1):
        rl, collect, sft = f"r{r}.rl", f"r{r}.collect", f"r{r}.sft"
        steps += [
            Step(rl, "rl", "rl", {"policy": prev}, r, name=f"r{r}-rl"),
            Step(collect, "collect", "collect", {"policy": rl}, r, name=f"policy-r{r}-rl"),
            Step(sft, "sft", "sft", {"policy": rl, "traces": collect}, r, name=f"r{r}-sft"),
        ]
        prev = sft
    return steps, prev


def _students(cfg, final: str) -> list[Step]:
    """Per student: its base model, then distillation from its teacher (the final policy or a student).

    In a chain whose method learns from sequences (`DistillMethod.learns_from_sequences`), a student learns
    from its teacher student's own sampled, reward-filtered traces: the teacher collects them first
    (``collect.<teacher>``, once per teacher; part of the distill command).
    """
    from selfdistill.distill.methods import get_method

    sequences = get_method(cfg.distill.method).learns_from_sequences
    steps: list[Step] = []
    for s in cfg.distill.students:
        teacher = final if s.teacher == "policy" else f"distill.{s.teacher}"
        base = f"student.{s.name}.base"
        merges_policy = s.source == "merge_experts" and s.path == "policy"  # its base is built from the final policy
        steps.append(Step(base, "student_base", "distill", {"moe": final} if merges_policy else {},
                          name=f"student-{s.name}-base", params={"student": s.name}))
        inputs = {"student": base, "teacher": teacher}
        if s.teacher != "policy" and sequences:
            collect = f"collect.{s.teacher}"
            if not any(step.key == collect for step in steps):
                steps.append(Step(collect, "student_collect", "distill", {"model": teacher},
                                  name=f"student-{s.teacher}", params={"student": s.teacher}))
            inputs["traces"] = collect
        steps.append(Step(f"distill.{s.name}", "distill", "distill", inputs, name=f"student-{s.name}",
                          params={"student": s.name, "traces_from": "policy" if "traces" not in inputs else s.teacher}))
    return steps


def _evals(cfg) -> list[Step]:
    """One eval per model: the base, each round's policy (and RL checkpoint, if asked), each student."""
    evals = [Step("eval.base", "eval", "eval", {"model": "base"}, name="base", params={"role": "base"})]
    for r in range(1, cfg.run.rounds + 1):
        if cfg.eval.rl_checkpoints:
            evals.append(
                Step(
                    f"eval.policy-r{r}-rl",
                    "eval",
                    "eval",
                    {"model": f"r{r}.rl"},
                    r,
                    name=f"policy-r{r}-rl",
                    params={"role": "policy"},
                )
            )
        evals.append(
            Step(
                f"eval.policy-r{r}",
                "eval",
                "eval",
                {"model": f"r{r}.sft"},
                r,
                name=f"policy-r{r}",
                params={"role": "policy"},
            )
        )
    for s in cfg.distill.students:
        evals.append(
            Step(
                f"eval.{s.name}",
                "eval",
                "eval",
                {"model": f"distill.{s.name}"},
                name=s.name,
                params={"role": "student"},
            )
        )
    return evals


def plan(cfg) -> list[Step]:
    """Every step of the run in execution order (see module docstring)."""
    steps = [Step("base", "base", "base", name="base")]
    rounds, final = _rounds(cfg, "base")
    steps += rounds + _students(cfg, final)
    evals = _evals(cfg)
    steps += evals
    report_inputs = {
        "evals": tuple(e.key for e in evals),
        "final": final,
        "rl": tuple(s.key for s in steps if s.action == "rl"),
        "collect": tuple(s.key for s in steps if s.action == "collect"),
        "distill": tuple(s.key for s in steps if s.action == "distill"),  # in config order of the students
        "student_collect": tuple(s.key for s in steps if s.action == "student_collect"),
    }
    # `timed` is not an input: the report lists the seconds of those of these steps that are done
    steps.append(
        Step("report", "report", "report", report_inputs, params={"timed": tuple(s.key for s in steps)})
    )
    return steps


def format_plan(steps: list[Step]) -> str:
    """The plan as a table, one step a line, in execution order."""
    return "\n".join(f"{i:3d}  {s.describe()}" for i, s in enumerate(steps, 1))
