"""vLLM plugin: models straight from a registry, ``--load-format oci``.

    vllm serve oci://ghcr.io/org/model:v1 --load-format oci
    LLM(model="oci://localhost:5000/org/model:v1", load_format="oci")

vLLM loads this module through the ``vllm.general_plugins`` entry point (``oci``), in
every one of its processes; :func:`register` is idempotent. It

- registers :class:`OciModelLoader` for the load format ``"oci"``;
- makes registry references resolvable as models. vLLM reads the model's config before any
  loader runs, so ``EngineArgs`` is taught (its ``create_engine_config`` and
  ``create_model_config``) to turn ``oci://REF`` — or, with ``--load-format oci``, a bare
  ``registry/repo:tag`` — into the cache snapshot holding the model's small files
  (configs, tokenizer, chat template), pulled with ``pull_model(allow_patterns=…)``. That
  directory becomes ``model`` (and ``tokenizer``, unless one was given); the reference, pinned
  to its manifest digest, travels to the workers in ``model_loader_extra_config``; and
  ``served_model_name`` stays what the user wrote. ``oci://`` with another explicit load
  format pulls the whole model and leaves the loading to that format's loader;
- hands a GGUF model (GGUF weights, no safetensors) to vllm-gguf-plugin's ``gguf`` loader,
  since vLLM itself no longer loads GGUF: the chosen GGUF file is pulled into the cache and
  set up as that plugin sets up a local one (``model_weights``, ``quantization`` and the load
  and config formats ``gguf``). An artifact holding several quantisations needs
  ``model_loader_extra_config={"gguf": "Q4_K_M"}``.

The loader pulls the weights into the shared cache (``download_dir``, else the default
cache), each blob once per machine however many tensor-parallel ranks ask, and feeds
the safetensors shards in shard order to ``model.load_weights`` while later shards are
still downloading: a shard is read once it is verified, never before. A shard the cache
holds already is hashed again before it is handed over (``{"verify": false}`` trusts the
cache as ``pull_model`` does), while the one before it loads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import torch
from vllm.engine.arg_utils import EngineArgs
from vllm.model_executor.model_loader import register_model_loader
from vllm.model_executor.model_loader.base_loader import BaseModelLoader

from ._vllm_resolve import (
    GGUF_KEY,
    LOAD_FORMAT,
    SMALL,
    Resolved,
    choose_gguf,
    literal,
    oci_reference,
    resolve_in_child,
)
from .client import Client
from .errors import InvalidArgumentError
from .events import FileFound, FileVerified
from .models import ModelFile
from .progress import Event

__all__ = [
    "CONCURRENCY_KEY",
    "GGUF_KEY",
    "REFERENCE_KEY",
    "SHARD_ORDER_MIN",
    "VERIFY_KEY",
    "OciModelLoader",
    "register",
]

#: The ``model_loader_extra_config`` key that carries the pinned reference to the workers.
REFERENCE_KEY = "oci_reference"
#: The ``model_loader_extra_config`` key for how many blobs the loader's pull fetches at once.
#: Default: ``1`` (the shards one after another in shard order, each over all the connections)
#: when every shard is at least :data:`SHARD_ORDER_MIN`, else the client's, 4.
CONCURRENCY_KEY = "concurrency"
#: The ``model_loader_extra_config`` key that says whether the loader's pull re-hashes every
#: shard it serves from the cache (``pull_model(verify=…)``): on unless ``false``. Each shard is
#: hashed while the one before it loads, so only the first shard's hash is in the way where the
#: load is slower than sha256: +4.6 % of a cached load on the benchmark (bench/README.md). Where
#: the load is faster (weights copied at several GB/s) it adds up to a hash of the whole model,
#: about 1 s per 1.4 GB on one core here, and ``false`` is the choice.
VERIFY_KEY = "verify"
#: Shards this large are fetched in shard order by default. Four at once, the first shard is
#: verified, and can be loaded, only near the end of the pull; one at a time it is after 1/N of
#: it, and a blob this large still splits into enough ranged requests (8 MiB) to keep every
#: connection busy. Smaller ones go four at once: one at a time, each would pay its requests'
#: latency alone (3.2x slower for 20 shards of 16 MiB behind 100 ms, bench/README.md).
SHARD_ORDER_MIN = 128 << 20
#: The load format (and quantization and config format) of vllm-gguf-plugin, which loads GGUF.
GGUF = "gguf"

_lock = threading.Lock()
# Under vLLM's logger, whose handlers vLLM configures: its own loaders report the same line.
_log = logging.getLogger("vllm.oci_client")


def register() -> None:
    """The plugin function: register the loader and the reference resolution, once."""
    with _lock:
        from vllm.model_executor.model_loader import _LOAD_FORMAT_TO_MODEL_LOADER

        if _LOAD_FORMAT_TO_MODEL_LOADER.get(LOAD_FORMAT) is not OciModelLoader:
            register_model_loader(LOAD_FORMAT)(OciModelLoader)
        if not getattr(EngineArgs, "_oci_client_patched", False):
            for method in ("create_engine_config", "create_model_config"):
                setattr(EngineArgs, method, _resolving(getattr(EngineArgs, method)))
            EngineArgs._oci_client_patched = True


def _resolving(original: Any) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        resolve_engine_args(self)
        return original(self, *args, **kwargs)

    method.__name__ = original.__name__
    method.__qualname__ = original.__qualname__
    method.__doc__ = original.__doc__
    method.__wrapped__ = original  # type: ignore[attr-defined]
    return method


def resolve_engine_args(args: Any) -> None:
    """Point ``args`` (EngineArgs) at the local snapshot of an OCI model, if it names one."""
    written = str(args.model)
    ref = oci_reference(written, args.load_format)
    if ref is None:
        return
    if args.load_format in (None, "auto"):
        args.load_format = LOAD_FORMAT
    ours = args.load_format == LOAD_FORMAT
    extra = dict(args.model_loader_extra_config or {})
    choice = extra.pop(GGUF_KEY, None) if ours else None
    resolved = resolve_in_child(ref, cache_dir=args.download_dir, allow_patterns=SMALL if ours else None)
    if ours and _is_gguf(resolved.weights):
        _hand_to_gguf(args, written, resolved, choice, extra)
    else:
        if choice is not None:
            raise InvalidArgumentError(
                f"{written} holds no GGUF weights to choose from with {GGUF_KEY}={choice!r}"
            )
        extra[REFERENCE_KEY] = resolved.reference
        args.model_loader_extra_config = extra
    if args.tokenizer is None or str(args.tokenizer) == written:
        args.tokenizer = resolved.path
    if not args.served_model_name:
        args.served_model_name = written
    args.model = resolved.path


def _has_tokenizer(snapshot: Path) -> bool:
    return any(
        (snapshot / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    )


def _is_gguf(weights: tuple[str, ...]) -> bool:
    names = [w.lower() for w in weights]
    return any(n.endswith(".gguf") for n in names) and not any(n.endswith(".safetensors") for n in names)


def _hand_to_gguf(args: Any, written: str, resolved: Resolved, choice: Any, extra: dict[str, Any]) -> None:
    """A GGUF model goes to vllm-gguf-plugin's loader (vLLM itself no longer loads GGUF), set
    up as that plugin sets up a local ``.gguf``: its files pulled, ``model_weights`` the first
    of them, the config from the snapshot, else ``--hf-config-path``, else ``--tokenizer``.
    Checked before the weights move."""
    from vllm.model_executor.model_loader import _LOAD_FORMAT_TO_MODEL_LOADER

    if GGUF not in _LOAD_FORMAT_TO_MODEL_LOADER:
        raise InvalidArgumentError(
            f"{written} holds GGUF weights; vLLM loads GGUF with the vllm-gguf-plugin package "
            "(pip install vllm-gguf-plugin), to which --load-format oci then hands the model"
        )
    if choice is not None and not isinstance(choice, str):
        raise InvalidArgumentError(f"--load-format oci: {GGUF_KEY} must be a string, got {choice!r}")
    files = choose_gguf(written, resolved.weights, choice)
    snapshot = Path(resolved.path)
    # The architecture comes from a Hugging Face config: the artifact's, else --hf-config-path,
    # else the tokenizer's source, as that plugin takes it (`--tokenizer Qwen/Qwen3-0.6B`).
    tokenizer = None if args.tokenizer is None or str(args.tokenizer) == written else str(args.tokenizer)
    if args.hf_config_path is None and not (snapshot / "config.json").is_file():
        if tokenizer is None:
            raise InvalidArgumentError(
                f"{written} holds GGUF weights ({files[0]}) but no config.json, from which vLLM's "
                "GGUF plugin takes the architecture: pass --hf-config-path (or --tokenizer), a "
                "directory or Hugging Face id holding the model's config.json"
            )
        args.hf_config_path = tokenizer
    if tokenizer is None and args.hf_config_path is not None and not _has_tokenizer(snapshot):
        args.tokenizer = args.hf_config_path  # Docker Model Runner's GGUF models ship none
    concurrency = extra.pop(CONCURRENCY_KEY, None)
    _check_concurrency(concurrency)
    pulled = resolve_in_child(
        resolved.reference,
        cache_dir=args.download_dir,
        allow_patterns=[*SMALL, *map(literal, files)],
        concurrency=concurrency,
    )
    _log.info("%s holds GGUF weights: %s goes to vllm-gguf-plugin", written, ", ".join(files))
    args.load_format = GGUF
    if args.quantization is None:
        args.quantization = GGUF
    if args.config_format == "auto":
        args.config_format = GGUF
    args.model_weights = str(Path(pulled.path) / files[0])
    args.model_loader_extra_config = extra  # that loader refuses any key


def _check_concurrency(value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidArgumentError(
            f"--load-format oci: {CONCURRENCY_KEY} must be a positive int, got {value!r}"
        )


class OciModelLoader(BaseModelLoader):  # type: ignore[misc]  # vLLM ships no type information
    """``--load-format oci``: weights from a registry, through the shared cache."""

    def __init__(self, load_config: Any) -> None:
        super().__init__(load_config)
        extra = dict(load_config.model_loader_extra_config or {})
        self.reference: str | None = extra.pop(REFERENCE_KEY, None)
        self.concurrency: int | None = extra.pop(CONCURRENCY_KEY, None)
        _check_concurrency(self.concurrency)
        # A loader reads every byte of every shard anyway, and a wrong byte in the weights is
        # silent: on by default (the cost is measured where VERIFY_KEY is defined).
        self.verify: bool = extra.pop(VERIFY_KEY, True)
        if not isinstance(self.verify, bool):
            raise InvalidArgumentError(
                f"--load-format oci: {VERIFY_KEY} must be true or false, got {self.verify!r}"
            )
        if extra:
            raise ValueError(
                f"unexpected model_loader_extra_config keys for --load-format oci: {sorted(extra)}"
            )

    def _reference(self, model_config: Any) -> str:
        ref = self.reference or oci_reference(str(model_config.model), LOAD_FORMAT)
        if not ref:
            raise ValueError(
                f"--load-format oci needs a registry reference such as oci://ghcr.io/org/model:v1, "
                f"not {model_config.model!r}"
            )
        return ref

    def _client(self) -> Client:
        return Client()

    def download_model(self, model_config: Any) -> None:
        """Pull the whole model into the cache (``download_dir``, else the default)."""
        self._client().pull_model(
            self._reference(model_config),
            cache_dir=self.load_config.download_dir,
            concurrency=self.concurrency,
            verify=self.verify,
        )

    def load_weights(self, model: torch.nn.Module, model_config: Any) -> None:
        reference = self._reference(model_config)
        start = time.perf_counter()
        loaded = model.load_weights(self.weights(reference))
        _log.info("Loading weights took %.2f seconds (%s)", time.perf_counter() - start, reference)
        if model_config.quantization is None and loaded is not None:
            check_all_loaded(model, set(loaded))

    def shards(self, reference: str) -> list[ModelFile]:
        """The model's safetensors files, in manifest (shard) order."""
        info = self._client().inspect(reference, cache_dir=self.load_config.download_dir)
        files = [f for f in info.files if f.path.endswith(".safetensors") and not f.archive]
        if not files:
            kinds = sorted({f.path.rsplit(".", 1)[-1] for f in info.files if f.kind == "weight"})
            raise ValueError(
                f"{reference} has no safetensors weights (weights: {', '.join(kinds) or 'none'}); "
                "--load-format oci loads safetensors, and hands GGUF models to vllm-gguf-plugin "
                "when it resolves the model"
            )
        return files

    def weights(self, reference: str) -> Generator[tuple[str, torch.Tensor], None, None]:
        """(name, tensor) of every shard in order, each read as soon as it is verified.

        One pull fetches the whole model (under the client's connection budget, shards of at
        least :data:`SHARD_ORDER_MIN` one after another) on another thread; its events
        (:class:`~oci_client.events.FileVerified`) say when a blob is verified and in the cache,
        and that shard is read from there while the others still download. So does a shard
        the pull finds in place (:class:`~oci_client.events.FileFound`): cached already, or
        fetched by another process (a tensor-parallel rank whose turn it was), each told as
        soon as it is seen verified."""

        shards = self.shards(reference)
        # file name -> its verified blob and when the pull's events first said so
        done: dict[str, tuple[Path, float]] = {}
        outcome: dict[str, Any] = {}
        changed = threading.Condition()

        # A shard by its digest: the events name blobs (two shards may be one blob).
        by_digest: dict[str, list[str]] = {}
        for shard in shards:
            by_digest.setdefault(shard.digest, []).append(shard.path)

        def on_event(event: Event) -> None:
            # Verified by this pull, or found verified in place (cached, or fetched by another
            # process meanwhile): each is heard of once, the last ones too.
            if not isinstance(event, (FileVerified, FileFound)) or event.digest not in by_digest:
                return
            with changed:
                for name in by_digest[event.digest]:
                    done.setdefault(name, (Path(event.path), time.perf_counter()))
                changed.notify_all()

        def fetch() -> None:
            try:
                outcome["path"] = (
                    self._client()
                    .pull(
                        reference,
                        cache_dir=self.load_config.download_dir,
                        concurrency=self.concurrency or _default_concurrency(shards),
                        verify=self.verify,
                        on_event=on_event,  # each shard handed over as soon as it is verified
                    )
                    .path
                )
            except BaseException as exc:  # raised on the loading thread
                outcome["error"] = exc
            with changed:
                outcome["finished"] = time.perf_counter()
                changed.notify_all()

        start = time.perf_counter()
        threading.Thread(target=fetch, name="oci-fetch-shards", daemon=True).start()
        # While the pull runs, the copies into the model use one thread: torch's pool would
        # otherwise contend (and spin) with the downloads for the CPUs. Restored once it ends.
        threads = torch.get_num_threads()
        limit = _may_set_threads()
        if limit:
            torch.set_num_threads(1)
        try:
            yield from self._read_in_order(shards, done, outcome, changed, threads, start)
        finally:
            if limit:
                torch.set_num_threads(threads)

    def _read_in_order(
        self,
        shards: list[ModelFile],
        done: dict[str, tuple[Path, float]],
        outcome: dict[str, Any],
        changed: threading.Condition,
        threads: int,
        start: float,
    ) -> Generator[tuple[str, torch.Tensor], None, None]:
        from safetensors import safe_open

        for i, shard in enumerate(shards, 1):

            def ready(name: str = shard.path) -> bool:
                return name in done or "finished" in outcome

            with changed:
                changed.wait_for(ready)
                if "error" in outcome:
                    raise outcome["error"]
                # Before the pull ends, the verified blob in the cache: it is linked into the
                # snapshot only once every file is there.
                path = outcome["path"] / shard.path if "path" in outcome else done[shard.path][0]
                # Not in the progress (cached, or the pull ended first): readable once it ended.
                verified = done[shard.path][1] if shard.path in done else outcome["finished"]
                if "finished" in outcome and torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
            # Where the time goes, for whoever asks (logging at DEBUG): shards verified long
            # before their turn mean the load bounds the run; loaded as soon as verified, the pull.
            began = time.perf_counter()
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                    yield key, f.get_tensor(key)
            _log.debug(
                "shard %d/%d %s: verified at %.2f s, loading from %.2f s to %.2f s",
                i,
                len(shards),
                shard.path,
                verified - start,
                began - start,
                time.perf_counter() - start,
            )


def _default_concurrency(shards: list[ModelFile]) -> int | None:
    return 1 if all(s.size >= SHARD_ORDER_MIN for s in shards) else None


def _may_set_threads() -> bool:
    """False in vLLM's CPU worker: once it has bound its threads to cores it replaces
    ``torch.set_num_threads`` with a function that refuses, and warns on every call."""
    return torch.set_num_threads is getattr(torch._C, "set_num_threads", None)


def check_all_loaded(model: torch.nn.Module, loaded: Iterable[str]) -> None:
    """vLLM's strict check for unquantized models: every parameter came from the checkpoint."""
    from vllm.model_executor.model_loader.default_loader import DefaultModelLoader

    track = getattr(DefaultModelLoader, "track_weights_loading", None)
    if track is not None:
        track(None, model, set(loaded))  # it reads nothing of the loader itself
        return
    # An older vLLM, where the check is inline in DefaultModelLoader.load_weights.
    missing = {name for name, _ in model.named_parameters()} - set(loaded)
    if missing:
        raise ValueError(f"Following weights were not initialized from checkpoint: {missing}")
