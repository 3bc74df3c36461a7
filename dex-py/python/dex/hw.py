"""The real hand from Python: the LEAP Hand driver and the servo-bus emulator.

>>> from dex.hw import Emulator, LeapHand
>>> with Emulator() as emu, LeapHand(emu.path) as hand:   # doctest: +SKIP
...     hand.configure(); hand.enable()
...     q = hand.read_state()["q"]
...     hand.write_targets(q)

:class:`LeapHand` checks every target against the joint limits and a per-write step
limit before it reaches the bus (``ValueError`` when refused); torque goes off on
``disable()``, ``close()``, garbage collection and any bus error while enabled.
:class:`Emulator` serves 16 emulated XC330 servos on a pseudo-terminal (``physics="sim"``
moves a simulated LEAP Hand), so the same code runs without a hand.
"""

from dex._core import Emulator, LeapHand

__all__ = ["Emulator", "LeapHand"]
