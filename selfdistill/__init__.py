"""selfdistill: RL with rule-based rewards on MoE policies, self-distillation, and distillation
into small dense students. See README.md; `selfdistill run` runs the embedded demo."""

__version__ = "0.1.0"
