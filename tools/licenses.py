#!/usr/bin/env python3
"""Collect the license texts of every Go module compiled into the given Go binaries.

    python3 tools/licenses.py --out DIR ARTIFACT [ARTIFACT ...]

The module list comes from the binaries themselves (`go version -m`), so it is what was linked,
not what a go.mod asks for. Each module's license files (LICENSE*, LICENCE*, COPYING*, NOTICE*,
PATENTS* at the module root, and those in its Go package directories) are copied from the module
cache into DIR/<module path>/, the Go toolchain's own into DIR/golang.org/go/, and DIR/MODULES.txt
lists them all. A module without a license text of its own fails the run and DIR is left as it was:
DIR is written only when every module has one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The Go runtime and standard library are compiled into every binary; they have no module path.
GO_PATH = "golang.org/go"
LICENSE_PREFIXES = ("license", "licence", "copying")
# Copied too, but not a license text on their own.
EXTRA_PREFIXES = ("notice", "patents")


@dataclass(frozen=True, order=True)
class Module:
    path: str
    version: str
    # Where the compiled source came from: the `=>` replacement, or the module itself.
    source_path: str
    source_version: str
    # The h1: hash the linker recorded; empty for a local-directory replacement.
    sum: str = ""

    @property
    def replaced(self) -> bool:
        return (self.source_path, self.source_version) != (self.path, self.version)


@dataclass(frozen=True)
class BuildInfo:
    go_version: str
    main: str
    deps: tuple[Module, ...]


class LicenseError(Exception):
    pass


def parse_buildinfo(text: str) -> BuildInfo:
    """Parse the output of `go version -m` for one binary."""
    lines = text.splitlines()
    if not lines or ": " not in lines[0]:
        raise LicenseError(f"not `go version -m` output: {text[:200]!r}")
    go_version = lines[0].rsplit(": ", 1)[1].strip()
    main = ""
    deps: list[Module] = []
    for line in lines[1:]:
        fields = line.strip("\t").split("\t")
        if fields[0] == "mod" and len(fields) >= 2:
            main = fields[1]
        elif fields[0] == "dep" and len(fields) >= 3:
            sum_ = fields[3] if len(fields) > 3 else ""
            deps.append(Module(fields[1], fields[2], fields[1], fields[2], sum_))
        elif fields[0] == "=>" and len(fields) >= 3:
            if not deps:
                raise LicenseError(f"replacement without a module: {line!r}")
            old = deps.pop()
            sum_ = fields[3] if len(fields) > 3 else ""
            deps.append(Module(old.path, old.version, fields[1], fields[2], sum_))
    return BuildInfo(go_version, main, tuple(deps))


def is_license_name(name: str, prefixes: tuple[str, ...] = LICENSE_PREFIXES + EXTRA_PREFIXES) -> bool:
    # A Go package may well be called license.go.
    return name.lower().startswith(prefixes) and not name.lower().endswith(".go")


def license_files(directory: Path, nested: bool = True) -> dict[str, bytes]:
    """The license files of a module's source: relative path -> content. Those at the root are the
    module's own; deeper ones, in Go package directories, cover code copied in from elsewhere
    (klauspost/compress's zstd/internal/xxhash, for one) and go along."""
    found: dict[str, bytes] = {}
    for root, dirs, files in os.walk(directory):
        # Directories the go command never compiles.
        dirs[:] = sorted(d for d in dirs if d != "testdata" and not d.startswith(("_", ".")))
        here = Path(root)
        if not nested:
            dirs.clear()
        is_package = any(f.endswith(".go") and not f.endswith("_test.go") for f in files)
        if here != directory and not is_package:
            continue
        for name in sorted(files):
            if is_license_name(name) and (here / name).is_file():
                found[(here / name).relative_to(directory).as_posix()] = (here / name).read_bytes()
    return found


def has_license_text(files: Iterable[str]) -> bool:
    """Whether the module's own license is among them: at the root, and not only a NOTICE."""
    return any("/" not in rel and is_license_name(rel, LICENSE_PREFIXES) for rel in files)


# Maps each module to its source directory, or to why it has none.
Resolver = Callable[[Sequence[Module]], Mapping[Module, Path | str]]


@dataclass(frozen=True)
class Entry:
    module: Module
    artifacts: tuple[str, ...]
    files: dict[str, bytes]  # path relative to DIR -> content


def collect(artifacts: Mapping[Module, set[str]], resolve: Resolver) -> tuple[list[Entry], list[str]]:
    """Read the license files of every module; the second list names each module that has none."""
    modules = sorted(artifacts)
    dirs = resolve(modules)
    texts: dict[Module, dict[str, bytes]] = {}
    problems: list[str] = []
    for module in modules:
        where = dirs.get(module, "not resolved")
        if isinstance(where, str):
            problems.append(f"{describe(module)}: {where}")
            continue
        # GOROOT's deeper license files are those of code vendored into the cmd/ tools, not
        # linked into programs.
        files = license_files(where, nested=module.path != GO_PATH)
        if not has_license_text(files):
            found = f" (only {', '.join(files)})" if files else ""
            problems.append(f"{describe(module)}: no LICENSE/LICENCE/COPYING file in {where}{found}")
        texts[module] = files
    if problems:
        return [], problems
    entries = []
    for module in modules:
        # Two versions of one module (one per binary) share DIR/<path>/ when their texts agree,
        # which is the usual case; otherwise each gets DIR/<path>@<version>/.
        siblings = [texts[m] for m in modules if m.path == module.path]
        prefix = module.path if all(s == siblings[0] for s in siblings) else f"{module.path}@{module.version}"
        files = {f"{prefix}/{name}": content for name, content in texts[module].items()}
        entries.append(Entry(module, tuple(sorted(artifacts[module])), files))
    return entries, []


def enclosing(module: Module, main: str) -> bool:
    """Whether module is the one that encloses the binary's own (main), replaced by a local
    directory: this project's code, under its own license (the registry program links the
    library's packages, `=> ../` in go/registry/go.mod), not a dependency's."""
    return module.source_version == "(devel)" and main.startswith(module.path + "/")


def describe(module: Module) -> str:
    text = f"{module.path} {module.version}"
    if module.replaced:
        text += f" => {module.source_path} {module.source_version}"
    return text


def modules_txt(entries: Sequence[Entry]) -> str:
    lines = ["# module version [=> replacement version] artifacts license-files (relative to this directory)"]
    for entry in entries:
        files = ",".join(sorted(entry.files))
        lines.append(f"{describe(entry.module)} {','.join(entry.artifacts)} {files}")
    return "\n".join(lines) + "\n"


def generate(builds: Mapping[str, BuildInfo], out: Path, resolve: Resolver) -> list[str]:
    """Write DIR for these binaries (artifact name -> build info); return the problems instead
    if any module lacks a license text, leaving `out` untouched."""
    artifacts: dict[Module, set[str]] = {}
    for name, info in builds.items():
        go = Module(GO_PATH, info.go_version, GO_PATH, info.go_version)
        for module in (go, *info.deps):
            if not enclosing(module, info.main):
                artifacts.setdefault(module, set()).add(name)
    if out.exists() and not (out.is_dir() and ((out / "MODULES.txt").is_file() or not any(out.iterdir()))):
        # Replacing DIR deletes it: only an earlier output of this tool, or nothing.
        raise LicenseError(f"{out} is neither empty nor an earlier output (no MODULES.txt); not replacing it")
    entries, problems = collect(artifacts, resolve)
    if problems:
        return problems
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for entry in entries:
            for rel, content in entry.files.items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(content)
        (tmp / "MODULES.txt").write_text(modules_txt(entries), encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would ship as such
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return []


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Run outside any module, where -modfile in GOFLAGS is fatal (and -mod, meant for a build,
    # has no business).
    flags = env.get("GOFLAGS", "").split()
    env["GOFLAGS"] = " ".join(f for f in flags if not f.startswith(("-mod=", "-modfile=")))
    env["GOWORK"] = "off"
    # Outside a module there is no go.sum, so each module would be checked against the checksum
    # database, which needs the network even when the module cache has every module. The check
    # made here instead is stronger: the source must hash to what the linker recorded.
    env["GOSUMDB"] = "off"
    return env


def go(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["go", *args], cwd=cwd, env=go_env(), capture_output=True, text=True, check=check
        )
    except FileNotFoundError:
        raise LicenseError("the go command is not on PATH") from None
    except subprocess.CalledProcessError as exc:
        raise LicenseError(f"go {' '.join(args)} failed: {exc.stderr.strip()}") from None


def go_resolve(modules: Sequence[Module]) -> dict[Module, Path | str]:
    """Locate each module's source in the module cache (downloading it if the cache lacks it)."""
    result: dict[Module, Path | str] = {}
    wanted: dict[tuple[str, str], list[Module]] = {}
    for module in modules:
        if module.path == GO_PATH:
            # The go command's GOROOT, even if another release built the binary: Go's LICENSE
            # and PATENTS do not change between releases.
            result[module] = Path(go("env", "GOROOT").stdout.strip())
        elif module.source_version == "(devel)":
            # `go version -m` gives a local replacement's path relative to its main module,
            # which the binary does not record.
            local = Path(module.source_path)
            where = "replaced by a local directory, which the binary does not locate"
            result[module] = local if local.is_absolute() and local.is_dir() else where
        else:
            wanted.setdefault((module.source_path, module.source_version), []).append(module)
    if not wanted:
        return result
    with tempfile.TemporaryDirectory() as outside_any_module:
        args = [f"{path}@{version}" for path, version in sorted(wanted)]
        # Not checked: a failure is reported per module, in the JSON.
        proc = go("mod", "download", "-json", *args, cwd=Path(outside_any_module), check=False)
    decoder, text, pos = json.JSONDecoder(), proc.stdout, 0
    while text[pos:].strip():
        pos += len(text[pos:]) - len(text[pos:].lstrip())
        info, pos = decoder.raw_decode(text, pos)
        for module in wanted.pop((info["Path"], info["Version"]), []):
            if "Error" in info:
                result[module] = f"go mod download: {info['Error']}"
            elif module.sum and info.get("Sum") != module.sum:
                result[module] = f"the module cache has {info.get('Sum')}, the binary {module.sum}"
            else:
                result[module] = Path(info["Dir"])
    for missed in wanted.values():
        for module in missed:
            result[module] = f"go mod download said nothing about it: {proc.stderr.strip()}"
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="directory to (re)create")
    parser.add_argument("artifacts", nargs="+", type=Path, help="Go binaries, c-shared libraries included")
    args = parser.parse_args(argv)
    try:
        builds: dict[str, BuildInfo] = {}
        for artifact in args.artifacts:
            if not artifact.is_file():
                raise LicenseError(f"{artifact}: no such file")
            proc = go("version", "-m", str(artifact), check=False)
            if proc.returncode != 0:
                detail = proc.stderr.strip()
                raise LicenseError(f"{artifact}: not a Go binary with build information {detail}".strip())
            builds[artifact.name] = parse_buildinfo(proc.stdout)
            if not builds[artifact.name].main:
                raise LicenseError(f"{artifact}: no module information (built outside module mode?)")
        problems = generate(builds, args.out, go_resolve)
    except LicenseError as exc:
        print(f"licenses.py: {exc}", file=sys.stderr)
        return 2
    if problems:
        print(
            f"licenses.py: {args.out} not written; no license text for {len(problems)} module(s):",
            *(f"  {p}" for p in problems),
            sep="\n",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
