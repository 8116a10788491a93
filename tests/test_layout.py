"""Air-gapped sites: a model read from an OCI image layout (``oci-layout:/dir[:tag|@digest]``)
with no registry and no socket, the layout written by skopeo's ``oci:`` transport and by the
oras CLI's ``--to-oci-layout``; every byte verified as from a registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import peertools
import pytest
from modelfixtures import tree
from oci_testing import LocalRegistry, push_model

from oci_client import Client, DigestMismatchError, InvalidReferenceError, NotFoundError

pytestmark = pytest.mark.usefixtures("docker_config")

FILES = {
    "config.json": b'{"model_type": "layout"}',
    "tokenizer/vocab.txt": b"a\nb\n",
    "model.safetensors": b"L" * 300_000,
}


@pytest.fixture
def skopeo_layout(plain_registry: LocalRegistry, tmp_path: Path) -> tuple[Path, str]:
    """A layout skopeo copied the model into, tagged v1; and the model's manifest digest."""
    pushed = push_model(plain_registry, "layout/skopeo", "v1", FILES)
    layout = tmp_path / "skopeo-layout"
    subprocess.run(
        [
            peertools.skopeo(),
            "copy",
            "-q",
            "--src-tls-verify=false",
            f"docker://{pushed.reference}",
            f"oci:{layout}:v1",
        ],
        check=True,
    )
    return layout, pushed.digest


def test_a_model_pulls_from_a_layout_skopeo_wrote(skopeo_layout: tuple[Path, str], tmp_path: Path) -> None:
    layout, digest = skopeo_layout
    client = Client()
    r = client.pull(f"oci-layout:{layout}:v1", cache_dir=tmp_path / "cache")
    assert tree(r.path) == FILES
    assert r.digest == digest and r.reference == f"oci-layout:{layout}@{digest}"
    # By digest, into a local_dir, and by the pinned reference the pull gave.
    out = client.pull_model(
        f"oci-layout:{layout}@{digest}", cache_dir=tmp_path / "cache", local_dir=tmp_path / "out"
    )
    assert tree(out) == FILES and not (out / "config.json").is_symlink()
    assert client.pull(r.reference, cache_dir=tmp_path / "other").digest == digest
    info = client.inspect(f"oci-layout:{layout}:v1", cache_dir=tmp_path / "cache")
    assert {f.path for f in info.files} == set(FILES) and info.reference.startswith(f"oci-layout:{layout}")


def test_a_layout_of_one_manifest_needs_no_tag(skopeo_layout: tuple[Path, str], tmp_path: Path) -> None:
    layout, digest = skopeo_layout
    assert Client().pull(f"oci-layout:{layout}", cache_dir=tmp_path / "cache").digest == digest


def test_a_model_pulls_from_a_layout_the_oras_cli_wrote(
    plain_registry: LocalRegistry, tmp_path: Path
) -> None:
    pushed = push_model(plain_registry, "layout/oras", "v1", FILES)
    layout = tmp_path / "oras-layout"
    subprocess.run(
        [
            str(peertools.oras()),
            "cp",
            "--from-plain-http",
            pushed.reference,
            "--to-oci-layout",
            f"{layout}:v2",
        ],
        check=True,
        capture_output=True,
    )
    r = Client().pull(f"oci-layout:{layout}:v2", cache_dir=tmp_path / "cache", allow_patterns="*.json")
    assert tree(r.path) == {"config.json": FILES["config.json"]}
    assert r.digest == pushed.digest


