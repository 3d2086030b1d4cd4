"""SFT trainer whose LM-head loss goes through `selfdistill.kernels` (``kernels=fused``).

The fused path computes the same completion-only cross-entropy as TRL's eager loss without
materialising the [tokens, vocab] logits: the Triton kernels on CUDA, the chunked torch path
elsewhere (`impl="auto"`). ``kernels=eager`` uses TRL's SFTTrainer unchanged.
"""

from __future__ import annotations


def sft_trainer_class(kernels, moe: bool = False):
    """TRL's SFTTrainer (with MoE router diagnostics for MoE models); the fused loss for ``fused``."""
    from trl import SFTTrainer

    from selfdistill.kernels.hf import causal_lm_loss_fn, kernel_spec

    base = SFTTrainer
    if moe:
        from selfdistill.models.moe import make_sft_trainer_class

        base = make_sft_trainer_class()

    if kernel_spec(kernels).name == "eager":  # "eager" or KernelSpec("eager", ...)
        return base
    loss_fn = causal_lm_loss_fn(kernels)  # raises with the allowed names for a bad value

    class FusedSFTTrainer(base):
        """SFTTrainer computing the LM loss with the fused kernels (no logits tensor)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = loss_fn(model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"],
                           num_items_in_batch=num_items_in_batch)
            return (loss, None) if return_outputs else loss

    return FusedSFTTrainer
