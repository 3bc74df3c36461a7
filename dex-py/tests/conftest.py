"""Shared fixtures: the repository root and the `dex` binary (from `DEX_BIN`, or the
release build in the workspace's target directory)."""

from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root() -> pathlib.Path:
    return ROOT


@pytest.fixture(scope="session")
def dex_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("DEX_BIN", ROOT / "target" / "release" / "dex"))
    if not path.is_file():
        pytest.fail(f"the dex binary is missing at {path}: run `cargo build --release -p dex-cli` or set DEX_BIN")
    return path


@pytest.fixture(scope="session")
def reach_student(root: pathlib.Path) -> pathlib.Path:
    return root / "dex-cli" / "assets" / "reach-student"
