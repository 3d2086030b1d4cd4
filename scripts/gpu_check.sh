#!/usr/bin/env bash
# Everything that needs a GPU, in one command that fits in 10 minutes on one H100/H200 (issue 14, part 5).
#
#   scripts/gpu_check.sh [OUT_DIR]        # default OUT_DIR: gpu_check_<UTC date-time>
#
# Writes one file per part to OUT_DIR (each part has its own time cap, so a hung part cannot eat the rest):
#   env.txt              nvidia-smi, torch/transformers/trl versions
#   gpu_tests.txt        pytest -m gpu (kernel tests on the GPU)                                    cap  60 s
#   bench_kernels.md     fused LM-head kernels at the issue-5 shapes (N=8192, H 2048/4096, V 32k/152k) cap 150 s
#   bench_rl_step.md     ~1B-total random-init Qwen3-MoE, bf16: generation and training tokens/s, MFU  cap 120 s
#   bench_rl_overhead.md the same MoE: our RL stage vs plain trl.GRPOTrainer, s/step and peak memory cap 150 s
#   bench_generation.md  sampling backends on the same MoE, 32 prompts x 8 samples x 256 tokens      cap  90 s
#                        (the issue's GPU goal: paged >= 3x hf at 256 sequences x 256 tokens)
# Then paste the tables with this command and the OUT_DIR's env.txt into docs/benchmarks.md.
# Written without a GPU at hand (none was lent to issue 14): the first run is also its test.
set -u
OUT=${1:-gpu_check_$(date -u +%Y%m%d_%H%M%S)}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false WANDB_MODE=offline HF_HUB_OFFLINE=1

part() {  # part NAME CAP_SECONDS COMMAND...: run with a time cap, log to OUT/NAME, report status
    local name=$1 cap=$2
    shift 2
    local start=$SECONDS
    timeout "$cap" "$@" > "$OUT/$name" 2>&1
    local rc=$?
    echo "$name: exit $rc in $((SECONDS - start)) s$([ $rc -eq 124 ] && echo ' (time cap hit)')" | tee -a "$OUT/summary.txt"
}

{ nvidia-smi; python -c "import torch, transformers, trl; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'| transformers', transformers.__version__, '| trl', trl.__version__, '|', torch.cuda.get_device_name())"; } \
    > "$OUT/env.txt" 2>&1
part gpu_tests.txt 60 python -m pytest -q -m gpu tests -p no:cacheprovider
part bench_kernels.md 150 python scripts/bench_kernels.py --reps 10 --no-compile
part bench_rl_step.md 120 python scripts/bench_rl_step.py --prompts 16 --num-generations 8 --new-tokens 256 \
    --train-steps 3 --trl-steps 2
part bench_rl_overhead.md 150 python scripts/bench_rl_overhead.py --model moe1b --device cuda --steps 3 --reps 1 \
    rl.prompts_per_step=16 rl.max_completion_length=256
part bench_generation.md 90 python scripts/bench_generation.py --models moe1b --backends hf,paged --prompts 32 --k 8 \
    --new-tokens 256 --batch-size 256 --reps 1
echo "figures in $OUT/"
