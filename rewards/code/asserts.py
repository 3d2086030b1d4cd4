"""Assert-style tests (HumanEval ``check(candidate)``, MBPP ``assert f(x) == y`` lines), judged
in trusted code.

Two routes, both keeping every comparison out of the sandbox:

1. **Conversion** (MBPP lines of the form ``assert f(<literals>) == <literal>``): the lines
   become call-based cases; the job only returns values, compared here with ``==`` on plain data.
2. **Trusted harness** (everything else, and every HumanEval ``check``): the dataset's test code
   runs *here*, with ``candidate`` (and the entry-point name) bound to a proxy that forwards
   each call into a sandbox session and returns the decoded plain value. An ``__eq__`` hack or a
   frame walk in the job cannot touch the harness, which lives in another process.

What cannot be run safely is reported as ``INVALID`` with a reason, never silently trusted:
arguments that are not plain data (callables, objects), test code referring to names the
solution defines besides the entry point, or test code that fails on its own.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from rewards.code.spec import AssertSpec, CallSpec
from rewards.common import Status
from rewards.sandbox import codec


class _CandidateError(Exception):
    """The untrusted function raised, or the job died; carries the status to report."""

    def __init__(self, status: Status, why: str):
        super().__init__(why)
        self.status = status


class _Unsafe(Exception):
    """The test cannot be run without trusting the untrusted side."""


@dataclass(frozen=True)
class AssertPlan:
    """How an :class:`AssertSpec` will be judged: converted cases, or the harness."""

    call: CallSpec | None  # set when every assert converted to a literal call case
    n_tests: int


def _literal_call(test: ast.expr, entry: str):
    """``(args, kwargs, expected)`` for ``entry(<literals>) == <literal>`` (either side), else None."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return None
    for call, other in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == entry:
            try:
                args = [ast.literal_eval(a) for a in call.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
                if None in kwargs:
                    return None
                return args, kwargs, ast.literal_eval(other)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
    return None


def plan(spec: AssertSpec) -> AssertPlan:
    """Decide the route. HumanEval checks count as one test; MBPP lines count one test each."""
    tree = ast.parse(spec.code)
    if any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body):
        return AssertPlan(None, 1)
    asserts = [n for n in tree.body if isinstance(n, ast.Assert)]
    if not asserts:
        raise ValueError("assert-style tests define neither check(candidate) nor assert lines")
    cases = [_literal_call(a.test, spec.entry_point) for a in asserts]
    others = [n for n in tree.body if not isinstance(n, ast.Assert | ast.Import | ast.ImportFrom)]
    if all(c is not None for c in cases) and not others and not spec.imports.strip():
        try:
            inputs = tuple([codec._enc(list(a), 0), codec._enc(k, 0)] for a, k, _ in cases)
        except codec.CodecError:
            return AssertPlan(None, len(asserts))
        return AssertPlan(CallSpec(spec.entry_point, inputs, tuple(e for _, _, e in cases)), len(asserts))
    return AssertPlan(None, len(asserts))


def _proxy(session):
    """The ``candidate`` the trusted test code sees: plain values in, plain values out."""

    def candidate(*args, **kwargs):
        try:
            rec = session.call(list(args), dict(kwargs))
        except codec.CodecError as e:
            raise _Unsafe(f"arguments are not plain data: {e}") from None
        k = rec.get("k")
        if k == "r" and "v" in rec:
            try:
                return codec._dec(rec["v"], 0)
            except codec.CodecError:
                raise _CandidateError(Status.FAIL, "malformed value") from None
        if k == "r":
            err = str(rec.get("err", ""))
            raise _CandidateError(
                Status.MEMORY if err.startswith("MemoryError") else Status.RUNTIME_ERROR, err
            )
        if k == "syntax":
            raise _CandidateError(Status.SYNTAX_ERROR, str(rec.get("err")))
        if k == "load_error":
            raise _CandidateError(Status.RUNTIME_ERROR, str(rec.get("err")))
        if k == "infra":
            raise _CandidateError(Status.INFRA_ERROR, str(rec.get("err")))
        why = rec.get("why", "")
        status = {"timeout": Status.TIMEOUT, "output_limit": Status.OUTPUT_LIMIT}.get(
            why, Status.RUNTIME_ERROR
        )
        raise _CandidateError(status, why)

    return candidate


def _run_one(fn) -> tuple[Status, str]:
    """Run a piece of trusted test code; map how it ended to a status."""
    try:
        fn()
        return Status.PASS, ""
    except _CandidateError as e:
        return e.status, str(e)
    except _Unsafe as e:
        return Status.INVALID, f"unsafe: {e}"
    except AssertionError:
        return Status.FAIL, "assertion failed"
    except NameError as e:
        return Status.INVALID, missing_name_reason(e)
    except Exception as e:  # noqa: BLE001 -- the values were wrong enough to break the test code
        return Status.FAIL, f"test raised {type(e).__name__}: {e}"[:300]


def missing_name_reason(e: NameError) -> str:
    """INVALID reason for test code that uses a name it does not define: what is missing and how to supply it."""
    name = getattr(e, "name", None) or str(e)
    return (
        f"the test code uses {name!r}, which neither it nor 'imports' defines (only the entry point is taken "
        f"from the solution, which runs sandboxed). Supply the code that defines {name!r} as 'imports' in the "
        "tests; for HumanEval, pass the problem's prompt as 'imports'"
    )


def run_harness(session, spec: AssertSpec) -> tuple[list[Status], str]:
    """Execute the dataset's test code in this (trusted) process against the proxied candidate."""
    candidate = _proxy(session)
    ns: dict = {"__name__": "__check__", spec.entry_point: candidate}
    tree = ast.parse(spec.code)
    try:
        if spec.imports.strip():
            exec(compile(spec.imports, "<imports>", "exec"), ns)
        if any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body):
            exec(compile(tree, "<tests>", "exec"), ns)
            ns[spec.entry_point] = candidate  # test code may shadow it; the proxy wins
            status, why = _run_one(lambda: ns["check"](candidate))
            return [status], why
    except Exception as e:  # noqa: BLE001 -- the test code itself is broken
        if isinstance(e, NameError):
            return [Status.INVALID], missing_name_reason(e)
        return [Status.INVALID], f"test code failed to load: {type(e).__name__}: {e}"[:300]
    statuses, whys = [], []
    for node in tree.body:
        mod = ast.Module(body=[node], type_ignores=[])
        code = compile(mod, "<tests>", "exec")
        if isinstance(node, ast.Assert):
            status, why = _run_one(lambda c=code: exec(c, ns))
            statuses.append(status)
            whys.append(why)
        else:
            status, why = _run_one(lambda c=code: exec(c, ns))
            if status != Status.PASS:
                return [status] * sum(isinstance(n, ast.Assert) for n in tree.body), f"setup: {why}"
    return statuses, "; ".join(w for w in whys if w)[:300]
