"""Records that pass between the judge reward and its backends (plain data, picklable)."""

from __future__ import annotations

from typing import NamedTuple


class JudgeItem(NamedTuple):
    """One completion to judge, with what it is judged against."""

    problem: str
    reference: str | None
    completion: str


class Outcome(NamedTuple):
    """A backend's answer for one item: the judge's raw text (None when it gave none) and why."""

    text: str | None
    status: str  # rewards.common.Status: JUDGED (text holds the answer), TIMEOUT, INFRA_ERROR, INVALID
    detail: str = ""


class Judgement(NamedTuple):
    """The judge reward's verdict on one completion."""

    score: float | None  # in [0, 1]; None = not judged (unparseable answer, timeout, server failure)
    status: str  # JUDGED, UNPARSEABLE, TIMEOUT, INFRA_ERROR, INVALID
    output: str  # the judge's own answer (its raw text), or the failure's detail
    cached: bool = False
