"""Every use of TRL internals in one place: the private methods we override and the metrics store we write.

TRL's public extension point is `compute_loss`; two things we need sit behind private names in trl 1.16:

- GRPO routing replay (`selfdistill.models.moe.trl`) records the expert choices of the old-policy scoring pass,
  which only `GRPOTrainer._generate_and_score_completions` and `_get_per_token_logps_and_entropies` see.
  `GRPOHooks` overrides those two and forwards to hooks with our own names (`sample_and_score`,
  `score_tokens`), so the rest of the code never names a TRL private method.
- Extra metrics (`moe/...`, `distill/...`) go into the trainer's ``_metrics[mode]`` lists, which TRL's `log`
  averages per logging step and sends to W&B (`push_metric`).

pyproject pins trl to the minor these were written against (`TESTED_TRL`); `tests/selfdistill/test_trl_private.py`
fails, naming the method, when one of `PRIVATE_SIGNATURES` changes or the metrics store moves.
"""

from __future__ import annotations

from typing import Any

TESTED_TRL = "1.16"  # pyproject: trl>=1.16,<1.17

_GENERATE_AND_SCORE = (
    "(self, inputs: list[dict[str, torch.Tensor | typing.Any]]) -> dict[str, torch.Tensor | typing.Any]"
)
_TOKEN_LOGPS = (
    "(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, "
    "compute_aux_loss=False, pixel_values=None, image_grid_thw=None, num_images=None, "
    "pixel_attention_mask=None, spatial_shapes=None, num_tiles=None, image_sizes=None, token_type_ids=None, "
    "mm_token_type_ids=None, image_position_ids=None) -> tuple[torch.Tensor, torch.Tensor | None, "
    "torch.Tensor | None]"
)
# (class, method) -> the signature our overrides were written against (`str(inspect.signature(...))`).
PRIVATE_SIGNATURES = {
    ("GRPOTrainer", "_generate_and_score_completions"): _GENERATE_AND_SCORE,
    ("GRPOTrainer", "_get_per_token_logps_and_entropies"): _TOKEN_LOGPS,
}
# Trainers whose __init__ creates the metrics store `push_metric` writes to.
METRICS_STORE = {"GRPOTrainer": "_metrics", "SFTTrainer": "_metrics"}


def is_grpo_style(cls: type) -> bool:
    """Whether ``cls`` samples and scores completions the way GRPOTrainer does (the hooks below apply)."""
    return hasattr(cls, "_generate_and_score_completions")


def has_metrics_store(trainer: Any) -> bool:
    """Whether ``trainer`` keeps TRL's per-mode metric lists (``{"train": defaultdict(list), ...}``)."""
    return isinstance(getattr(trainer, "_metrics", None), dict)


def push_metric(trainer: Any, mode: str, key: str, value: float) -> None:
    """Append one value of metric ``key`` for ``mode`` ("train" | "eval"); TRL's `log` averages and reports it."""
    trainer._metrics[mode][key].append(value)


class GRPOHooks:
    """Mixin for GRPOTrainer: TRL's private sampling/scoring methods forwarded to overridable named hooks.

    MRO: ``(YourMixin, GRPOHooks, GRPOTrainer)``; override `sample_and_score` / `score_tokens` in YourMixin and
    call ``super()`` to reach TRL.
    """

    def _generate_and_score_completions(self, inputs):
        return self.sample_and_score(inputs)

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        return self.score_tokens(*args, **kwargs)

    def sample_and_score(self, inputs) -> dict[str, Any]:
        """Generate completions for ``inputs``, reward them, and (off-policy) score them with the old policy."""
        return super()._generate_and_score_completions(inputs)

    def score_tokens(self, model, input_ids, attention_mask, logits_to_keep, **kwargs):
        """Per-token log-probs (B, C), entropies and aux loss of the last ``logits_to_keep`` positions."""
        return super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, **kwargs
        )
