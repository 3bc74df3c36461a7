"""The LEAP driver from Python over the emulated bus on a pseudo-terminal."""

from __future__ import annotations

import numpy as np
import pytest

from dex.hw import Emulator, LeapHand


def test_the_driver_moves_the_emulated_hand_and_refuses_unsafe_targets() -> None:
    with Emulator() as emu, LeapHand(emu.path, max_step=0.2) as hand:
        assert emu.path.startswith("/dev/")
        assert hand.state == "opened"
        hand.configure()
        hand.enable()
        q = hand.read_state()["q"]
        assert q.shape == (16,)
        goal = q.copy()
        goal[1] += 0.1
        hand.write_targets(goal)
        limits = hand.joint_limits()
        beyond = q.copy()
        beyond[1] = limits[1, 1] + 0.5
        with pytest.raises(ValueError):
            hand.write_targets(beyond)
        with pytest.raises(ValueError):
            hand.write_targets(np.full(16, np.nan))
        with pytest.raises(ValueError):
            hand.write_targets(np.zeros(3))
        assert hand.safety_events()["rejected"] >= 1
        hand.disable()
        assert hand.state == "disabled"
    with pytest.raises(ValueError, match="closed"):
        hand.read_state()
    assert not emu.running


def test_the_simulated_hand_behind_the_bus() -> None:
    with Emulator(physics="sim", object="cube") as emu, LeapHand(emu.path) as hand:
        hand.configure()
        hand.enable()
        assert np.isfinite(hand.read_state()["q"]).all()


def test_a_port_that_does_not_exist_is_an_os_error() -> None:
    with pytest.raises(OSError, match="no-such-port"):
        LeapHand("/dev/no-such-port")
    with pytest.raises(ValueError, match="physics"):
        Emulator(physics="quantum")
