"""Overhead of the MoE router hooks: diagnostics recorder, routing record, routing replay.

Measures, side by side in one process (interleaved repeats, min per case), on a small random-init Qwen3-MoE:
  model level: forward+backward of a (B, T) batch plain / with RouterRecorder / with replay (+ the no-grad
               record pass replay needs, timed on its own);
  trainer level: median GRPOTrainer step time with routing off / measure / replay.
Prints a markdown table. CPU by default; on a GPU machine pass --device cuda (model level only); --grpo-steps 0 skips the trainer part.

    python scripts/bench_moe_routing.py [--device cpu] [--repeats 5] [--grpo-steps 6]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from selfdistill.models.moe.diagnostics import RouterRecorder
from selfdistill.models.moe.replay import RoutingReplay
from selfdistill.models.moe.tiny import build_tiny_moe


def timed(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def model_level(device: str, repeats: int, batch: int, seq: int) -> list[tuple[str, float]]:
    model = build_tiny_moe(
        "qwen3_moe",
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_experts=16,
        moe_intermediate_size=128,
    ).to(device)
    ids = torch.randint(3, 512, (batch, seq), device=device)
    mask = torch.ones_like(ids)
    rec, rr = RouterRecorder(model), RoutingReplay(model)

    def fwd_bwd():
        model.zero_grad(set_to_none=True)
        model(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()

    def with_recorder():
        with rec.capture():
            fwd_bwd()
        rec.summary()

    def record_pass():
        with torch.no_grad(), rr.recording():
            model(input_ids=ids, attention_mask=mask)
        return rr.take_record()

    def plain_nograd():
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)

    routing = record_pass()

    def with_replay():
        with rr.replaying(routing):
            fwd_bwd()
        rr.change_metrics()

    cases = {
        "fwd+bwd plain": fwd_bwd,
        "fwd+bwd + diagnostics": with_recorder,
        "fwd+bwd + replay": with_replay,
        "no-grad fwd plain": plain_nograd,
        "no-grad fwd + record": record_pass,
    }
    for fn in cases.values():  # warm-up
        fn()
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(timed(fn, device))
    # min: the least-disturbed run, the best estimate of intrinsic cost on a shared machine
    return [(name, min(ts)) for name, ts in times.items()]


def trainer_level(steps: int) -> list[tuple[str, float]]:
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from selfdistill.models.moe.trl import moe_trainer_class
    from selfdistill.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    data = Dataset.from_dict({"prompt": [f"{i}+{i}=" for i in range(8 * steps)]})

    def reward(completions, **kwargs):
        return [float(sum(c.isdigit() for c in text)) for text in completions]

    out = []
    for routing in ("off", "measure", "replay"):
        model = build_tiny_moe("qwen3_moe", vocab_size=len(tok))
        args = GRPOConfig(
            output_dir=tempfile.mkdtemp(),
            per_device_train_batch_size=8,
            num_generations=4,
            max_completion_length=16,
            max_steps=steps,
            learning_rate=1e-3,
            logging_steps=1,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            bf16=False,
            gradient_checkpointing=False,
            router_aux_loss_coef=0.0,
            steps_per_generation=2,
            disable_tqdm=True,
        )
        cls = moe_trainer_class(GRPOTrainer, routing=routing, diagnostics=routing != "off")
        trainer = cls(model=model, reward_funcs=[reward], args=args, train_dataset=data, processing_class=tok)
        trainer.remove_callback(PrinterCallback)  # keep stdout for the table
        trainer.train()
        step_times = [h["step_time"] for h in trainer.state.log_history if "step_time" in h][
            1:
        ]  # skip warm-up
        out.append((f"GRPO step, routing={routing}", statistics.median(step_times)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--grpo-steps", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = model_level(args.device, args.repeats, args.batch, args.seq)
    if args.device == "cpu" and args.grpo_steps > 1:
        rows += trainer_level(args.grpo_steps)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    print("| case | time (ms) | vs plain |")
    print("|---|---|---|")
    base = {"fwd+bwd": rows[0][1], "no-grad": rows[3][1]}
    for name, t in rows:
        ref = next((v for k, v in base.items() if name.startswith(k)), None)
        grpo_off = next((v for k, v in rows if k.endswith("routing=off")), None)
        ref = grpo_off if name.startswith("GRPO") else ref
        print(f"| {name} | {t * 1e3:.1f} | {t / ref:.2f}x |")


if __name__ == "__main__":
    main()
