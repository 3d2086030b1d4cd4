"""`measure_peak` (CPU): the resident high-water mark over one call, reset before it."""

import torch

from selfdistill.kernels.measure import measure_peak

MB = 2**20


def _touch(mib: int) -> float:
    x = torch.ones(mib * MB // 4)  # float32, every page written
    return float(x[::4096].sum())


def test_transient_allocation_is_in_the_peak_not_after():
    out, mem = measure_peak(lambda: _touch(256), "cpu")
    assert out == 256 * MB // 4 // 4096
    assert 250 * MB <= mem.increase < 400 * MB  # the buffer (freed before the call returned) is in the peak
    assert mem.peak >= mem.base > 0


def test_an_earlier_peak_does_not_leak_into_the_next_call():
    _touch(512)  # a high-water mark before the measured call
    _, mem = measure_peak(lambda: _touch(64), "cpu")
    assert 60 * MB <= mem.increase < 200 * MB
