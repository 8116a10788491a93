"""Fixtures for the tests that run inside a vLLM environment (.ci/vllm-envs): the built-in
registry, and a small real model published to it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: faultproxy

from oci_client.server import Registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("registry")) as r:
        yield r


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"