def test_a_wrong_byte_in_a_layout_is_caught_and_nothing_is_placed(
    skopeo_layout: tuple[Path, str], tmp_path: Path
) -> None:
    layout, _ = skopeo_layout
    manifest_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest.split(":")[1]).read_text())
    weights = next(d for d in manifest["layers"] if d["size"] == len(FILES["model.safetensors"]))
    blob = layout / "blobs" / "sha256" / weights["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0xFF
    blob.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(DigestMismatchError):
        Client(retries=1).pull(f"oci-layout:{layout}:v1", cache_dir=tmp_path / "cache", local_dir=out)
    assert not (out / "model.safetensors").exists()


def test_what_a_layout_lacks_is_a_clear_error(skopeo_layout: tuple[Path, str], tmp_path: Path) -> None:
    layout, _ = skopeo_layout
    ref = f"oci-layout:{layout}:nope"
    with pytest.raises(NotFoundError) as caught:
        Client().pull(ref, cache_dir=tmp_path / "cache")
    # In the layout's terms: not the host name made up for it inside the library.
    assert str(caught.value) == f'{ref}: index.json names no manifest "nope"'
    assert caught.value.reference == ref and caught.value.url is None
    # A blob the layout lacks.
    for blob in (layout / "blobs" / "sha256").iterdir():
        if blob.stat().st_size == len(FILES["model.safetensors"]):
            blob.unlink()
    with pytest.raises(NotFoundError) as caught:
        Client(retries=1).pull(f"oci-layout:{layout}:v1", cache_dir=tmp_path / "cache")
    assert ".invalid" not in str(caught.value) and caught.value.url is None, caught.value
    assert str(caught.value).startswith(f"oci-layout:{layout}"), caught.value
    with pytest.raises(InvalidReferenceError, match="not an OCI image layout"):
        Client().pull(f"oci-layout:{tmp_path / 'absent'}:v1", cache_dir=tmp_path / "cache")


def test_an_exported_model_is_read_by_skopeo_oras_and_a_pull(
    plain_registry: LocalRegistry, tmp_path: Path
) -> None:
    pushed = push_model(plain_registry, "layout/export", "v1", FILES)
    layout = tmp_path / "exported"
    client = Client()
    r = client.export_model(pushed.reference, layout)
    assert (r.reference, r.digest, r.tag) == (f"oci-layout:{layout}:v1", pushed.digest, "v1")
    assert r.blobs == 5 and r.blobs_downloaded == 4  # 3 files and the config; the manifest
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    # Read back by a pull, by skopeo and by oras, each into a registry or a directory.
    assert tree(client.pull(r.reference, cache_dir=tmp_path / "cache").path) == FILES
    skopeo_ref = f"{plain_registry.host}/layout/from-skopeo:v1"
    subprocess.run(
        [
            peertools.skopeo(),
            "copy",
            "-q",
            "--dest-tls-verify=false",
            f"oci:{layout}:v1",
            f"docker://{skopeo_ref}",
        ],
        check=True,
    )
    oras_ref = f"{plain_registry.host}/layout/from-oras:v1"
    subprocess.run(
        [str(peertools.oras()), "cp", "--from-oci-layout", f"{layout}:v1", "--to-plain-http", oras_ref],
        check=True,
        capture_output=True,
    )
    for ref in (skopeo_ref, oras_ref):
        again = client.pull(ref, cache_dir=tmp_path / "cache2")
        assert again.digest == pushed.digest and tree(again.path) == FILES, ref
    # Again, under another tag: every blob is there and right, nothing is fetched.
    second = client.export_model(pushed.reference, layout, tag="stable")
    assert second.blobs_downloaded == 0 and second.reference == f"oci-layout:{layout}:stable"
    names = [
        m["annotations"]["org.opencontainers.image.ref.name"]
        for m in json.loads((layout / "index.json").read_text())["manifests"]
    ]
    assert sorted(names) == ["stable", "v1"]


def test_the_command_line_exports_and_prints_the_layout_reference(
    plain_registry: LocalRegistry, tmp_path: Path
) -> None:
    pushed = push_model(plain_registry, "layout/cli", "v1", FILES)
    layout = tmp_path / "cli-layout"
    done = subprocess.run(
        [sys.executable, "-m", "oci_client", "export", "-q", pushed.reference, str(layout)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"oci-layout:{layout}:v1"
    assert "5 blobs" in done.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "oci_client",
            "pull",
            "-q",
            f"oci-layout:{layout}:v1",
            "--cache-dir",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert tree(Path(done.stdout.strip())) == FILES
