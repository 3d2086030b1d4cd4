"""Teacher-as-judge reward: a judge model scores completions against a rubric (see ``reward.py``).

Public API::

    JudgeReward(JudgeConfig(model=..., backend="local" | "http", url=...), cache_dir=...)  # TRL reward
    JudgeReward(...).judge(prompts, completions, references) -> [Judgement(score, status, output)]
    score_records(records, judge) -> [{"judge_score", "judge_status", "judge_output"}]       # offline

Importing this package never imports torch: the local judge's model lives in a worker process.
The threat model (the completion is untrusted input to the judge) is in ``prompt.py``.
"""

from rewards.judge.config import JudgeConfig
from rewards.judge.reward import JudgeReward, judge_reward, score_records
from rewards.judge.types import Judgement

__all__ = ["JudgeConfig", "JudgeReward", "Judgement", "judge_reward", "score_records"]
