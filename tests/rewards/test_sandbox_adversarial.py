"""The adversarial suite: every hostile program, with each isolation layer on and off.

For each (program, layer set) we check the five promises of issue 4 -- the trainer lives, no
file outside the job dir changes, no parent secret is readable, nothing is left running, the
verdict is never PASS -- and that the attack itself (``ESCAPED:...``) failed. When a program's
``needs`` are all switched off, the attack may succeed (that is what the matrix shows); the
judge-level promises (never PASS, trainer alive, nothing left running after cleanup) must
still hold, except where we record a breach the missing layers were supposed to stop.

Fast run: every program under the full layer set, plus a few under the bare process layer.
``-m slow``: the whole matrix (each layer off in turn, and process-only).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from rewards.code import judge
from rewards.common import Status
from rewards.sandbox import probe
from rewards.sandbox.client import Sandbox
from rewards.sandbox.config import OPTIONAL_LAYERS, Limits, SandboxConfig

_spec = importlib.util.spec_from_file_location(
    "adv_programs", pathlib.Path(__file__).parent / "adversarial" / "programs.py"
)
programs = importlib.util.module_from_spec(_spec)
sys.modules["adv_programs"] = programs
_spec.loader.exec_module(programs)

AVAILABLE = tuple(x for x, ok in probe.available_layers().items() if ok and x != "process")
LIMITS = Limits(test_timeout_s=0.5, load_timeout_s=1.0, memory_mb=512)
EXPECTED = (7932, 15851)  # f(1), f(2) = k*7919 + 13
CASES = [[[k], {"$d": []}] for k in (1, 2)]
BY_NAME = {p.name: p for p in programs.PROGRAMS}


class World:
    """What a hostile program may aim at: files, a secret, a decoy process, listeners."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="selfdistill-adv-")
        os.chmod(self.dir, 0o755)
        os.makedirs(f"{self.dir}/home")
        pathlib.Path(f"{self.dir}/home/keep").write_text("keep")
        self.secret = "S3CRET-" + secrets.token_hex(8)
        os.environ["SELFDISTILL_ADV_SECRET"] = self.secret  # the trainer's environment
        self.secret_file = f"{self.dir}/secret"
        pathlib.Path(self.secret_file).write_text(self.secret)
        os.chmod(self.secret_file, 0o600)
        self.shared_tmp = os.path.join(tempfile.gettempdir(), f"selfdistill-adv-cache-{secrets.token_hex(4)}")
        self.decoy = subprocess.Popen(["sleep", "600"])
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.unix_path = f"{self.dir}/sock"
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        self.unix.listen()
        os.chmod(self.unix_path, 0o755)
        self.snapshot = self._files()

    def _files(self) -> dict[str, bytes]:
        out = {}
        for p in pathlib.Path(self.dir).rglob("*"):
            out[str(p)] = p.read_bytes() if p.is_file() else b"<dir>"
        return out

    def fill(self, code: str) -> str:
        subs = {
            "TARGET_DIR": self.dir,
            "SECRET_FILE": self.secret_file,
            "TRAINER_PID": str(os.getpid()),
            "DECOY_PID": str(self.decoy.pid),
            "PORT": str(self.tcp.getsockname()[1]),
            "UNIX_SOCK": self.unix_path,
            "SHARED_TMP": self.shared_tmp,
            "SECRET": self.secret,
        }
        for k, v in subs.items():
            code = code.replace(f"@@{k}@@", v)
        return code

    def damage(self) -> list[str]:
        """Changes outside the job dir since the snapshot (then restored for the next program)."""
        now, out = self._files(), []
        if now != self.snapshot:
            out.append("files changed: " + ", ".join(sorted(set(now) ^ set(self.snapshot)) or ["contents"]))
        if os.path.exists(self.shared_tmp):
            out.append("shared /tmp written")
            os.unlink(self.shared_tmp)
        if self.decoy.poll() is not None:
            out.append("decoy killed")
            self.decoy = subprocess.Popen(["sleep", "600"])
        for p in set(now) - set(self.snapshot):
            pathlib.Path(p).unlink(missing_ok=True)
        if not os.path.exists(f"{self.dir}/home/keep"):
            os.makedirs(f"{self.dir}/home", exist_ok=True)
            pathlib.Path(f"{self.dir}/home/keep").write_text("keep")
        self.snapshot = self._files()
        return out

    def close(self):
        self.decoy.kill()
        self.decoy.wait()
        self.tcp.close()
        self.unix.close()
        subprocess.run(["rm", "-rf", self.dir], check=False)


