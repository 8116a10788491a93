"""The documentation holds together: every relative link resolves, the generated reference pages
equal what their generators write now, the environment variables are read in one place and
documented in one table, and the Go version is stated alike everywhere."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent

# [text](target) and [text]: target, outside code; images too.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")


def _markdown_files() -> list[Path]:
    files = [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "CONTRIBUTING.md",
        ROOT / "bench" / "README.md",
    ]
    files += sorted((ROOT / "bench").glob("*.md"))
    files += sorted((ROOT / "docs").rglob("*.md"))
    return sorted({f for f in files if f.is_file()})


def _links(text: str) -> list[str]:
    text = CODE.sub("", FENCE.sub("", text))
    return LINK.findall(text)


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of the headings of a markdown file."""
    out = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            title = m.group(1).strip().lower().replace(" ", "-")
            out.add("".join(c for c in title if c.isalnum() or c in "-_"))
    return out


def test_the_documentation_exists() -> None:
    names = {str(p.relative_to(ROOT)) for p in _markdown_files()}
    for want in (
        "README.md",
        "CHANGELOG.md",
        "CONTRIBUTING.md",
        "docs/index.md",
        "docs/performance.md",
        "docs/reference/environment.md",
        "docs/reference/cli.md",
        "docs/guides/credentials-and-tls.md",
        "docs/design/cache-format.md",
        "docs/design/transfer-engine.md",
    ):
        assert want in names


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in _links(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target + " (no such heading)")
        elif dest.is_relative_to(ROOT) is False:
            broken.append(target + " (outside the repository)")
    assert not broken, f"{path.relative_to(ROOT)}: broken links {broken}"


def _gendocs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gendocs", ROOT / "tools" / "gendocs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gendocs", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["cli.md", "environment.md"])
def test_generated_reference_is_current(name: str) -> None:
    gendocs = _gendocs()
    path = ROOT / "docs" / "reference" / name
    assert path.read_text(encoding="utf-8") == gendocs.expected(path), (
        f"docs/reference/{name} is stale: run `python tools/gendocs.py`"
    )


def test_cli_reference_has_every_command_and_flag() -> None:
    from oci_client.cli import build_parser

    text = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    for flag in ("--include", "--follow-symlinks", "--min-age", "--no-repair", "--allow-remote"):
        assert f"`{flag}" in text
    for command in ("pull", "push", "inspect", "cache verify", "serve", "check-auth", "demo"):
        assert f"### `oci-client {command}`" in text
    assert build_parser().prog == "oci-client"


# --- environment variables -------------------------------------------------------------------

SRC = ROOT / "src" / "oci_client"
ENV_READ = re.compile(r"os\.(?:environ\.get|getenv|environ\s*\[|environ\.setdefault|environ\.pop)")
ENV_NAME = re.compile(r"\b(?:OCI_CLIENT|OCI_REGISTRY)_[A-Z0-9_]+\b|\bHF_HUB_OFFLINE\b")


def test_only_env_module_reads_the_environment() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "_env.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ENV_READ.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "read settings through oci_client._env:\n" + "\n".join(offenders)


def _go_sources() -> list[Path]:
    return [p for p in (ROOT / "go").rglob("*.go") if not p.name.endswith("_test.go")]


def test_every_variable_the_sources_name_is_in_the_table() -> None:
    from oci_client import _env

    table = {v.name for v in _env.VARIABLES}
    named: dict[str, str] = {}
    for path in [*SRC.rglob("*.py"), *_go_sources()]:
        for name in ENV_NAME.findall(path.read_text(encoding="utf-8")):
            named.setdefault(name, str(path.relative_to(ROOT)))
    missing = {n: where for n, where in named.items() if n not in table}
    assert not missing, f"add these to oci_client._env.VARIABLES: {missing}"
    # And nothing in the table that no source reads any more.
    go_text = "\n".join(p.read_text(encoding="utf-8") for p in _go_sources())
    py_text = "\n".join(p.read_text(encoding="utf-8") for p in SRC.rglob("*.py") if p.name != "_env.py")
    stale = [n for n in table if f'"{n}"' not in go_text and n not in py_text]
    assert not stale, f"no source reads {stale}"


def test_env_accessors_read_the_current_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from oci_client import _env

    monkeypatch.setenv("OCI_CLIENT_LIB", "/x/liboci.so")
    monkeypatch.setenv("OCI_CLIENT_EXIT_SYNC_TIMEOUT", "0")
    monkeypatch.setenv("OCI_CLIENT_REGISTRY_BINARY", "")
    assert _env.library_path() == "/x/liboci.so"
    assert _env.exit_sync_timeout() == "0"
    assert _env.registry_binary() is None
    with pytest.raises(KeyError):
        _env.get("OCI_CLIENT_NO_SUCH_THING")


# --- the Go version ----------------------------------------------------------------------------


def _go_mod_version(path: Path) -> str:
    m = re.search(r"^go (\d+\.\d+)(?:\.\d+)?$", path.read_text(encoding="utf-8"), re.M)
    assert m, f"{path} has no go line"
    return m.group(1)


def test_go_version_is_stated_alike_everywhere() -> None:
    want = _go_mod_version(ROOT / "go" / "go.mod")
    assert _go_mod_version(ROOT / "go" / "registry" / "go.mod") == want
    # Prose and scripts: every "Go >= X.Y" / "Go X.Y" claim names go.mod's release.
    claim = re.compile(r"\bGo (?:>= ?|version |release )?(1\.\d{2})\b")
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += [ROOT / "build.sh", ROOT / "test.sh", *sorted((ROOT / ".ci").iterdir())]
    files += [*sorted((ROOT / "tools").glob("*")), *sorted((ROOT / ".github").rglob("*.yml"))]
    wrong = []
    for path in files:
        if not path.is_file():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for version in claim.findall(line):
                if version != want:
                    wrong.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not wrong, f"go.mod says go {want}; these say otherwise:\n" + "\n".join(wrong)


def test_scripts_read_the_go_version_from_go_mod() -> None:
    """The build script, CI and the wheels workflow take the release from go.mod, never a copy."""
    assert "go/go.mod" in (ROOT / "build.sh").read_text(encoding="utf-8")
    assert "go/go.mod" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for workflow in (ROOT / ".github").rglob("*.yml"):
        text = workflow.read_text(encoding="utf-8")
        if "setup-go" in text:
            assert "go-version-file: go/go.mod" in text, workflow
