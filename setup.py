"""Builds the Go shared library and the registry program into the package during `pip install`."""

import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

ROOT = Path(__file__).resolve().parent


class BuildGoThenPy(build_py):
    def run(self) -> None:
        subprocess.run([str(ROOT / "build.sh"), "wheel"], check=True, cwd=ROOT)
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
