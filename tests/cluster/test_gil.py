"""scribe.node.gil: the switch interval follows the number of requests in flight, with hysteresis."""

from __future__ import annotations

import sys
import threading

import pytest

from scribe.node.gil import SwitchIntervalByLoad


@pytest.fixture(autouse=True)
def restore_interval():
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_busy_from_the_threshold_and_quiet_again_at_half():
    tuner = SwitchIntervalByLoad(quiet_s=0.001, busy_s=0.005, busy_from=4)
    for _ in range(3):
        tuner.__enter__()
    assert (tuner.in_flight, tuner.busy) == (3, False)
    tuner.__enter__()
    assert (tuner.in_flight, tuner.busy) == (4, True)
    assert sys.getswitchinterval() == pytest.approx(0.005)
    tuner.__exit__(None, None, None)  # 3 in flight: still busy (hysteresis)
    assert tuner.busy
    assert sys.getswitchinterval() == pytest.approx(0.005)
    tuner.__exit__(None, None, None)  # 2, half the threshold: quiet
    assert not tuner.busy
    assert sys.getswitchinterval() == pytest.approx(0.001)
    tuner.__exit__(None, None, None)
    tuner.__exit__(None, None, None)
    assert tuner.in_flight == 0


def test_an_exception_in_the_block_still_counts_the_request_out():
    tuner = SwitchIntervalByLoad(quiet_s=0.001, busy_s=0.005, busy_from=2)
    with pytest.raises(TimeoutError), tuner:
        raise TimeoutError
    assert tuner.in_flight == 0


def test_concurrent_requests_go_busy_and_come_back_quiet():
    tuner = SwitchIntervalByLoad(quiet_s=0.001, busy_s=0.005, busy_from=8)
    seen_busy = []
    # The action runs once, when all 16 requests are in flight at the same time.
    inside = threading.Barrier(16, action=lambda: seen_busy.append(tuner.busy))

    def request() -> None:
        with tuner:
            inside.wait(10)
        for _ in range(200):
            with tuner:
                pass

    threads = [threading.Thread(target=request) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen_busy == [True]
    assert tuner.in_flight == 0 and not tuner.busy
    assert sys.getswitchinterval() == pytest.approx(0.001)


@pytest.mark.parametrize("args", [(0.005, 0.001, 4), (0.0, 0.005, 4), (0.001, 0.005, 1)])
def test_bad_settings_are_refused(args):
    with pytest.raises(ValueError):
        SwitchIntervalByLoad(*args)
