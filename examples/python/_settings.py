"""``--set KEY=VALUE`` for the examples: task settings (the TOML ``[task]`` keys) passed
to ``gym.make`` / ``gym.make_vec``; values are JSON (``0.25``, ``"relative"``, ``[1, 2]``)
or plain strings."""

from __future__ import annotations

import json
from typing import Any


def parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
