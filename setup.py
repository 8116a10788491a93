"""Builds the Go shared library and the registry program into the package during `pip install`
from a source tree or the sdist (./build.sh wheel). A prebuilt wheel needs none of this."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

ROOT = Path(__file__).resolve().parent
WHEELS_HINT = (
    "or install a prebuilt wheel instead (pip install --only-binary=oci-client oci-client; "
    "Linux x86_64/aarch64 with glibc >= 2.17)"
)


def _missing_tools() -> list[str]:
    missing = []
    if not shutil.which("go"):
        missing.append("Go (https://go.dev/dl/)")
    cc = os.environ.get("CC", "").split()
    if not (shutil.which(cc[0]) if cc else shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        missing.append("a C compiler (cc) for cgo")
    return missing


class BuildGoThenPy(build_py):
    def run(self) -> None:
        # One clear last line instead of a traceback: pip prints the backend's output as is.
        missing = _missing_tools()
        if missing:
            sys.exit(f"error: building oci-client from source needs {' and '.join(missing)}; {WHEELS_HINT}")
        env = {**os.environ, "PYTHON": sys.executable}
        done = subprocess.run(["bash", str(ROOT / "build.sh"), "wheel"], cwd=ROOT, env=env, check=False)
        if done.returncode != 0:
            sys.exit(f"error: ./build.sh wheel failed (exit {done.returncode}, its reason is above); {WHEELS_HINT}")
        super().run()


class PlatformWheel(bdist_wheel):
    # The wheel holds a native library for one OS and CPU, but no CPython
    # extension: any Python 3 on that platform can load it through ctypes.
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={"build_py": BuildGoThenPy, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
