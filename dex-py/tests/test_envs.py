"""The Gymnasium environments: registration, check_env, settings, errors, determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dex


@pytest.mark.parametrize("env_id", sorted(dex.ENV_IDS))
def test_check_env_passes(env_id: str) -> None:
    render_mode = None if env_id == "dex/AnyposeProxy-v0" else "rgb_array"
    env = gym.make(env_id, render_mode=render_mode)
    check_env(env.unwrapped)
    env.close()


def test_every_dex_task_has_an_id() -> None:
    assert sorted(dex.ENV_IDS.values()) == sorted(dex.TASK_NAMES)


def test_settings_are_keyword_arguments_with_the_toml_keys() -> None:
    env = gym.make("dex/Reach-v0", hand="allegro", episode_steps=3, randomization={"observation_noise": 0.0})
    assert env.unwrapped.hand == "allegro"
    assert env.action_space.shape == (16,)
    env.reset(seed=0)
    a = np.zeros(16, np.float32)
    flags = [env.step(a)[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_an_unknown_setting_names_itself() -> None:
    with pytest.raises(ValueError, match="episode_stepz"):
        gym.make("dex/Reach-v0", episode_stepz=3)
    with pytest.raises(ValueError, match="no_such_task"):
        dex.DexEnv("no_such_task")
    with pytest.raises(ValueError, match="hand"):
        dex.DexEnv("reach", hand="no-such-hand")


def test_bad_actions_raise_and_change_nothing() -> None:
    env = dex.DexEnv("reach")
    env.reset(seed=1)
    digest = env.state_digest()
    for bad in (np.zeros(15), np.full(16, np.nan), np.full(16, 2.0), np.zeros((2, 8))):
        with pytest.raises(ValueError):
            env.step(bad)
    assert env.state_digest() == digest
    env.step(np.zeros(16))  # still steps


def test_stepping_before_reset_is_an_error() -> None:
    with pytest.raises(ValueError, match="reset"):
        dex.DexEnv("reach").step(np.zeros(16))


def test_same_seed_same_episode() -> None:
    def run(seed: int) -> list[np.ndarray]:
        env = dex.DexEnv("rotate")
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(5)
        out = [obs]
        for _ in range(5):
            out.append(env.step(rng.uniform(-1, 1, 16).astype(np.float32))[0])
        return out

    a, b, c = run(3), run(3), run(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_render_gives_the_grey_camera_image() -> None:
    env = gym.make("dex/Rotate-v0", render_mode="rgb_array", render_size=(64, 48))
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert np.array_equal(image[..., 0], image[..., 1])
    assert image.std() > 1.0  # a scene, not a blank frame


def test_depth_tasks_observe_a_dict() -> None:
    env = gym.make("dex/ReachDepth-v0")
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"state", "depth"}
    assert obs["depth"].shape == env.observation_space["depth"].shape
    assert obs["depth"].max() > 0.0


def test_the_scene_gives_links_objects_and_joints() -> None:
    env = dex.DexEnv("rotate")
    env.reset(seed=0)
    a = np.full(16, 0.2, np.float32)
    env.step(a)
    scene = env.scene()
    hand = dex.HandModel.load("leap")
    assert scene["link_names"] == hand.link_names
    assert scene["link_poses"].shape == (len(hand.link_names), 4, 4)
    assert scene["object_poses"].shape == (1, 4, 4)
    assert np.allclose(scene["object_poses"][0, 3], [0, 0, 0, 1])
    assert scene["q"].shape == scene["targets"].shape == (16,)
    assert scene["time"] > 0.0
    # The fingertips are where forward kinematics puts them from the measured joints,
    # moved by the palm's pose in the world (the root link's).
    root = scene["link_poses"][0]
    tips = hand.fingertip_positions(scene["q"]) @ root[:3, :3].T + root[:3, 3]
    assert np.allclose(tips, scene["fingertips"], atol=1e-6)
    with pytest.raises(ValueError, match="no simulator"):
        dex.DexEnv("anypose-proxy").scene()


def test_object_shapes_and_the_render_camera() -> None:
    env = gym.make("dex/Rotate-v0", render_mode="rgb_array").unwrapped
    env.reset(seed=0)
    [cube] = env._core.object_shapes()
    assert cube["kind"] == "box"
    assert len(set(cube["half_size"])) == 1  # a cube
    assert gym.make("dex/Reach-v0").unwrapped._core.object_shapes() == []
    cam = env._core.camera(64, 48)
    assert (cam["width"], cam["height"]) == (64, 48)
    pose = cam["pose"]
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
    # The camera looks at the fingertips' mean: it lies ahead, along the camera's z axis.
    tips = env.scene()["fingertips"].mean(axis=0)
    to_tips = tips - pose[:3, 3]
    assert np.dot(to_tips / np.linalg.norm(to_tips), pose[:3, 2]) > 0.999
