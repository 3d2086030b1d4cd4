"""SFT trainer whose LM-head loss goes through `selfdistill.kernels` (``kernels=fused``).

The fused path computes the same completion-only cross-entropy as TRL's eager loss without
materialising the [tokens, vocab] logits: the Triton kernels on CUDA, the chunked torch path
elsewhere (`impl="auto"`). ``kernels=eager`` uses TRL's SFTTrainer unchanged.
"""

from __future__ import annotations


def sft_trainer_class(kernels, moe: bool = False):
    """TRL's SFTTrainer, with the fused LM-head loss for ``fused``; MoE models get router diagnostics on top.

    The MoE mixin wraps the loss class (not the other way round) so its ``compute_loss`` (router metrics)
    runs around whichever loss is chosen; the load-balancing aux loss is part of both losses (TRL's and
    `kernels.hf.fused_causal_lm_loss`), weighted by ``sft.router_aux_loss_coef``.
    """
    from trl import SFTTrainer

    from selfdistill.kernels.hf import kernel_spec

    loss_class = SFTTrainer if kernel_spec(kernels).name == "eager" else fused_sft_trainer_class(kernels)
    if moe:
        from selfdistill.models.moe import moe_trainer_class

        return moe_trainer_class(loss_class, routing="off")
    return loss_class


def fused_sft_trainer_class(kernels):
    """SFTTrainer computing the LM loss (+ MoE aux loss) with the fused kernels (no logits tensor)."""
    from trl import SFTTrainer

    from selfdistill.kernels.hf import causal_lm_loss_fn

    loss_fn = causal_lm_loss_fn(kernels)  # raises with the allowed names for a bad value

    class FusedSFTTrainer(SFTTrainer):
        """SFTTrainer computing the LM loss with the fused kernels (no logits tensor)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = loss_fn(
                model,
                inputs["input_ids"],
                inputs.get("attention_mask"),
                inputs["labels"],
                num_items_in_batch=num_items_in_batch,
            )
            return (loss, None) if return_outputs else loss

    return FusedSFTTrainer
