"""HandModel from Python: forward kinematics and Jacobians against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import dex


def test_forward_kinematics_and_fingertips_agree() -> None:
    hand = dex.HandModel.load("leap")
    assert hand.dof == 16 and len(hand.joint_names) == 16
    q = hand.mid_configuration()
    poses = hand.forward_kinematics(q)
    assert poses.shape == (len(hand.link_names), 4, 4)
    assert np.allclose(poses[:, 3], [0, 0, 0, 1])
    tips = hand.fingertip_positions(q)
    assert tips.shape == (len(hand.fingertip_names), 3)
    batch = hand.forward_kinematics_batch(np.stack([q, q]))
    assert np.array_equal(batch[1], poses)


def test_fingertip_jacobians_match_finite_differences() -> None:
    hand = dex.HandModel.load("allegro")
    rng = np.random.default_rng(0)
    limits = hand.joint_limits()
    q = rng.uniform(limits[:, 0] + 0.1, limits[:, 1] - 0.1)
    jac = hand.fingertip_jacobians(q)
    eps = 1e-6
    for j in range(hand.dof):
        dq = np.zeros(hand.dof)
        dq[j] = eps
        fd = (hand.fingertip_positions(q + dq) - hand.fingertip_positions(q - dq)) / (2 * eps)
        assert np.allclose(jac[:, :3, j], fd, atol=1e-6)


def test_bad_configurations_raise() -> None:
    hand = dex.HandModel.load("leap")
    with pytest.raises(ValueError, match="16"):
        hand.forward_kinematics(np.zeros(3))
    with pytest.raises(ValueError):
        hand.forward_kinematics(np.full(16, np.nan))
    with pytest.raises(ValueError, match="no_link"):
        hand.jacobian(np.zeros(16), "no_link")
    with pytest.raises(ValueError):
        dex.HandModel.load("no-such-hand")


def test_collision_shapes_are_the_links_primitives() -> None:
    hand = dex.HandModel.load("leap")
    shapes = hand.collision_shapes()
    assert len(shapes) == len(hand.link_names)
    kinds = {s["kind"] for link in shapes for s in link}
    assert kinds <= {"box", "sphere", "capsule", "cylinder"}
    assert "capsule" in kinds  # the LEAP fingertips
    for link in shapes:
        for s in link:
            if s["kind"] == "box":
                assert min(s["half_size"]) > 0
                assert abs(np.linalg.norm(s["rotation"]) - 1) < 1e-6
            if s["kind"] == "capsule":
                assert np.linalg.norm(np.subtract(s["end"], s["start"])) > 0
                assert s["radius"] > 0
