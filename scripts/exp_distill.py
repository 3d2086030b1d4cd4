"""Experiment: the same traces and teacher distilled into the same student base by every method, several seeds.

Given a finished run directory (trace store at ``<run_dir>/traces``, teacher = the last round's SFT'd policy
in ``<run_dir>/state/r<R>.sft.json``, student base in ``<run_dir>/state/student.<name>.base.json``), each
(method, seed) starts from a fresh copy of the student base, is distilled with the run's ``distill`` settings
(plus ``--set`` overrides) and evaluated on the run's held-out tasks as the eval step does
(`evaluate_with_config`), beside the teacher and the undistilled base. Writes ``<out>/<name>.{json,md,png}`` (default docs/experiments/distill_exp.*) and prints
the table; the JSON is rewritten after every row, so a killed run keeps the rows it finished.

Measured memory: every training and every evaluation runs in a fresh process (spawned, one at a time), and
`selfdistill.kernels.measure.measure_peak` records the resident-set high-water mark (CPU; on CUDA the caching
allocator's peak) over the call: for training from loading the student (and the teacher) to the last step, for
evaluation from loading the model to the last sample. ``train_peak_mb`` / ``eval_peak_mb`` are those peaks,
``baseline_mb`` the process's resident memory just before the call (Python, torch, the tasks: not the models).
``memory_mb`` is what `evaluate_model` reports (on CPU the weights' size).

``--student-base DIR`` distills into another student base than the run's (e.g. one made by
``selfdistill cut-layers``); ``--reuse-references FILE`` takes the teacher / student-base rows from an earlier
output of this script when the model path and the evaluation settings match (the evaluation is seeded).
``--combine A.json B.json ...`` runs nothing: it merges outputs into one table, each method labelled with its
student and its overrides. The run's ``run.json`` holds every setting of its time (a run made before
``hidden_align_loss: nmse`` became the default keeps ``mse``; a setting added after the run, like
``progressive_loss``, takes its default): ``--set`` changes one.

    python scripts/exp_distill.py --run-dir runs/demo --seeds 0 1 2
    python scripts/exp_distill.py --run-dir runs/demo --methods sft logit_kd --max-steps 50 --eval-max 60 \
        --set distill.divergence=reverse_kl --set distill.hard_weight=0.3
    python scripts/exp_distill.py --run-dir runs/smollm2 --student-base models/smol-dense-26l --seeds 0 1
    python scripts/exp_distill.py --run-dir runs/demo --methods sft on_policy --warm-start sft --name distill_exp_warm
    python scripts/exp_distill.py --combine docs/experiments/smollm2/*.json --name distill_exp_smollm2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METRICS = (
    "accuracy",
    "accuracy_math",
    "accuracy_code",
    "maj_at_k",
    "tokens_per_s",
    "memory_mb",
    "train_s",
    "train_peak_mb",
    "eval_peak_mb",
)
MB = 2**20


def run_config(run_dir: Path, overrides: list[str]):
    """The run's own config (from run.json) with ``key=value`` overrides, validated."""
    from selfdistill.config import Config
    from selfdistill.configio import apply_override, from_dict

    data = json.loads((run_dir / "run.json").read_text())["config"]
    for o in overrides:
        apply_override(data, o)
    return from_dict(Config, data)


def teacher_and_base(run_dir: Path, cfg) -> tuple[str, str, str]:
    """(teacher model path, student base model path, student name) from the run's state files."""
    state = run_dir / "state"
    sft = sorted(state.glob("r*.sft.json"), key=lambda p: int(p.name[1:].split(".")[0]))
    if not sft:
        raise SystemExit(f"{state}: no r<R>.sft.json; is {run_dir} a finished run?")
    name = cfg.distill.students[0].name
    base = state / f"student.{name}.base.json"
    if not base.exists():
        raise SystemExit(f"{base} is missing: the run has not built its student base yet")
    return json.loads(sft[-1].read_text())["model_path"], json.loads(base.read_text())["model_path"], name


def evaluate(model, tokenizer, tasks, cfg, name: str) -> dict[str, Any]:
    from selfdistill.stages.evaluate import evaluate_with_config

    row = evaluate_with_config(model, tokenizer, tasks, cfg, name)
    row.pop("examples")
    return row


