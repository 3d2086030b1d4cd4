"""Rule-based rewards for reasoning RL: math (sympy), code (sandboxed tests) and format.

Importing this package is cheap and never imports torch: every reward lives in its own
module and is looked up lazily through :mod:`rewards.registry`.

Reward-function contract (the one TRL's ``GRPOTrainer`` uses)::

    f(prompts: list, completions: list, **columns) -> list[float | None]

One value per completion; ``None`` means "this reward does not apply to this sample"
(TRL turns it into NaN and leaves it out of that sample's sum).
"""

from rewards.common import Status, completion_text
from rewards.registry import get_reward, get_scorer, reward_names

__all__ = ["Status", "completion_text", "get_reward", "get_scorer", "reward_names"]
