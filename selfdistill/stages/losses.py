"""Trainer classes whose LM-head loss runs through the fused kernels (``kernels=fused``).

The fused path computes the same completion-only cross-entropy as TRL's eager loss without
materialising the [tokens, vocab] logits (see `selfdistill.kernels`).
"""

from __future__ import annotations

from selfdistill.registries import Registry

SFT_TRAINERS = Registry("SFT loss implementation")


@SFT_TRAINERS.register("fused")
def _fused_sft_trainer():
    from trl import SFTTrainer

    class FusedSFTTrainer(SFTTrainer):
        """SFTTrainer with `fused_causal_lm_loss` (no logits tensor is built)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            from selfdistill.kernels.hf import fused_causal_lm_loss

            loss = fused_causal_lm_loss(model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"])
            return (loss, None) if return_outputs else loss

    return FusedSFTTrainer


def sft_trainer_class(kernels: str):
    return SFT_TRAINERS.get(kernels, "kernels")()