def leftovers(sb: Sandbox) -> list[int]:
    """Processes carrying this sandbox's token, other than the zygote itself."""
    zygote = sb.zygote_info["pid"] if sb._proc else -1
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (zygote, os.getpid()):
            continue
        try:
            if sb.token.encode() in pathlib.Path(f"/proc/{name}/environ").read_bytes():
                found.append(int(name))
        except OSError:
            pass
    return found


def run_one(sb: Sandbox, world: World, prog) -> dict:
    job = {"mode": "call", "code": world.fill(prog.code), "fn_name": "f", "cases": CASES}
    [res] = sb.run([job], limits=LIMITS)
    if res.infra:  # the reward retries infra errors once
        [res] = sb.run([job], limits=LIMITS)
    statuses, _ = judge.judge_call(res, EXPECTED)
    status = judge.overall(statuses)
    text = repr(res.records) + res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")
    time.sleep(0.05)
    left = leftovers(sb)
    for pid in left:  # clean up what an unconfined program left, after recording it
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return {
        "status": status,
        "escaped": "ESCAPED:" in text,
        "secret": world.secret in text,
        "damage": world.damage(),
        "leftovers": left,
        "infra": res.infra,
    }


@pytest.fixture(scope="module")
def world():
    w = World()
    yield w
    w.close()


_SANDBOXES: dict[tuple, Sandbox] = {}


def sandbox_for(layers: tuple[str, ...]) -> Sandbox:
    if layers not in _SANDBOXES:
        _SANDBOXES[layers] = Sandbox(SandboxConfig(workers=1, layers=layers, canaries=False, limits=LIMITS))
    return _SANDBOXES[layers]


@pytest.fixture(scope="module", autouse=True)
def _close_sandboxes():
    yield
    for sb in _SANDBOXES.values():
        sb.close()
    _SANDBOXES.clear()


def check(prog, layers: tuple[str, ...], world: World) -> dict:
    sb = sandbox_for(layers)
    out = run_one(sb, world, prog)
    assert out["status"] != Status.PASS, out
    assert os.getpid() and threading.main_thread().is_alive()
    contained = not prog.needs or bool(prog.needs & set(layers))
    if contained:
        assert not out["escaped"], (prog.name, layers, out)
        assert not out["secret"], (prog.name, layers, out)
        assert not out["damage"], (prog.name, layers, out)
        assert not out["leftovers"], (prog.name, layers, out)
    # the sandbox keeps working after every hostile program
    [res] = sb.run(
        [{"mode": "call", "code": "def f(x):\n    return x*7919+13", "fn_name": "f", "cases": CASES}],
        limits=LIMITS,
    )
    assert judge.overall(judge.judge_call(res, EXPECTED)[0]) == Status.PASS
    return out


def _params(configs, names=None):
    out = []
    for label, layers in configs:
        for p in programs.PROGRAMS:
            if names is not None and p.name not in names:
                continue
            marks = []
            if p.dangerous and not (p.needs & set(layers)):
                marks.append(pytest.mark.skip(reason="would harm the machine with none of its layers on"))
            out.append(pytest.param(p, layers, id=f"{label}-{p.name}", marks=marks))
    return out


FULL = ("full", AVAILABLE)
FAST_BARE = {
    "dump_env",
    "always_equal",
    "frame_walk",
    "memory_bomb",
    "stdout_flood",
    "exit_early",
    "forge_output",
    "infinite_loop",
}


@pytest.mark.parametrize("prog,layers", _params([FULL]))
def test_full_layers_contain_everything(prog, layers, world):
    check(prog, layers, world)


@pytest.mark.parametrize("prog,layers", _params([("bare", ())], FAST_BARE))
def test_judge_alone_holds_without_layers(prog, layers, world):
    check(prog, layers, world)


ABLATIONS = [(f"no-{x}", tuple(y for y in AVAILABLE if y != x)) for x in AVAILABLE] + [("bare", ())]


@pytest.mark.slow
@pytest.mark.parametrize("prog,layers", _params(ABLATIONS))
def test_layer_matrix(prog, layers, world):
    out = check(prog, layers, world)
    if not (prog.needs & set(layers)) and prog.needs:
        print(f"\n{prog.name} without {sorted(prog.needs)}: {out}")


def test_program_list_covers_the_note():
    covered = {p.note for p in programs.PROGRAMS if p.note}
    assert set(range(1, 33)) - covered <= {26}  # 26 (hidden tests) holds by construction
    assert len(programs.PROGRAMS) >= 40
    assert all(n in OPTIONAL_LAYERS for p in programs.PROGRAMS for n in p.needs)
