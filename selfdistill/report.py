"""The run report: ``report.json`` (machine-readable), ``report.md`` (for people) and PNG plots.

``report.json["eval"]`` has one row per evaluated model with: model, role (base, policy,
student), round, params, accuracy (held-out pass@1 from ``k`` samples per problem),
accuracy_math, accuracy_code, maj_at_k, plus tokens_per_s, memory_mb and format_rate, and
infra_failures: samples the sandbox or math verifier could not judge (infrastructure, not the
model), which are left out of pass@1 and maj@k rather than counted wrong.
``sandbox`` lists the code sandbox's active isolation layers as each stage that ran code saw them
(``layers``: those every such stage had). ``chain[].traces_from`` says whose traces a student learned
from (the policy's, or in a progressive chain its teacher student's own, ``student_collect``).
``summary`` compares the final policy with the base and the best student with the policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVAL_KEYS = ("model", "role", "round", "params", "accuracy", "accuracy_math", "accuracy_code", "maj_at_k", "k",
             "infra_failures", "format_rate", "tokens_per_s", "memory_mb", "n_problems", "temperature")


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
        out["student_speedup"] = best["tokens_per_s"] / final["tokens_per_s"] if final["tokens_per_s"] else None
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is unknown (every sample an infrastructure failure) or b is 0."""
    return a / b if a is not None and b else None


