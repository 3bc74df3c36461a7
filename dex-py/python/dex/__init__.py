"""dex for Python: dexterous robot hands, from simulation to the real LEAP Hand.

``import dex`` registers the Gymnasium environments (``dex/Reach-v0``,
``dex/Rotate-v0``, ...; see :data:`dex.ENV_IDS`), each with a native vector
environment for ``gym.make_vec(..., vectorization_mode="vector_entry_point")``.

The rest of the package:

* :class:`HandModel`: hand models, forward kinematics and Jacobians as numpy arrays;
* :class:`Policy`: any checkpoint written by ``dex train``, acting on numpy observations;
* :mod:`dex.hw`: the LEAP Hand driver (:class:`LeapHand`) and the servo-bus
  emulator (:class:`Emulator`);
* :mod:`dex.sb3`: Stable-Baselines3's ``VecEnv`` over the native batch;
* :mod:`dex.lerobot` and ``python -m dex.record``: LeRobot v3 datasets.

Errors from Rust arrive as ``ValueError`` (bad input), ``OSError`` (files, ports) or
:class:`DexError` (anything else), with the Rust error's message.
"""

from __future__ import annotations

from dex._core import (
    TASK_NAMES,
    DexError,
    HandModel,
    Policy,
    __version__,
)
from dex.envs import ENV_IDS, DexEnv, DexVectorEnv, make_env, register_envs

register_envs()

__all__ = [
    "DexEnv",
    "DexError",
    "DexVectorEnv",
    "ENV_IDS",
    "HandModel",
    "Policy",
    "TASK_NAMES",
    "__version__",
    "make_env",
    "register_envs",
]
