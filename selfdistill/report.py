"""The run report: ``report.json`` (machine-readable), ``report.md`` (for people) and PNG plots.

``report.json["eval"]`` has one row per evaluated model with: model, role (base, policy,
student), round, params, accuracy (held-out pass@1 from ``k`` samples per problem),
accuracy_<kind> for every registered task kind (accuracy_math, accuracy_code by default),
accuracy_by_kind (the same per kind present), maj_at_k, plus tokens_per_s, memory_mb and format_rate, and
infra_failures: samples the sandbox or math verifier could not judge (infrastructure, not the
model), which are left out of pass@1 and maj@k rather than counted wrong.
``sandbox`` lists the code sandbox's active isolation layers as each stage that ran code saw them
(``layers``: those every such stage had). ``chain[].traces_from`` says whose traces a student learned
from (the policy's, or in a progressive chain its teacher student's own, ``student_collect``).
``summary`` compares the final policy with the base and the best student with the policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfdistill.tasks.kinds import kinds


def eval_keys() -> tuple[str, ...]:
    """The columns of a report row (one accuracy column per registered task kind)."""
    return (
        "model",
        "role",
        "round",
        "params",
        "accuracy",
        *kind_keys(),
        "accuracy_by_kind",
        "maj_at_k",
        "k",
        "infra_failures",
        "format_rate",
        "tokens_per_s",
        "memory_mb",
        "n_problems",
        "temperature",
    )


def kind_keys() -> list[str]:
    """``accuracy_<kind>`` per registered kind, in registration order."""
    return [f"accuracy_{k.name}" for k in kinds()]


def summarize(rows: list[dict[str, Any]], final_name: str) -> dict[str, Any]:
    """Headline comparisons: policy gain over base; best student's retention and size ratio."""
    by_name = {r["model"]: r for r in rows}
    base, final = by_name.get("base"), by_name.get(final_name)
    out: dict[str, Any] = {"final_policy": final_name}
    if base and final and base["accuracy"] is not None and final["accuracy"] is not None:
        out["base_accuracy"] = base["accuracy"]
        out["final_policy_accuracy"] = final["accuracy"]
        out["policy_gain_points"] = 100 * (final["accuracy"] - base["accuracy"])
    students = [r for r in rows if r["role"] == "student" and r["accuracy"] is not None]
    if students and final and final["accuracy"] is not None:
        best = max(students, key=lambda r: r["accuracy"])
        out["best_student"] = best["model"]
        out["best_student_accuracy"] = best["accuracy"]
        out["student_retention"] = best["accuracy"] / final["accuracy"] if final["accuracy"] else None
        out["student_param_ratio"] = best["params"] / final["params"]
        out["student_speedup"] = (
            best["tokens_per_s"] / final["tokens_per_s"] if final["tokens_per_s"] else None
        )
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is unknown (every sample an infrastructure failure) or b is 0."""
    return a / b if a is not None and b else None


def distillation_chain(
    rows: list[dict[str, Any]], students, final_name: str, method: str
) -> list[dict[str, Any]]:
    """One entry per student (config order): what it keeps of its teacher and of the policy, and what it saves."""
    by_name = {r["model"]: r for r in rows}
    policy = by_name.get(final_name)
    chain = []
    for s in students:
        row, teacher = by_name.get(s.name), by_name.get(final_name if s.teacher == "policy" else s.teacher)
        if not (row and teacher and policy):
            continue
        chain.append(
            {
                "student": s.name,
                "method": method,
                "teacher": teacher["model"],
                "params": row["params"],
                "accuracy": row["accuracy"],
                "maj_at_k": row["maj_at_k"],
                "retention_vs_teacher": _ratio(row["accuracy"], teacher["accuracy"]),
                "retention_vs_policy": _ratio(row["accuracy"], policy["accuracy"]),
                "param_ratio": row["params"] / policy["params"],
                "speedup": row["tokens_per_s"] / policy["tokens_per_s"] if policy["tokens_per_s"] else None,
                "memory_ratio": row["memory_mb"] / policy["memory_mb"] if policy["memory_mb"] else None,
            }
        )
    return chain


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{100 * v:.1f}%" if v <= 1.0 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# long function: one Markdown document written section by section, top to bottom
def markdown(report: dict[str, Any]) -> str:
    lines = [f"# selfdistill report: {report['run']}", ""]
    s = report["summary"]
    if "policy_gain_points" in s:
        lines.append(
            f"- Final policy **{s['final_policy']}**: held-out pass@1 {_fmt(s['final_policy_accuracy'])} "
            f"vs base {_fmt(s['base_accuracy'])} ({s['policy_gain_points']:+.1f} points)."
        )
    if "best_student" in s:
        lines.append(
            f"- Best student **{s['best_student']}**: {_fmt(s['best_student_accuracy'])} "
            f"({100 * (s['student_retention'] or 0):.0f}% of the policy) with "
            f"{100 * s['student_param_ratio']:.0f}% of its parameters."
        )
    lines += [
        f"- Wall time of all stages: {report['wall_time_s']:.0f} s.",
        "",
        "## Held-out evaluation",
        "",
        f"pass@1 estimated from {report['eval'][0]['k']} samples per problem at temperature "
        f"{report['eval'][0]['temperature']}; maj@k votes over the same samples.",
        "",
        "| model | role | round | params | pass@1 | "
        + " | ".join(k.name for k in kinds())
        + " | maj@k | format | infra failures | tokens/s | memory MB |",
        "|---|---|---|---|---|" + "---|" * len(kinds()) + "---|---|---|---|---|",
    ]
    for r in report["eval"]:
        lines.append(
            "| "
            + " | ".join(
                _fmt(r.get(k))
                for k in (
                    "model",
                    "role",
                    "round",
                    "params",
                    "accuracy",
                    *kind_keys(),
                    "maj_at_k",
                    "format_rate",
                    "infra_failures",
                )
            )
            + f" | {r['tokens_per_s']:,.0f} | {r['memory_mb']:.1f} |"
        )
    if report.get("chain"):
        lines += [
            "",
            "## Distillation",
            "",
            "| student | method | teacher | params | pass@1 | maj@k | kept of teacher | kept of policy | "
            "params vs policy | speed-up | memory vs policy |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in report["chain"]:
            lines.append(
                f"| {c['student']} | {c['method']} | {c['teacher']} | {c['params']:,} | {_fmt(c['accuracy'])} | "
                f"{_fmt(c['maj_at_k'])} | {_fmt(c['retention_vs_teacher'])} | {_fmt(c['retention_vs_policy'])} | "
                f"{_fmt(c['param_ratio'])} | {c['speedup'] or 0:.2f}x | {_fmt(c['memory_ratio'])} |"
            )
    sp = report["split"]
    lines += [
        "",
        "## Data",
        "",
        f"- Tasks: {sp['n_train']} train, {sp['n_eval']} held out ({sp['method']}); prompts shared: "
        f"**{sp['overlap']}** (train digest `{sp['train_digest']}`, eval digest `{sp['eval_digest']}`).",
        f"- Traces stored: {report['traces']['total']} ({report['traces']['by_round']} by round, "
        f"{report['traces']['by_kind']} by kind).",
    ]
    sb = report["sandbox"]
    if sb["active"]:
        lines.append(
            f"- Code sandbox layers: {', '.join(sb['layers'])} (required: {', '.join(sb['required']) or 'none, auto'})."
        )
    for c in report["collect"]:
        lines.append(
            f"- Collect {c.get('stage', c['round'])} (store round {c['round']}): sampled {c.get('sampled', 0)}, "
            f"kept {c.get('kept', 0)}, sample accuracy {_fmt(c.get('sample_accuracy'))}."
        )
    for c in report.get("student_collect", []):
        lines.append(
            f"- Student {c['student']}'s own traces (to teach the next student): sampled "
            f"{c.get('sampled', 0)}, kept {c.get('kept', 0)}, sample accuracy {_fmt(c.get('sample_accuracy'))}."
        )
    lines += [
        "",
        "## Stages",
        "",
        "In the plan's order: what each step read (role = step) and what it left.",
        "",
        "| # | step | action | reads | output | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for i, p in enumerate(report.get("plan", []), 1):
        reads = "; ".join(
            f"{role} = {v if isinstance(v, str) else ', '.join(v)}" for role, v in p["inputs"].items()
        )
        reads += "".join(f"; external = {e}" for e in p["external"])
        reads += f"; overrides {p['overrides']}" if p["overrides"] else ""
        seconds = "–" if p["seconds"] is None else f"{p['seconds']:.1f}"
        lines.append(
            f"| {i} | {p['step']} | {p['action']} | {reads or '–'} | {p['output'] or '–'} | {seconds} |"
        )
    from selfdistill.provenance import markdown as provenance_markdown

    lines += provenance_markdown(report.get("provenance", {}))
    lines += ["", "![RL reward](rl_reward.png)", "", "![Accuracy](accuracy.png)", ""]
    return "\n".join(lines)


def plot_rl(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    offset = 0
    for rl in report["rl"]:
        logged = [h for h in rl["history"] if "step" in h and "reward" in h]
        steps = [offset + h["step"] for h in logged]
        rewards = [h["reward"] for h in logged]
        ax.plot(steps, rewards, marker=".", label=rl.get("stage", f"round {rl['round']}"))
        offset = steps[-1] if steps else offset
    ax.set_xlabel("RL step (cumulative)")
    ax.set_ylabel("mean reward")
    ax.set_title("Reward per RL step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["eval"]
    names = [r["model"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 3.8))
    bars = [("accuracy", "pass@1"), *((f"accuracy_{k.name}", k.name) for k in kinds())]
    width = 0.81 / len(bars)  # 0.27 with the default two kinds
    for i, (key, label) in enumerate(bars):
        offset = (i - (len(bars) - 1) / 2) * width
        ax.bar(
            [x + offset for x in range(len(rows))],
            [100 * (r.get(key) or 0) for r in rows],
            width,
            label=label,
        )
    ax.set_xticks(range(len(rows)), names, rotation=20, ha="right")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("Accuracy per model")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass(frozen=True)
class ReportKeys:
    """The state keys the report reads, handed over by the plan (the report never builds the plan)."""

    evals: tuple[str, ...]  # eval steps, one report row each
    final: str  # the step that produced the final policy
    rl: tuple[str, ...]  # RL steps (reward curves), round 1 first
    collect: tuple[str, ...]  # collect steps (sampling counts), round 1 first
    distill: tuple[str, ...]  # distill steps, in the config's order of the students
    student_collect: tuple[str, ...]  # students sampling their own traces to teach the next one (chains)
    timed: tuple[str, ...]  # steps whose seconds the report lists (those that are done)
    steps: tuple = ()  # the plan's steps before the report (`planning.Step`), listed with inputs and outputs


def _chain_keys(rows, run, keys: ReportKeys, final_name: str):
    """(chain entry, its student's distill key) for the students that have an entry."""
    students = run.cfg.distill.students
    key_of = dict(zip((s.name for s in students), keys.distill))
    chain = distillation_chain(rows, students, final_name, run.cfg.distill.method)
    return [(c, key_of[c["student"]]) for c in chain]


def sandbox_section(run, timed: tuple[str, ...]) -> dict[str, Any]:
    """The code sandbox's isolation: the layers the config requires and those each code-scoring step had."""
    outs = {k: run.done(k) for k in timed}
    active = {
        k: out.metrics["sandbox_layers"]
        for k, out in outs.items()
        if out is not None and "sandbox_layers" in out.metrics
    }
    return {
        "required": list(run.cfg.rewards.sandbox_layers),
        "active": active,
        "layers": sorted(set.intersection(*(set(v) for v in active.values()))) if active else [],
    }


def eval_rows(run, keys: ReportKeys) -> list[dict[str, Any]]:
    """The eval steps' rows, each with the evaluated model's path."""
    return [{**out.metrics, "model_path": out.model_path} for out in (run.done(k) for k in keys.evals)]


def _step_output(run, step) -> str | None:
    """What a finished step left, in a few words: its model (relative to the run), its traces, its eval score."""
    out = run.done(step.key)
    if out is None:
        return None
    if step.action == "eval":
        return f"pass@1 {_fmt(out.metrics.get('accuracy'))}"
    if step.action in ("collect", "student_collect"):
        # store_round: every trace of the stage (``kept`` counts only those a resumed collect added itself)
        n = out.metrics.get("store_round", out.metrics.get("kept", 0))
        return (
            f"{n} traces (store round {step.round})"
            if step.action == "collect"
            else f"{n} traces (student_traces/{step.params['student']})"
        )
    if out.model_path is None:
        return None
    path = Path(out.model_path)
    text = str(path.relative_to(run.dir)) if path.is_relative_to(run.dir) else str(path)
    return text + (" (unchanged: no traces)" if out.metrics.get("skipped") else "")


def plan_section(run, steps) -> list[dict[str, Any]]:
    """The plan's steps in order, each with what it read (role -> step keys), what it left and its seconds."""
    rows = []
    for s in steps:
        out = run.done(s.key)
        rows.append(
            {
                "step": s.key,
                "action": s.action,
                "round": s.round,
                "inputs": {role: v if isinstance(v, str) else list(v) for role, v in s.inputs.items()},
                "external": [e["path"] for e in s.params.get("external", ())],
                "overrides": s.params.get("overrides", {}),
                "output": _step_output(run, s),
                "seconds": out.seconds if out is not None else None,
            }
        )
    return rows


def _final_name(run, keys: ReportKeys, rows: list[dict[str, Any]]) -> str | None:
    """The eval row name of the final policy: the eval step that reads it (else the row with its path)."""
    for s in keys.steps:
        if s.action == "eval" and s.inputs["model"] == keys.final:
            return s.name
    final_path = run.done(keys.final).model_path
    return next((r["model"] for r in rows if r["model_path"] == final_path), None)


def build_report(run, keys: ReportKeys) -> dict[str, Any]:
    """The report.json content of ``run`` (every number read from the steps' state files)."""
    from selfdistill import provenance

    rows = eval_rows(run, keys)
    final_name = _final_name(run, keys, rows)
    stages = {k: run.done(k).seconds for k in keys.timed if run.done(k) is not None}
    return {
        "run": run.cfg.run.name,
        "config_fingerprint": run.cfg.fingerprint(),
        "summary": summarize(rows, final_name),
        "eval": [{k: r.get(k) for k in eval_keys()} for r in rows],
        "chain": [
            {**c, "traces_from": run.done(k).metrics.get("traces_from", "policy")}
            for c, k in _chain_keys(rows, run, keys, final_name)
        ],
        "split": run.split.info,
        "rl": [
            {"round": r, "stage": k, "history": run.done(k).metrics["history"]}
            for r, k in enumerate(keys.rl, 1)
        ],
        "collect": [{"round": r, "stage": k, **run.done(k).to_json()} for r, k in enumerate(keys.collect, 1)],
        "student_collect": [run.done(k).to_json() for k in keys.student_collect if run.done(k) is not None],
        "traces": run.store.stats(),
        "sandbox": sandbox_section(run, keys.timed),
        "stages": stages,
        "plan": plan_section(run, keys.steps),
        "wall_time_s": sum(stages.values()),
        "provenance": provenance.summary(run.dir),
    }


def write_report(run, keys: ReportKeys) -> tuple[list[Path], float | None]:
    """Write report.json / report.md / rl_reward.png / accuracy.png into the run directory.

    Returns the files and the final policy's held-out accuracy.
    """
    report = build_report(run, keys)
    out = run.dir
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    plot_rl(report, out / "rl_reward.png")
    plot_accuracy(report, out / "accuracy.png")
    name = report["summary"]["final_policy"]
    final = next((r["accuracy"] for r in report["eval"] if r["model"] == name), None)
    return [out / "report.json", out / "report.md", out / "rl_reward.png", out / "accuracy.png"], final
