"""Sandbox pieces: the plain-data codec, config validation, layer probing and canaries, sessions."""

import math

import pytest

from rewards.sandbox import Sandbox, SandboxConfig, codec, probe
from rewards.sandbox.client import SandboxUnavailable
from rewards.sandbox.config import Limits


def test_codec_round_trip_keeps_types():
    value = [
        1,
        True,
        None,
        1.5,
        math.inf,
        "s",
        b"\x00b",
        (1, (2,)),
        {3, 4},
        frozenset({5}),
        {1: "a", (2,): [3]},
    ]
    back = codec.decode(codec.encode(value))
    assert back == value and type(back[7]) is tuple and type(back[1]) is bool and type(back[10]) is dict
    assert math.isnan(codec.decode(codec.encode(math.nan)))


@pytest.mark.parametrize("bad", [type("S", (str,), {})("x"), object(), lambda: 1, 2**5000])
def test_codec_rejects_non_plain(bad):
    with pytest.raises(codec.CodecError):
        codec.encode(bad)


@pytest.mark.parametrize("text", ['{"$x": 1}', "[" * 10000 + "]" * 10000, "{nope", '{"$d": [[[1], 2]]}'])
def test_codec_decode_hostile_text(text):
    with pytest.raises(codec.CodecError):
        codec.decode(text)


def test_config_errors_name_the_choices():
    with pytest.raises(ValueError, match="choose from: process, landlock"):
        Sandbox(SandboxConfig(layers=("seccomp", "bogus")))
    with pytest.raises(ValueError, match="unsafe=True"):
        Sandbox(SandboxConfig(layers=("seccomp",), unsafe=True))


def test_missing_layer_refuses_to_start(monkeypatch):
    monkeypatch.setitem(probe._CHECKS, "landlock", (lambda: False, "pretend the kernel lacks it"))
    with pytest.raises(SandboxUnavailable, match="landlock: pretend the kernel lacks it"):
        Sandbox(SandboxConfig(layers=("landlock",), workers=1))


def test_canaries_pass_for_every_active_layer_and_unsafe_mode():
    sb = Sandbox(SandboxConfig(workers=1))
    try:
        assert {c.layer for c in sb.canary_report} == set(sb.layers)
        assert all(c.ok for c in sb.canary_report), sb.canary_report
    finally:
        sb.close()
    unsafe = Sandbox(SandboxConfig(workers=1, unsafe=True))
    try:
        assert unsafe.layers == ("process",) and unsafe.canary_report == []
    finally:
        unsafe.close()


def test_session_calls_and_timeout():
    sb = Sandbox(SandboxConfig(workers=1, canaries=False, limits=Limits(test_timeout_s=0.5)))
    try:
        with sb.session(
            "import time\ndef f(x):\n    if x == -1:\n        time.sleep(10)\n    return x * 2", "f"
        ) as s:
            assert s.call([2], {})["v"] == 4
            assert s.call(["ab"], {})["v"] == "abab"
            assert s.call([-1], {}) == {"k": "dead", "why": "timeout"}
            assert s.call([1], {})["k"] == "dead"
        assert s.result.timeout
    finally:
        sb.close()


def test_dead_zygote_is_restarted():
    sb = Sandbox(SandboxConfig(workers=1, canaries=False))
    try:
        sb._proc.kill()
        sb._proc.wait()
        job = {"mode": "call", "code": "def f():\n    return 1", "fn_name": "f", "cases": [[[], {"$d": []}]]}
        [first] = sb.run([job])
        assert first.infra  # reported, never a verdict
        [second] = sb.run([job])
        assert second.infra is None and second.records[-1]["v"] == 1
    finally:
        sb.close()
