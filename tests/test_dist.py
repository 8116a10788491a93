"""What ./build.sh dist publishes: a complete sdist that says plainly when it cannot build,
and wheels that carry the project's license and those of every Go module compiled in."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
from distfiles import LINUX_ARCHES, VERSION, linux_wheel, sdist


def test_sdist_carries_what_a_build_needs_and_no_binary() -> None:
    with tarfile.open(sdist()) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in (
        "LICENSE",
        "build.sh",
        "setup.py",
        "pyproject.toml",
        "tools/licenses.py",
        "go/go.mod",
        "go/go.sum",
        "go/cmd/liboci/main.go",
        "go/registry/go.mod",
        "go/registry/go.sum",
        "go/registry/cmd/oci-registry/main.go",
        "src/oci_client/licenses/MODULES.txt",
        "src/oci_client/__init__.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.endswith((".so", ".dylib", ".a", "bin/oci-registry"))]
    assert not [n for n in names if "/testing/" in n or n.startswith("src/oci_client/testing")]


@pytest.mark.timeout(600)
def test_sdist_without_go_fails_with_one_clear_line(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    done = subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-deps",
            str(sdist()),
        ],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    # pip frames the backend's output between "[N lines of output]" and "[end of output]":
    # setuptools' "running build_py" lines, then the reason, as the last line.
    framed = output.split("lines of output]", 1)[1].split("[end of output]", 1)[0]
    lines = [line.strip() for line in framed.strip().splitlines() if line.strip()]
    assert len(lines) <= 4 and all(line.startswith("running ") for line in lines[:-1]), framed
    assert "needs Go (https://go.dev/dl/)" in lines[-1]
    assert "pip install --only-binary=oci-client oci-client" in lines[-1]


@pytest.mark.parametrize("arch", LINUX_ARCHES)
def test_wheel_has_licenses_of_every_go_module_it_contains(arch: str, tmp_path: Path) -> None:
    wheel = linux_wheel(arch)
    assert wheel.name.endswith(f"-py3-none-manylinux_2_17_{arch}.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        whl.extractall(tmp_path)
    assert f"oci_client-{VERSION}.dist-info/licenses/LICENSE" in names
    assert "Apache License" in (tmp_path / f"oci_client-{VERSION}.dist-info/licenses/LICENSE").read_text()
    assert not [n for n in names if n.startswith("oci_client/testing")]
    licenses = tmp_path / "oci_client" / "licenses"
    modules = set()
    for binary in (tmp_path / "oci_client" / "liboci.so", tmp_path / "oci_client" / "bin" / "oci-registry"):
        shown = subprocess.run(
            ["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True
        )
        fields = [line.split() for line in shown.stdout.splitlines()]
        main = next(f[1] for f in fields if f[:1] == ["mod"])
        # The module enclosing the binary's own is this project's (its license is above).
        modules |= {f[1] for f in fields if f[:1] == ["dep"] and not main.startswith(f[1] + "/")}
    assert len(modules) > 10
    for module in modules:
        folder = licenses / module
        texts = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
        assert texts, f"no license text for {module} in {wheel.name}"
    listed = (licenses / "MODULES.txt").read_text()
    assert all(module in listed for module in modules)


def test_test_tooling_is_not_in_the_installed_package() -> None:
    import oci_client

    assert not (Path(oci_client.__file__).parent / "testing").exists()
    assert "oci_client.testing" not in sys.modules
