"""The code reward: extract the program, run the tests in the sandbox, judge in trusted code.

    reward = CodeReward(CodeRewardConfig(all_or_nothing=False))
    reward(prompts, completions, tests=[...])       # TRL contract -> list[float | None]
    reward.score(texts, tests)                       # -> list[Score] with status/passed/total

Reward is the fraction of tests passed (or 1/0 with ``all_or_nothing``). A batch is run as
one sandbox batch (all programs and stdio runs interleaved over the workers); assert-style
tests that need the trusted harness run in a small thread pool of sandbox sessions.
``INFRA_ERROR`` (the sandbox failed, not the code) is retried once; if it persists the TRL
reward is ``None`` (the sample is left out, with a warning) and the record score says so:
never a silent 0, never a 1.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rewards.code import asserts, judge
from rewards.code.extract import extract_code
from rewards.code.spec import AssertSpec, CallSpec, SpecError, StdioSpec, parse_tests
from rewards.common import Status, completion_text
from rewards.sandbox.client import InfraError, Sandbox
from rewards.sandbox.config import SandboxConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodeRewardConfig:
    extraction: str = "last_python"
    all_or_nothing: bool = False
    max_code_bytes: int = 256 << 10  # longer programs are rejected before running
    rel_tol: float = 1e-9
    abs_tol: float = 1e-9
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)


@dataclass
class Score:
    reward: float
    status: Status
    passed: int
    total: int
    detail: str = ""

    @property
    def trl_reward(self) -> float | None:
        """What the trainer gets: None when the sandbox (not the code) failed, so the sample is left out."""
        return None if self.status == Status.INFRA_ERROR else self.reward

    def as_dict(self) -> dict:
        """The record ``selfdistill score`` writes: every verdict carries its ``detail`` (why it is not PASS)."""
        return {
            "reward": self.reward,
            "status": str(self.status),
            "passed": self.passed,
            "total": self.total,
            "detail": self.detail,
        }


@dataclass
class _Item:
    """One completion on its way through the reward."""

    code: str | None
    spec: Any
    score: Score | None = None  # set as soon as the verdict is known
    jobs: list[int] = field(default_factory=list)  # indices into the batch
    plan: asserts.AssertPlan | None = None


class CodeReward:
    """Configurable code reward; an instance is a TRL reward function named ``code_reward``."""

    __name__ = "code_reward"

    def __init__(self, config: CodeRewardConfig | None = None, sandbox: Sandbox | None = None):
        self.config = config or CodeRewardConfig()
        self._sandbox = sandbox

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(self.config.sandbox)
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    # -- TRL contract ------------------------------------------------------------------------
    def __call__(
        self,
        prompts: list,
        completions: list,
        tests: list | None = None,
        kind: list | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        out: list[float | None] = []
        for i, s in enumerate(self.judge(completions, tests, kind)):
            if s is not None and s.status == Status.INFRA_ERROR:
                log.warning("code_reward: sandbox failure on sample %d (%s); reward left out", i, s.detail)
            out.append(None if s is None else s.trl_reward)
        return out

    def judge(self, completions: list, tests: list | None, kind: list | None = None) -> list[Score | None]:
        """A `Score` (reward and status) per completion; None for rows of another kind.

        Never raises into the trainer: a batch the sandbox cannot run comes back as ``INFRA_ERROR`` scores.
        """
        if tests is None:
            raise ValueError("code_reward needs a 'tests' column (one entry per completion)")
        todo = [i for i in range(len(completions)) if kind is None or kind[i] == "code"]
        out: list[Score | None] = [None] * len(completions)
        try:
            texts = [completion_text(completions[i]) for i in todo]
            scores = self.score(texts, [tests[i] for i in todo])
        except Exception as e:  # noqa: BLE001 -- never raise into the trainer
            log.exception("code_reward failed on a batch of %d; leaving it out", len(todo))
            scores = [Score(0.0, Status.INFRA_ERROR, 0, 0, f"{type(e).__name__}: {e}"[:300]) for _ in todo]
        for i, s in zip(todo, scores):
            out[i] = s
        return out

    # -- scoring -----------------------------------------------------------------------------
    def score(self, texts: list[str], tests: list[Any]) -> list[Score]:
        items = [self._prepare(t, x) for t, x in zip(texts, tests)]
        self._execute(items)
        retry = [it for it in items if it.score is not None and it.score.status == Status.INFRA_ERROR]
        if retry:
            for it in retry:
                it.score, it.jobs = None, []
            self._execute(retry)
        return [it.score for it in items]  # type: ignore[misc]

    def _prepare(self, text: str, tests: Any) -> _Item:
        try:
            spec = parse_tests(tests)
            plan = asserts.plan(spec) if isinstance(spec, AssertSpec) else None
        except (SpecError, SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as e:
            why = str(e) if isinstance(e, SpecError) else f"tests cannot be read: {type(e).__name__}: {e}"
            return _Item(None, None, Score(0.0, Status.INVALID, 0, 0, why[:300]))
        total = (
            len(spec.inputs)
            if isinstance(spec, CallSpec)
            else (len(spec.cases) if isinstance(spec, StdioSpec) else plan.n_tests)
        )
        code = extract_code(text, self.config.extraction)
        if code is None:
            return _Item(None, spec, Score(0.0, Status.NO_CODE, 0, total, "no fenced code block"))
        if len(code.encode("utf-8", errors="replace")) > self.config.max_code_bytes:
            return _Item(code, spec, Score(0.0, Status.SYNTAX_ERROR, 0, total, "program too large"))
        return _Item(code, spec, plan=plan)

    def _execute(self, items: list[_Item]) -> None:
        jobs: list[dict] = []
        harness: list[_Item] = []
        for it in items:
            if it.score is not None:
                continue
            spec = it.plan.call if it.plan is not None and it.plan.call is not None else it.spec
            if isinstance(spec, CallSpec):
                it.jobs = [len(jobs)]
                jobs.append(
                    {"mode": "call", "code": it.code, "fn_name": spec.fn_name, "cases": list(spec.inputs)}
                )
            elif isinstance(spec, StdioSpec):
                it.jobs = list(range(len(jobs), len(jobs) + len(spec.cases)))
                jobs += [{"mode": "stdio", "code": it.code, "stdin": stdin} for stdin, _ in spec.cases]
            else:
                harness.append(it)
        results = self.sandbox.run(jobs) if jobs else []
        for it in items:
            if it.score is None and it.jobs:
                it.score = self._judge(it, [results[j] for j in it.jobs])
        if harness:
            with ThreadPoolExecutor(self.sandbox.workers, thread_name_prefix="code-harness") as pool:
                for it, score in zip(harness, pool.map(self._harness, harness)):
                    it.score = score

    def _judge(self, it: _Item, results: list) -> Score:
        if it.plan is not None:  # converted asserts: Python == on plain data, as the assert would
            spec: CallSpec = it.plan.call
            statuses, _ = judge.judge_call(results[0], spec.expected, compare=judge.python_eq)
            why = judge.call_reason(results[0], spec.expected, statuses)
        elif isinstance(it.spec, CallSpec):
            statuses, _ = judge.judge_call(
                results[0], it.spec.expected, rel_tol=self.config.rel_tol, abs_tol=self.config.abs_tol
            )
            why = judge.call_reason(results[0], it.spec.expected, statuses)
        else:
            cases = it.spec.cases
            statuses = [judge.judge_stdio(r, exp) for r, (_, exp) in zip(results, cases)]
            bad = [i for i, s in enumerate(statuses) if s != Status.PASS]
            why = (
                judge.stdio_reason(results[bad[0]], cases[bad[0]][1], statuses[bad[0]], bad[0], len(cases))
                if bad
                else ""
            )
            if len(bad) > 1:
                why += f" (and {len(bad) - 1} more failing)"
        return self._score(statuses, why)

    def _harness(self, it: _Item) -> Score:
        try:
            with self.sandbox.session(it.code, it.spec.entry_point) as session:
                statuses, why = asserts.run_harness(session, it.spec)
        except InfraError as e:
            return Score(0.0, Status.INFRA_ERROR, 0, it.plan.n_tests, str(e))
        return self._score(statuses, why)

    def _score(self, statuses: list[Status], detail: str = "") -> Score:
        passed, total = sum(s == Status.PASS for s in statuses), len(statuses)
        status = judge.overall(statuses)
        if status != Status.PASS and not detail:  # a safety net: every reason source above should say why
            detail = (
                f"{status}: {total - passed} of {total} tests did not pass"
                if total
                else f"{status}: no tests ran"
            )
        if status == Status.INFRA_ERROR:
            return Score(0.0, status, passed, total, detail)
        if self.config.all_or_nothing:
            reward = 1.0 if status == Status.PASS else 0.0
        else:
            reward = passed / total if total else 0.0
        return Score(reward, status, passed, total, detail)
