#!/bin/bash
# Multi-node selfdistill run under Slurm: one `accelerate launch` per node, 8 GPUs each, the same
# `selfdistill run` (every stage, resumable) on the whole allocation.
#
#   sbatch --nodes 8 scripts/slurm_multinode.sh configs/recipes/qwen3-30b-a3b_math-code_8x8xh100.yaml [key=value ...]
#   ACCELERATE_CONFIG=configs/accelerate/zero3.yml sbatch --nodes 8 scripts/slurm_multinode.sh <recipe>
#
# Resume after a node dies: submit the same command again. Finished stages are skipped, RL/SFT
# continue from their latest complete checkpoint (same node count: the checkpoint is checked),
# collect from its last full chunk. run.output_dir must be on a filesystem every node mounts.
#SBATCH --job-name=selfdistill
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=96
#SBATCH --exclusive
#SBATCH --output=logs/%x-%j.out
set -euo pipefail

CONFIG=${1:?usage: sbatch --nodes N scripts/slurm_multinode.sh <config.yaml> [key=value ...]}
shift
ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-configs/accelerate/fsdp2.yml}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MAIN_HOST=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MAIN_PORT=${MAIN_PORT:-29500}
NUM_PROCESSES=$((SLURM_NNODES * GPUS_PER_NODE))

export WANDB_MODE=${WANDB_MODE:-offline}   # online when WANDB_API_KEY is set (tracking.mode=auto)
export NCCL_ASYNC_ERROR_HANDLING=1          # a dead rank ends the job instead of hanging it
export OMP_NUM_THREADS=8

mkdir -p logs
# One launcher per node; SLURM_NODEID gives each its machine rank. Only global rank 0 writes the
# trace store, state files, models, report and W&B runs.
srun --kill-on-bad-exit=1 bash -c "accelerate launch \
  --config_file $ACCELERATE_CONFIG \
  --num_machines $SLURM_NNODES \
  --num_processes $NUM_PROCESSES \
  --machine_rank \$SLURM_NODEID \
  --main_process_ip $MAIN_HOST \
  --main_process_port $MAIN_PORT \
  --rdzv_backend c10d \
  -m selfdistill.cli run $CONFIG $*"
