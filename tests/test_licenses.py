"""tools/licenses.py: the license texts of every Go module compiled into liboci and oci-registry,
read from the binaries (`go version -m`); a module without one fails the build."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "licenses.py"


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oci_licenses_tool", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:  # mypy, from the repository root
    from tools import licenses as lic
else:
    lic = _load_tool()

# `go version -m` of a program with a module replacement and a local-directory one (go1.26),
# tabs and the blank line after each replacement included.
GO_VERSION_M = (
    "/tmp/rep: go1.26.8\n"
    "\tpath\texample.com/rep\n"
    "\tmod\texample.com/rep\t(devel)\t\n"
    "\tdep\texample.com/local\tv0.0.0\n"
    "\t=>\t./local\t(devel)\t\n"
    "\t\n"
    "\tdep\tgithub.com/google/uuid\tv1.6.0\n"
    "\t=>\tgithub.com/google/uuid\tv1.5.0\th1:1p67kYwdtXjb0gL0BPiP1Av9wiZPo5A8z2cWkTZ+eyU=\n"
    "\t\n"
    "\tdep\tgolang.org/x/sys\tv0.49.0\th1:XbzkgYJHdqh/8m2Uu0W/dQv8nktxx4BFHp1M0gROTXA=\n"
    "\tbuild\t-buildmode=c-shared\n"
    "\tbuild\t-compiler=gc\n"
    "\tbuild\tCGO_ENABLED=1\n"
    "\tbuild\tGOARCH=amd64\n"
    "\tbuild\tGOOS=linux\n"
)

APACHE = b"Apache License\nVersion 2.0, January 2004\n"


def test_parse_go_version_m() -> None:
    info = lic.parse_buildinfo(GO_VERSION_M)
    assert info.go_version == "go1.26.8"
    assert info.main == "example.com/rep"
    assert [(m.path, m.version, m.source_path, m.source_version, m.sum) for m in info.deps] == [
        ("example.com/local", "v0.0.0", "./local", "(devel)", ""),
        (
            "github.com/google/uuid",
            "v1.6.0",
            "github.com/google/uuid",
            "v1.5.0",
            "h1:1p67kYwdtXjb0gL0BPiP1Av9wiZPo5A8z2cWkTZ+eyU=",
        ),
        (
            "golang.org/x/sys",
            "v0.49.0",
            "golang.org/x/sys",
            "v0.49.0",
            "h1:XbzkgYJHdqh/8m2Uu0W/dQv8nktxx4BFHp1M0gROTXA=",
        ),
    ]
    assert [m.replaced for m in info.deps] == [True, True, False]


def test_parse_rejects_other_output() -> None:
    with pytest.raises(lic.LicenseError):
        lic.parse_buildinfo("")


def _tree(root: Path, files: Mapping[str, bytes]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    return root


def test_license_files_picks_the_license_names(tmp_path: Path) -> None:
    module = _tree(
        tmp_path,
        {
            "License.md": b"MIT",
            "COPYING": b"BSD",
            "NOTICE.txt": b"notice",
            "PATENTS": b"patents",
            "licence-docs": b"CC",
            "license.go": b"package m",  # a Go file, not a license
            "README.md": b"readme",
            "LICENSES/Apache-2.0.txt": b"in a directory: not at the root",
            "zstd/internal/xxhash/LICENSE.txt": b"vendored code's own",
            "zstd/internal/xxhash/xxhash.go": b"package xxhash",
            "zstd/internal/xxhash/testdata/LICENSE": b"never compiled",
            "docs/theme/LICENSE": b"no Go package here",
        },
    )
    assert lic.license_files(module) == {
        "COPYING": b"BSD",
        "License.md": b"MIT",
        "NOTICE.txt": b"notice",
        "PATENTS": b"patents",
        "licence-docs": b"CC",
        "zstd/internal/xxhash/LICENSE.txt": b"vendored code's own",
    }
    assert set(lic.license_files(module, nested=False)) == {
        "COPYING",
        "License.md",
        "NOTICE.txt",
        "PATENTS",
        "licence-docs",
    }


def _fixed(dirs: Mapping[str, Path]) -> lic.Resolver:
    """A resolver that maps module path@version (the source's) to a prepared directory."""

    def resolve(modules: Sequence[lic.Module]) -> dict[lic.Module, Path | str]:
        return {
            m: dirs.get(f"{m.source_path}@{m.source_version}", "not in the fake module cache")
            for m in modules
        }

    return resolve


def _info(deps: Sequence[tuple[str, str]]) -> lic.BuildInfo:
    return lic.BuildInfo("go1.26.8", "example.com/main", tuple(lic.Module(p, v, p, v) for p, v in deps))


def test_module_without_license_fails_and_is_named(tmp_path: Path) -> None:
    good = _tree(tmp_path / "good", {"LICENSE": APACHE, "good.go": b"package good"})
    # A NOTICE and a license deeper down are not the module's own license.
    bad = _tree(
        tmp_path / "bad",
        {"NOTICE": b"notice", "README.md": b"x", "sub/LICENSE": b"y", "sub/s.go": b"package sub"},
    )
    goroot = _tree(tmp_path / "goroot", {"LICENSE": b"The Go Authors", "PATENTS": b"Google"})
    resolve = _fixed(
        {"example.com/good@v1.0.0": good, "example.com/bad@v0.3.0": bad, "golang.org/go@go1.26.8": goroot}
    )
    out = tmp_path / "out"
    builds = {"liboci.so": _info([("example.com/good", "v1.0.0"), ("example.com/bad", "v0.3.0")])}

    problems = lic.generate(builds, out, resolve)

    assert len(problems) == 1
    assert problems[0].startswith("example.com/bad v0.3.0: no LICENSE/LICENCE/COPYING file")
    assert "only NOTICE, sub/LICENSE" in problems[0]
    assert not out.exists()

    # The same build with the license in place writes everything.
    (bad / "LICENSE").write_bytes(b"MIT")
    assert lic.generate(builds, out, resolve) == []
    assert (out / "example.com/bad/LICENSE").read_bytes() == b"MIT"
    assert (out / "example.com/bad/sub/LICENSE").read_bytes() == b"y"
    assert (out / "golang.org/go/PATENTS").read_bytes() == b"Google"


def test_unresolved_module_fails(tmp_path: Path) -> None:
    goroot = _tree(tmp_path / "goroot", {"LICENSE": b"The Go Authors"})
    problems = lic.generate(
        {"oci-registry": _info([("example.com/gone", "v1.0.0")])},
        tmp_path / "out",
        _fixed({"golang.org/go@go1.26.8": goroot}),
    )
    assert problems == ["example.com/gone v1.0.0: not in the fake module cache"]
    assert not (tmp_path / "out").exists()


def test_two_versions_of_a_module(tmp_path: Path) -> None:
    """Two binaries, two versions of a module: one directory when their texts agree, one each
    (path@version) when they differ; MODULES.txt says which binary has which."""
    goroot = _tree(tmp_path / "goroot", {"LICENSE": b"The Go Authors"})
    dirs = {
        "golang.org/go@go1.26.8": goroot,
        "example.com/same@v1.0.0": _tree(tmp_path / "s1", {"LICENSE": APACHE}),
        "example.com/same@v1.1.0": _tree(tmp_path / "s2", {"LICENSE": APACHE}),
        "example.com/diff@v1.0.0": _tree(tmp_path / "d1", {"LICENSE": b"MIT"}),
        "example.com/diff@v2.0.0": _tree(tmp_path / "d2", {"LICENSE": b"BSD"}),
    }
    builds = {
        "liboci.so": _info([("example.com/same", "v1.0.0"), ("example.com/diff", "v1.0.0")]),
        "oci-registry": _info([("example.com/same", "v1.1.0"), ("example.com/diff", "v2.0.0")]),
    }
    out = tmp_path / "out"
    assert lic.generate(builds, out, _fixed(dirs)) == []
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        "MODULES.txt",
        "example.com/diff@v1.0.0/LICENSE",
        "example.com/diff@v2.0.0/LICENSE",
        "example.com/same/LICENSE",
        "golang.org/go/LICENSE",
    ]
    assert (out / "MODULES.txt").read_text().splitlines()[1:] == [
        "example.com/diff v1.0.0 liboci.so example.com/diff@v1.0.0/LICENSE",
        "example.com/diff v2.0.0 oci-registry example.com/diff@v2.0.0/LICENSE",
        "example.com/same v1.0.0 liboci.so example.com/same/LICENSE",
        "example.com/same v1.1.0 oci-registry example.com/same/LICENSE",
        "golang.org/go go1.26.8 liboci.so,oci-registry golang.org/go/LICENSE",
    ]


