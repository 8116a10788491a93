"""Layer file names never lead outside the target directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from oci_client import InvalidArgumentError
from oci_client.paths import layer_file_name, safe_join


@pytest.mark.parametrize("name", ["model.safetensors", "sub/dir/x.bin", "a..b", ".hidden"])
def test_inside(tmp_path: Path, name: str) -> None:
    assert safe_join(tmp_path, name) == (tmp_path / name).resolve()


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../x", "a/../../x", "a\\..\\x", "nul\x00byte", "."])
def test_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        safe_join(tmp_path, name)


def test_symlink_out_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(InvalidArgumentError):
        safe_join(root, "link/file")


def test_layer_file_name() -> None:
    d = "sha256:" + "a" * 64
    assert (
        layer_file_name({"digest": d, "annotations": {"org.cncf.model.filepath": "w/x.gguf"}}) == "w/x.gguf"
    )
    assert layer_file_name({"digest": d, "annotations": {"org.opencontainers.image.title": "t"}}) == "t"
    assert layer_file_name({"digest": d}) == "sha256-" + "a" * 64
