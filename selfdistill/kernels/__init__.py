"""Fused LM-head losses that never materialise the `[tokens, vocab]` logits.

- `fused_linear_cross_entropy(hidden, weight, labels, ...)`: SFT cross-entropy.
- `fused_linear_distillation(student_hidden, student_weight, teacher_hidden, teacher_weight, labels, ...)`:
  logit distillation (forward/reverse KL, JSD) mixed with a hard cross-entropy.

Both run a Triton path (CUDA, or CPU under `TRITON_INTERPRET=1`) and a chunked torch path, chosen by `impl`.
Importing this package imports torch but not triton. Hugging Face wiring: `selfdistill.kernels.hf`.
"""

from .cross_entropy import fused_linear_cross_entropy
from .distillation import fused_linear_distillation

__all__ = ["fused_linear_cross_entropy", "fused_linear_distillation"]