def test_the_projects_own_module_in_another_binary_is_no_dependency(tmp_path: Path) -> None:
    """The registry links the library's packages through a local replacement (go/registry's
    go.mod: ``=> ../``), which no module cache holds: it is this project's code, not listed."""
    goroot = _tree(tmp_path / "goroot", {"LICENSE": b"The Go Authors"})
    own = lic.Module("example.com/lib", "v0.0.0-00010101000000-000000000000", "../", "(devel)")
    builds = {
        "liboci.so": lic.BuildInfo("go1.26.8", "example.com/lib", ()),
        "oci-registry": lic.BuildInfo("go1.26.8", "example.com/lib/registry", (own,)),
    }
    out = tmp_path / "out"
    assert lic.generate(builds, out, _fixed({"golang.org/go@go1.26.8": goroot})) == []
    assert "example.com/lib" not in (out / "MODULES.txt").read_text()
    # A local replacement of any other module is a dependency like the rest: it must be found.
    other = lic.Module("example.com/other", "v0.0.0", "../other", "(devel)")
    alone = {"oci-registry": lic.BuildInfo("go1.26.8", "example.com/lib/registry", (other,))}
    assert lic.generate(alone, tmp_path / "alone", _fixed({"golang.org/go@go1.26.8": goroot})) != []


