"""`DistillTrainer`: TRL's SFTTrainer with a teacher, a distillation objective and optional on-policy batches.

The training loop, scheduler, logging (W&B or none) and data collation are SFTTrainer's, fed by the same
tokenised traces as `stages.sft.train_sft`. Only `compute_loss` changes: it calls `objective.batch_loss`
(fused or eager kernels) and, with probability ``on_policy_fraction``, first replaces the batch's trace
completions by completions the student samples itself (`on_policy.sample_on_policy`). The teacher is kept
in eval mode with gradients off and is never handed to the optimizer; the hidden-alignment projections
(if any) are added to the optimizer as their own parameter group.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from selfdistill.distill.objective import Objective, batch_loss
from selfdistill.distill.on_policy import sample_on_policy
from selfdistill.trl_private import push_metric


@dataclass
class OnPolicy:
    fraction: float = 1.0  # share of batches sampled by the student (GKD's lambda)
    max_new_tokens: int = 64
    temperature: float = 1.0
    pad_id: int = 0
    eos_id: int = 0
    seed: int = 0
    backend: str = "auto"  # generation.backend (vllm is refused: the student changes every step)
    settings: Any = None  # the `generation` config section (None = its defaults)


def freeze_teacher(teacher) -> None:
    """Eval mode (no dropout), no gradients: the teacher only scores."""
    teacher.eval()
    teacher.requires_grad_(False)


# long function: a class factory: the trainer class body is the function body (TRL imported lazily)
def distill_trainer_class():
    """The trainer class (built lazily so importing this module does not import TRL)."""
    from trl import SFTTrainer

    class DistillTrainer(SFTTrainer):
        """SFTTrainer whose loss is `batch_loss(student, teacher, ...)`; see the module docstring."""

        def __init__(self, *args, teacher, objective: Objective, on_policy: OnPolicy | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            freeze_teacher(teacher)
            self.teacher = teacher.to(self.args.device)
            self.objective = objective
            for module in (
                objective.aligner,
                objective.experts,
            ):  # learned projections train with the student
                if module is not None:
                    module.to(self.args.device)
            self.on_policy = on_policy
            self._coin = random.Random(on_policy.seed if on_policy else 0)
            self._sample_seeds = random.Random(
                f"on-policy-{on_policy.seed if on_policy else 0}"
            )  # one per batch
            self.on_policy_batches = 0

        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            modules = [m for m in (self.objective.aligner, self.objective.experts) if m is not None]
            params = [p for m in modules for p in m.parameters() if p.requires_grad]
            if params and not any(p is params[0] for g in optimizer.param_groups for p in g["params"]):
                optimizer.add_param_group({"params": params, "weight_decay": 0.0})
            return optimizer

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ids, mask, labels = inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"]
            hard_weight = None
            op = self.on_policy
            if op is not None and model.training and self._coin.random() < op.fraction:
                ids, mask, labels = sample_on_policy(
                    self.accelerator.unwrap_model(model), ids, labels, pad_id=op.pad_id, eos_id=op.eos_id, max_new_tokens=op.max_new_tokens,
                    temperature=op.temperature, seed=self._sample_seeds.randrange(2**31), backend=op.backend,
                    settings=op.settings,
                )  # fmt: skip
                hard_weight = 0.0  # the labels are the student's own samples
                self.on_policy_batches += 1
            loss, parts = batch_loss(
                model,
                self.teacher,
                ids,
                mask,
                labels,
                self.objective,
                hard_weight=hard_weight,
                step=self.state.global_step,
            )
            mode = "train" if model.training else "eval"
            for key, value in parts.items():
                push_metric(self, mode, f"distill/{key}", value)
            return (loss, None) if return_outputs else loss

    return DistillTrainer
