"""The project's own tools (the command line, the demo, the built-in registry's launcher and
the vLLM plugin) live on the public API: what they import from the library is in its
modules' ``__all__``, and they touch no private member of a client. And the public API
keeps its promises: ``pull`` says what it did, ``pull_model`` returns the path, the module
functions are the default client's methods, ``OciGoClient`` is ``Client``."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
from oci_testing import LocalRegistry, push_model

import oci_client
from oci_client import Client, OciGoClient, PulledModel

pytestmark = pytest.mark.usefixtures("docker_config")

PACKAGE = Path(oci_client.__file__).parent
# The tools, and the vLLM plugin's resolver, which runs in a child process of the plugin.
TOOLS = ("cli", "demo", "server", "vllm", "_vllm_resolve")


def private_imports(package: Path, tool: str) -> list[str]:
    """What ``tool`` imports from the library that is not public: from a private module, or
    a name not in its module's ``__all__``."""
    tree = ast.parse((package / f"{tool}.py").read_text())
    wrong = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level == 1):
            continue
        source = node.module or ""
        if source in TOOLS:
            continue  # one tool's part of another (the plugin and its resolver, the demo's bars)
        for alias in node.names:
            if (source, alias.name) == ("", "_env"):
                continue  # the one table of environment variables, read by all the package alike
            where = f"{tool}.py:{node.lineno}: {alias.name} from oci_client{'.' + source if source else ''}"
            if source.startswith("_"):
                wrong.append(f"{where}, a private module")
            elif (
                alias.name
                not in importlib.import_module(f"oci_client{'.' + source if source else ''}").__all__
            ):
                wrong.append(f"{where}, not in its module's __all__")
    return wrong


@pytest.mark.parametrize("tool", TOOLS)
def test_the_tools_import_only_public_names_of_the_library(tool: str) -> None:
    assert private_imports(PACKAGE, tool) == []


def test_the_import_check_sees_private_imports(tmp_path: Path) -> None:
    # The check above reads real files; one that read nothing would pass on anything.
    (tmp_path / "cli.py").write_text("from .client import check_positive_int\nfrom ._native import call\n")
    wrong = private_imports(tmp_path, "cli")
    assert len(wrong) == 2 and "check_positive_int" in wrong[0] and "private module" in wrong[1]


@pytest.mark.parametrize("tool", TOOLS)
def test_the_tools_touch_no_private_member_of_a_client(tool: str) -> None:
    private = {n for n in dir(Client) if n.startswith("_") and not n.endswith("__")}
    private |= {n for n in vars(Client()) if n.startswith("_")}
    tree = ast.parse((PACKAGE / f"{tool}.py").read_text())
    used = {
        (node.attr, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in private
    }
    assert not used, f"{tool}.py uses {sorted(used)}"


def test_module_functions_are_the_default_clients_methods() -> None:
    for name in ("pull", "pull_model", "push_model", "inspect", "cache_list", "cache_verify"):
        fn = getattr(oci_client, name)
        assert isinstance(fn.__self__, Client) and fn.__func__ is getattr(Client, name), name
        # Real keyword parameters, no **kwargs standing for them.
        assert all(p.kind is not p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()), name
        assert "Args:" in (fn.__doc__ or "") or ":meth:`pull`" in (fn.__doc__ or ""), name
    assert OciGoClient is Client


def test_pull_says_what_it_did_and_pull_model_returns_the_same_path(
    plain_registry: LocalRegistry, tmp_path: Path
) -> None:
    files = {"config.json": b"{}", "model.safetensors": b"w" * 4096}
    pushed = push_model(plain_registry, "public/pull", "v1", files)
    cache = tmp_path / "cache"
    r = oci_client.pull(pushed.reference, cache_dir=cache)
    assert isinstance(r, PulledModel)
    assert r.reference == f"{plain_registry.host}/public/pull@{r.digest}"
    assert r.digest == pushed.digest
    assert sorted(r.files) == sorted(files)
    assert {f.path: f.size for f in r.model_files} == {p: len(d) for p, d in files.items()}
    assert r.blobs_downloaded >= 2 and r.bytes_downloaded >= sum(map(len, files.values()))
    assert {p: (r.path / p).read_bytes() for p in files} == files
    again = oci_client.pull(r.reference, cache_dir=cache)
    assert (again.path, again.blobs_downloaded, again.bytes_downloaded) == (r.path, 0, 0)
    assert oci_client.pull_model(pushed.reference, cache_dir=cache) == r.path


def test_allow_empty_gives_an_empty_directory_where_patterns_pick_nothing(
    plain_registry: LocalRegistry, tmp_path: Path
) -> None:
    pushed = push_model(plain_registry, "public/empty", "v1", {"model.gguf": b"GGUF" + b"\0" * 64})
    with pytest.raises(oci_client.NoMatchingFilesError):
        oci_client.pull(pushed.reference, cache_dir=tmp_path, allow_patterns="*.json")
    r = oci_client.pull(pushed.reference, cache_dir=tmp_path, allow_patterns="*.json", allow_empty=True)
    assert r.files == () and list(r.path.iterdir()) == []
    with pytest.raises(oci_client.InvalidArgumentError, match="allow_empty"):
        oci_client.pull(pushed.reference, cache_dir=tmp_path, allow_empty="yes")  # type: ignore[arg-type]