def test_does_not_replace_a_foreign_directory(tmp_path: Path) -> None:
    goroot = _tree(tmp_path / "goroot", {"LICENSE": b"The Go Authors"})
    out = _tree(tmp_path / "out", {"precious.txt": b"keep me"})
    with pytest.raises(lic.LicenseError, match="not replacing"):
        lic.generate({"x": _info([])}, out, _fixed({"golang.org/go@go1.26.8": goroot}))
    assert (out / "precious.txt").read_bytes() == b"keep me"


# The real binaries: every module `go version -m` lists must have its license text in the output.


def _need_go() -> str:
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI") == "true":
            pytest.fail("go is not on PATH in CI")
        pytest.skip("go is not on PATH")
    return go


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """oci-registry (the built one, or built here) and liboci (only if built: it needs cgo;
    test.sh builds it before the tests, so CI always has it)."""
    go = _need_go()
    registry = REPO / "src" / "oci_client" / "bin" / "oci-registry"
    if not registry.is_file():
        registry = tmp_path_factory.mktemp("bin") / "oci-registry"
        subprocess.run(
            [go, "build", "-trimpath", "-o", str(registry), "./cmd/oci-registry"],
            cwd=REPO / "go" / "registry",
            env={**os.environ, "CGO_ENABLED": "0"},
            check=True,
            timeout=240,
        )
    found = [registry]
    libs = [p for p in (REPO / "src" / "oci_client").glob("liboci.*") if p.suffix in (".so", ".dylib")]
    if libs:
        found += libs
    elif os.environ.get("CI") == "true":
        pytest.fail("src/oci_client/liboci.so is missing in CI: build it first (./build.sh)")
    return found


def _deps(go: str, artifact: Path) -> list[tuple[str, str]]:
    """(path, version) of each dep line, read independently of the tool's parser, but for
    the module that encloses the binary's own (this project's code)."""
    out = subprocess.run([go, "version", "-m", str(artifact)], capture_output=True, text=True, check=True)
    fields = [line.strip("\t").split("\t") for line in out.stdout.splitlines()]
    main = next(f[1] for f in fields if f[0] == "mod")
    return [(f[1], f[2]) for f in fields if f[0] == "dep" and not main.startswith(f[1] + "/")]