def distill_once(
    method: str,
    seed: int,
    base_path: str,
    teacher_path: str,
    store,
    cfg,
    device: str,
    warm_start: str | None = None,
):
    """Fresh student from ``base_path``, distilled by ``warm_start`` (if any) then ``method``.

    Returns (student, tokenizer, metrics of the last method, with ``train_s`` covering both).
    """
    from selfdistill.distill.methods import DISTILL_METHODS
    from selfdistill.models.loading import load_model
    from selfdistill.stages.distill import distill
    from selfdistill.tracking import NullStage

    student, tokenizer = load_model(base_path, device=device)
    start = time.perf_counter()
    for m in ([warm_start] if warm_start else []) + [method]:
        with tempfile.TemporaryDirectory() as out_dir:
            DISTILL_METHODS.check(m, "--methods")
            out = distill(
                m, student, tokenizer, teacher=teacher_path, store=store, dcfg=cfg.distill, out_dir=Path(out_dir),
                seed=seed, stage=NullStage(), device=device, run_name=f"exp/{m}/{seed}",
                prompt_format=cfg.tasks.prompt_format, kernels=cfg.kernels,
            )  # fmt: skip
    out["train_s"] = time.perf_counter() - start
    return student, tokenizer, out


def summarise(rows: list[dict], teacher_acc: float) -> list[dict]:
    """Mean and std over seeds per method, with retention = accuracy / teacher accuracy."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        s = {"method": method, "seeds": len(rs), "params": rs[0]["params"]}
        for k in METRICS:
            vals = [r[k] for r in rs if r.get(k) is not None]
            s[k] = statistics.fmean(vals) if vals else None
            s[k + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        s["retention"] = s["accuracy"] / teacher_acc if teacher_acc else None
        s["accuracy_std_pop"] = statistics.pstdev([r["accuracy"] for r in rs])
        out.append(s)
    return out


def _num(value, fmt: str, scale: float = 1.0) -> str:
    return "–" if value is None else format(scale * value, fmt)


def table(summary: list[dict]) -> str:
    """Markdown table of the summary; peaks are measured (module docstring), weights MB is `memory_mb`."""
    head = (
        "| model / method | seeds | params | pass@1 | math | code | maj@k | retention vs teacher | tokens/s "
        "| weights MB | train peak MB | eval peak MB | train s |"
    )
    lines = [head, "|" + "---|" * 13]
    for s in summary:
        ret = "n/a" if s["retention"] is None else f"{100 * s['retention']:.0f}%"
        lines.append(
            f"| {s['method']} | {s['seeds']} | {s['params']:,} | {100 * s['accuracy']:.1f} ± {100 * s['accuracy_std']:.1f}"
            f" | {_num(s['accuracy_math'], '.1f', 100)} | {_num(s['accuracy_code'], '.1f', 100)}"
            f" | {100 * s['maj_at_k']:.1f} | {ret} | {s['tokens_per_s']:.0f} | {s['memory_mb']:.0f}"
            f" | {_num(s['train_peak_mb'], '.0f')} | {_num(s['eval_peak_mb'], '.0f')}"
            f" | {_num(s['train_s'], '.0f')} |"
        )
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    """Horizontal bars (one row per method, first at the top): pass@1 with its seed spread, and tokens/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s["method"] for s in summary]
    rows = list(range(len(names)))[::-1]
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(12, 1.2 + 0.35 * len(names)), sharey=True, gridspec_kw={"width_ratios": [3, 1]}
    )
    ax1.barh(
        rows,
        [100 * s["accuracy"] for s in summary],
        xerr=[100 * s["accuracy_std"] for s in summary],
        color=["#777" if n == "teacher" or n.endswith("student base") else "#3a7" for n in names],
        capsize=3,
    )
    ax1.set_yticks(rows, names)
    ax1.set_xlabel("held-out pass@1 (%)")
    ax1.set_title("accuracy (mean ± std over seeds)")
    ax2.barh(rows, [s["tokens_per_s"] for s in summary], color="#37a")
    ax2.set_xlabel("generation tokens/s")
    ax2.set_title("throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _setup(spec: dict):
    """In a phase process: threads, config, device, held-out tasks (what every phase needs before a model)."""
    import torch

    import selfdistill.models.loading
    import selfdistill.stages.distill
    import selfdistill.stages.evaluate  # noqa: F401  (imported before the measured call: not part of its peak)
    from selfdistill.tasks import load_tasks

    torch.set_num_threads(spec["threads"])
    cfg = run_config(Path(spec["run_dir"]), spec["overrides"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tasks = load_tasks(cfg).eval
    return cfg, device, tasks[: spec["eval_max"]] if spec["eval_max"] else tasks


def _memory_fields(prefix: str, mem) -> dict[str, float]:
    return {f"{prefix}_peak_mb": mem.peak / MB, "baseline_mb": mem.base / MB}


def train_phase(spec: dict) -> dict:
    """Distil a fresh student (a fresh process: see module docstring); save it to ``spec['save_to']``."""
    from selfdistill.kernels.measure import measure_peak
    from selfdistill.models.loading import save_model
    from selfdistill.traces import TraceStore

    cfg, device, _ = _setup(spec)
    store = TraceStore(Path(spec["run_dir"]) / "traces")
    (student, tokenizer, out), mem = measure_peak(
        lambda: distill_once(
            spec["method"], spec["seed"], spec["base_path"], spec["teacher_path"], store, cfg, device,
            spec["warm_start"],
        ),
        device,
    )  # fmt: skip
    save_model(student, tokenizer, spec["save_to"])
    return {
        "train_s": out["train_s"], "steps": out["steps"], "final_loss": out["final_loss"],
        **_memory_fields("train", mem),
    }  # fmt: skip


def eval_phase(spec: dict) -> dict:
    """Load ``spec['model_path']`` and evaluate it on the held-out tasks (a fresh process), memory measured."""
    from selfdistill.kernels.measure import measure_peak
    from selfdistill.models.loading import load_model

    cfg, device, tasks = _setup(spec)

    def load_and_evaluate():
        model, tok = load_model(spec["model_path"], device=device)
        return evaluate(model, tok, tasks, cfg, spec["label"])

    row, mem = measure_peak(load_and_evaluate, device)
    return {**row, **_memory_fields("eval", mem)}


def in_fresh_process(fn, spec: dict) -> dict:
    """``fn(spec)`` in a new spawned process, so its peak memory is its own (nothing left from earlier rows)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, spec).result()


def reusable_references(path: Path | None, meta: dict) -> dict[str, dict]:
    """Reference rows (teacher, student base) of an earlier output, by model path, if evaluated the same way."""
    if path is None:
        return {}
    old = json.loads(path.read_text())
    same = ("run_dir", "eval_tasks", "eval", "threads")
    diff = [k for k in same if old["meta"].get(k) != meta[k]]
    if diff:
        raise SystemExit(f"--reuse-references {path}: evaluated differently ({', '.join(diff)} differ)")
    return {r["model_path"]: r for r in old["rows"] if r["seed"] is None and "model_path" in r}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path)
    ap.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        default=None,
        help="instead of running: merge these outputs of this script into <out>/<name>.{json,md,png}",
    )
    ap.add_argument("--methods", nargs="+", default=["sft", "logit_kd", "on_policy", "hidden_align"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument(
        "--max-steps", type=int, default=-1, help="distill.sft.max_steps for every method (-1: epochs)"
    )
    ap.add_argument(
        "--eval-max", type=int, default=0, help="evaluate at most this many held-out tasks (0: all)"
    )
    ap.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "experiments")
    ap.add_argument("--name", default="distill_exp", help="output files are <out>/<name>.{json,md,png}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--warm-start", default=None, help="run this method first (e.g. sft), then each of --methods"
    )
    ap.add_argument(
        "--student-base",
        default=None,
        help="student base model directory (default: the run's state/student.<name>.base.json)",
    )
    ap.add_argument(
        "--reuse-references",
        type=Path,
        default=None,
        help="an earlier output JSON whose teacher / student-base rows are reused when the paths match",
    )
    args = ap.parse_args()
    if args.combine:
        rows = combine(args.combine)
        summary = summarise(rows, rows[0]["accuracy"])
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {"combined": [str(p) for p in args.combine]}
        (args.out / f"{args.name}.json").write_text(
            json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1)
        )
        (args.out / f"{args.name}.md").write_text(table(summary) + "\n")
        plot(summary, args.out / f"{args.name}.png")
        print(table(summary))
        return
    if args.run_dir is None:
        ap.error("--run-dir is required (unless --combine)")

    from selfdistill.tasks import load_tasks
    from selfdistill.traces import TraceStore

    overrides = list(args.set) + ([f"distill.sft.max_steps={args.max_steps}"] if args.max_steps > 0 else [])
    cfg = run_config(args.run_dir, overrides)
    store = TraceStore(args.run_dir / "traces")
    teacher_path, base_path, name = teacher_and_base(args.run_dir, cfg)
    if args.student_base is not None:
        if not (Path(args.student_base) / "config.json").is_file():
            raise SystemExit(f"--student-base {args.student_base}: not a model directory (no config.json)")
        base_path, name = args.student_base, Path(args.student_base).name
    spec = {
        "run_dir": str(args.run_dir), "overrides": overrides, "threads": args.threads,
        "eval_max": args.eval_max, "teacher_path": teacher_path, "base_path": base_path,
        "warm_start": args.warm_start,
    }  # fmt: skip
    meta = {
        "run_dir": str(args.run_dir),
        "overrides": overrides,
        "seeds": args.seeds,
        "eval_tasks": len(load_tasks(cfg).eval[: args.eval_max or None]),
        "eval": _plain_eval(cfg),
        "threads": args.threads,
        "warm_start": args.warm_start,
        "traces": len(store),
        "teacher": teacher_path,
        "student_base": base_path,
        "student": name,
        "distill": _plain(cfg.distill),
        "kernels": cfg.kernels,
        "memory": "train_peak_mb / eval_peak_mb: peak RSS (CUDA: max allocated) of a fresh process over the "
        "training / the load + evaluation; baseline_mb: its RSS just before (no model loaded)",
    }
    print(
        f"run {args.run_dir}: {len(store)} traces, teacher {teacher_path}, student {name} ({base_path})",
        flush=True,
    )
    reuse = reusable_references(args.reuse_references, meta)

    rows: list[dict] = []

    def save() -> None:
        summary = summarise(rows, rows[0]["accuracy"])
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.json").write_text(
            json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1)
        )
        (args.out / f"{args.name}.md").write_text(table(summary) + "\n")

    for label, path in (("teacher", teacher_path), ("student base", base_path)):
        if path in reuse:
            row = {**reuse[path], "reused_from": str(args.reuse_references)}
        else:
            row = in_fresh_process(eval_phase, {**spec, "model_path": path, "label": label})
        rows.append({**row, "method": label, "seed": None, "train_s": None, "model_path": path})
        print(
            label,
            f"pass@1 {rows[-1]['accuracy']:.3f}",
            f"eval peak {rows[-1]['eval_peak_mb']:.0f} MB",
            flush=True,
        )
        save()
    for method in args.methods:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                trained = in_fresh_process(
                    train_phase, {**spec, "method": method, "seed": seed, "save_to": tmp}
                )
                row = in_fresh_process(eval_phase, {**spec, "model_path": tmp, "label": f"{method}/{seed}"})
            rows.append({"method": method, "seed": seed, **row, **trained})
            print(
                f"{method} seed {seed}: pass@1 {row['accuracy']:.3f} steps {trained['steps']} "
                f"final loss {trained['final_loss']} in {trained['train_s']:.0f}s, "
                f"peak train {trained['train_peak_mb']:.0f} MB eval {row['eval_peak_mb']:.0f} MB",
                flush=True,
            )
            save()
    summary = summarise(rows, rows[0]["accuracy"])
    print(table(summary))
    plot(summary, args.out / f"{args.name}.png")


def combine(paths: list[Path]) -> list[dict]:
    """The rows of several outputs of this script as one list, each method labelled with its student and the
    overrides that made it (``run.threads`` aside), references once each (the first with measured memory)."""
    rows: list[dict] = []
    seen: dict[str, int] = {}
    first: dict | None = None
    for path in paths:
        data = json.loads(path.read_text())
        meta = data["meta"]
        first = first or meta
        differ = [k for k in ("eval_tasks", "traces") if meta.get(k) != first.get(k)]
        if differ:
            raise SystemExit(f"--combine: {path} differs from {paths[0]} in {', '.join(differ)}")
        student = meta.get("student", "smol-26l")  # outputs before --student-base were the run's student
        extra = [o for o in meta["overrides"] if not o.startswith("run.threads=")]
        for r in data["rows"]:
            if r["method"] == "teacher":
                label = "teacher"
            elif r["seed"] is None:
                label = f"{student}: {r['method']}"
            else:
                label = f"{student}: {r['method']}{_align_note(r['method'], meta.get('distill'))}"
                label += f" [{', '.join(extra)}]" if extra else ""
            row = {**r, "method": label, "source": str(path)}
            if r["seed"] is not None:
                rows.append(row)
            elif label not in seen:
                seen[label] = len(rows)
                rows.append(row)
            elif rows[seen[label]].get("eval_peak_mb") is None and r.get("eval_peak_mb") is not None:
                rows[seen[label]] = row
    teacher = [r for r in rows if r["method"] == "teacher"]
    return teacher + [r for r in rows if r["method"] != "teacher"]


def _align_note(method: str, distill: dict | None) -> str:
    """`` (nmse)`` etc. for a method that aligns hidden states or regresses MoE blocks: the loss was the
    default's, which changed (an output without ``progressive_loss`` predates it: the regression was ``mse``)."""
    from types import SimpleNamespace

    from selfdistill.distill.methods import align_weight, get_method

    if not distill:
        return ""
    if get_method(method).progressive:
        return f" ({distill.get('progressive_loss', 'mse')})"
    if align_weight(method, SimpleNamespace(**distill)) == 0:
        return ""
    return f" ({distill['hidden_align_loss']})"


def _plain_eval(cfg) -> dict:
    from selfdistill.configio import to_dict
    from selfdistill.stages.evaluate import eval_seed

    return {**to_dict(cfg.eval), "seed": eval_seed(cfg), "prompt_format": cfg.tasks.prompt_format}


def _plain(obj):
    from selfdistill.configio import to_dict

    d = to_dict(obj)
    d.pop("students", None)
    return d


if __name__ == "__main__":
    main()