def distillation_chain(rows: list[dict[str, Any]], students, final_name: str, method: str) -> list[dict[str, Any]]:
    """One entry per student (config order): what it keeps of its teacher and of the policy, and what it saves."""
    by_name = {r["model"]: r for r in rows}
    policy = by_name.get(final_name)
    chain = []
    for s in students:
        row, teacher = by_name.get(s.name), by_name.get(final_name if s.teacher == "policy" else s.teacher)
        if not (row and teacher and policy):
            continue
        chain.append({
            "student": s.name, "method": method, "teacher": teacher["model"], "params": row["params"],
            "accuracy": row["accuracy"], "maj_at_k": row["maj_at_k"],
            "retention_vs_teacher": _ratio(row["accuracy"], teacher["accuracy"]),
            "retention_vs_policy": _ratio(row["accuracy"], policy["accuracy"]),
            "param_ratio": row["params"] / policy["params"],
            "speedup": row["tokens_per_s"] / policy["tokens_per_s"] if policy["tokens_per_s"] else None,
            "memory_ratio": row["memory_mb"] / policy["memory_mb"] if policy["memory_mb"] else None,
        })
    return chain


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{100 * v:.1f}%" if v <= 1.0 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# selfdistill report: {report['run']}", ""]
    s = report["summary"]
    if "policy_gain_points" in s:
        lines.append(f"- Final policy **{s['final_policy']}**: held-out pass@1 {_fmt(s['final_policy_accuracy'])} "
                     f"vs base {_fmt(s['base_accuracy'])} ({s['policy_gain_points']:+.1f} points).")
    if "best_student" in s:
        lines.append(f"- Best student **{s['best_student']}**: {_fmt(s['best_student_accuracy'])} "
                     f"({100 * (s['student_retention'] or 0):.0f}% of the policy) with "
                     f"{100 * s['student_param_ratio']:.0f}% of its parameters.")
    lines += [f"- Wall time of all stages: {report['wall_time_s']:.0f} s.", "",
              "## Held-out evaluation", "",
              f"pass@1 estimated from {report['eval'][0]['k']} samples per problem at temperature "
              f"{report['eval'][0]['temperature']}; maj@k votes over the same samples.", "",
              "| model | role | round | params | pass@1 | math | code | maj@k | format | infra failures | tokens/s | memory MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["eval"]:
        lines.append("| " + " | ".join(_fmt(r.get(k)) for k in ("model", "role", "round", "params", "accuracy",
                     "accuracy_math", "accuracy_code", "maj_at_k", "format_rate", "infra_failures")) +
                     f" | {r['tokens_per_s']:,.0f} | {r['memory_mb']:.1f} |")
    if report.get("chain"):
        lines += ["", "## Distillation", "",
                  "| student | method | teacher | params | pass@1 | maj@k | kept of teacher | kept of policy | "
                  "params vs policy | speed-up | memory vs policy |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in report["chain"]:
            lines.append(f"| {c['student']} | {c['method']} | {c['teacher']} | {c['params']:,} | {_fmt(c['accuracy'])} | "
                         f"{_fmt(c['maj_at_k'])} | {_fmt(c['retention_vs_teacher'])} | {_fmt(c['retention_vs_policy'])} | "
                         f"{_fmt(c['param_ratio'])} | {c['speedup'] or 0:.2f}x | {_fmt(c['memory_ratio'])} |")
    sp = report["split"]
    lines += ["", "## Data", "",
              f"- Tasks: {sp['n_train']} train, {sp['n_eval']} held out ({sp['method']}); prompts shared: "
              f"**{sp['overlap']}** (train digest `{sp['train_digest']}`, eval digest `{sp['eval_digest']}`).",
              f"- Traces stored: {report['traces']['total']} ({report['traces']['by_round']} by round, "
              f"{report['traces']['by_kind']} by kind)."]
    sb = report["sandbox"]
    if sb["active"]:
        lines.append(f"- Code sandbox layers: {', '.join(sb['layers'])} (required: {', '.join(sb['required']) or 'none, auto'}).")
    for c in report["collect"]:
        lines.append(f"- Round {c['round']} collect: sampled {c.get('sampled', 0)}, kept {c.get('kept', 0)}, "
                     f"sample accuracy {_fmt(c.get('sample_accuracy'))}.")
    for c in report.get("student_collect", []):
        lines.append(f"- Student {c['student']}'s own traces (to teach the next student): sampled "
                     f"{c.get('sampled', 0)}, kept {c.get('kept', 0)}, sample accuracy {_fmt(c.get('sample_accuracy'))}.")
    lines += ["", "## Stages", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report["stages"].items()]
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
        ax.plot(steps, rewards, marker=".", label=f"round {rl['round']}")
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
    width = 0.27
    for i, (key, label) in enumerate([("accuracy", "pass@1"), ("accuracy_math", "math"), ("accuracy_code", "code")]):
        ax.bar([x + (i - 1) * width for x in range(len(rows))], [100 * (r.get(key) or 0) for r in rows], width, label=label)
    ax.set_xticks(range(len(rows)), names, rotation=20, ha="right")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("Accuracy per model")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sandbox_section(run, steps) -> dict[str, Any]:
    """The code sandbox's isolation: the layers the config requires and those each code-scoring step had."""
    active = {s.key: run.done(s.key)["sandbox_layers"] for s in steps
              if run.done(s.key) is not None and "sandbox_layers" in run.done(s.key)}
    return {"required": list(run.cfg.rewards.sandbox_layers), "active": active,
            "layers": sorted(set.intersection(*(set(v) for v in active.values()))) if active else []}


def write_report(run, eval_rows: list[dict[str, Any]], final_policy_key: str) -> list[Path]:
    """Write report.json / report.md / rl_reward.png / accuracy.png into the run directory."""
    from selfdistill import provenance
    from selfdistill.pipeline import plan

    steps = plan(run.cfg)
    final_name = next(r["model"] for r in eval_rows if r["model_path"] == run.done(final_policy_key)["model_path"])
    stages = {s.key: run.done(s.key)["seconds"] for s in steps if run.done(s.key) is not None}
    report = {
        "run": run.cfg.run.name,
        "config_fingerprint": run.cfg.fingerprint(),
        "summary": summarize(eval_rows, final_name),
        "eval": [{k: r.get(k) for k in EVAL_KEYS} for r in eval_rows],
        "chain": [{**c, "traces_from": run.done(f"distill.{c['student']}").get("traces_from", "policy")}
                  for c in distillation_chain(eval_rows, run.cfg.distill.students, final_name, run.cfg.distill.method)],
        "split": run.split.info,
        "rl": [{"round": s.round, "history": run.done(s.key)["history"]} for s in steps if s.command == "rl"],
        "collect": [{"round": s.round, **run.done(s.key)} for s in steps if s.command == "collect"],
        "student_collect": [{"student": s.key.split(".", 1)[1], **run.done(s.key)} for s in steps
                            if s.key.startswith("collect.") and run.done(s.key) is not None],
        "traces": run.store.stats(),
        "sandbox": sandbox_section(run, steps),
        "stages": stages,
        "wall_time_s": sum(stages.values()),
        "provenance": provenance.summary(run.dir),
    }
    out = run.dir
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    plot_rl(report, out / "rl_reward.png")
    plot_accuracy(report, out / "accuracy.png")
    return [out / "report.json", out / "report.md", out / "rl_reward.png", out / "accuracy.png"]