def _run_tool(out: Path, artifacts: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--out", str(out), *map(str, artifacts)],
        capture_output=True,
        text=True,
        timeout=240,
    )


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_module_in_the_build_has_its_license(artifacts: list[Path], tmp_path: Path) -> None:
    go = _need_go()
    out = tmp_path / "licenses"
    proc = _run_tool(out, artifacts)
    assert proc.returncode == 0, proc.stderr

    listed = (out / "MODULES.txt").read_text().splitlines()
    deps = {dep: artifact.name for artifact in artifacts for dep in _deps(go, artifact)}
    assert len(deps) > 10  # go-containerregistry and what it needs, at the least
    for (path, version), artifact in deps.items():
        # The module's own license, at the root of its directory: shared, or one per version.
        roots = [out / path, out / f"{path}@{version}"]
        own = [f for d in roots if d.is_dir() for f in d.iterdir() if f.is_file()]
        assert any(f.name.upper().startswith(("LICENSE", "LICENCE", "COPYING")) for f in own), path
        line = next((line for line in listed if line.startswith(f"{path} {version} ")), None)
        assert line is not None, f"{path} {version} not in MODULES.txt"
        assert artifact in line.split()[-2].split(",")
    assert b"The Go Authors" in (out / "golang.org" / "go" / "LICENSE").read_bytes()
    assert any(line.startswith("golang.org/go go1.") for line in listed)

    # Deterministic: a second run, replacing the first, gives the same bytes.
    before = _files(out)
    proc = _run_tool(out, artifacts)
    assert proc.returncode == 0, proc.stderr
    assert _files(out) == before

    # What the wheel ships (build.sh writes it next to the binaries) is this very output.
    shipped = REPO / "src" / "oci_client" / "licenses"
    if shipped.is_dir() and all(a.parent.is_relative_to(REPO / "src") for a in artifacts):
        assert _files(shipped) == before, "src/oci_client/licenses is stale: run ./build.sh"


def test_tool_fails_naming_the_module(
    artifacts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() on a real binary, with one of its modules' sources stripped of the license."""
    go = _need_go()
    path, version = sorted(_deps(go, artifacts[0]))[0]
    real = lic.go_resolve
    stripped = _tree(tmp_path / "stripped", {"README.md": b"no license here"})

    def resolve(modules: Sequence[lic.Module]) -> dict[lic.Module, Path | str]:
        dirs = dict(real(modules))
        for m in modules:
            if (m.path, m.version) == (path, version):
                dirs[m] = stripped
        return dirs

    monkeypatch.setattr(lic, "go_resolve", resolve)
    out = tmp_path / "licenses"
    assert lic.main(["--out", str(out), str(artifacts[0])]) == 1
    err = capsys.readouterr().err
    assert f"no license text for 1 module(s):\n  {path} {version}: no LICENSE" in err
    assert not out.exists()


def test_go_resolve_offline_checks_the_cache_against_the_binary(
    artifacts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module cache a build filled is enough (no network), a source that does not hash to
    what the linker recorded is refused, and a module the cache lacks is reported."""
    go = _need_go()
    info = subprocess.run([go, "version", "-m", str(artifacts[0])], capture_output=True, text=True)
    real = lic.parse_buildinfo(info.stdout).deps[0]
    tampered = lic.Module(real.path, real.version, real.source_path, real.source_version, "h1:AAAA")
    unknown = lic.Module("example.invalid/none", "v1.0.0", "example.invalid/none", "v1.0.0", "h1:BBBB")
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOFLAGS", "-modfile=other.mod")  # fatal outside a module, unless dropped

    dirs = lic.go_resolve([real, tampered, unknown])

    source, missing = dirs[real], dirs[unknown]
    assert isinstance(source, Path) and lic.has_license_text(lic.license_files(source))
    assert dirs[tampered] == f"the module cache has {real.sum}, the binary h1:AAAA"
    assert isinstance(missing, str) and missing.startswith("go mod download: ")
