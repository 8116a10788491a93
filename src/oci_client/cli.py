"""The ``oci-client`` command: ``pull``, ``push``, ``inspect``, ``cache``, ``serve``,
``manifest``, ``blob``, ``check-auth``, ``demo``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .client import OciGoClient, ProgressCallback
from .errors import OciError
from .server import add_serve_parser

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
# 128 + SIGPIPE, what the shell reports for git, cat or grep when the reader of
# their output quits: scripts that tolerate a closed pipe (`set -o pipefail`) look
# for it, and it stays apart from EXIT_ERROR, a real failure.
EXIT_BROKEN_PIPE = 141
CACHE_DIR_HELP = "cache root (default $OCI_CLIENT_CACHE or ~/.cache/oci-client)"


def _client(args: argparse.Namespace) -> OciGoClient:
    return OciGoClient(
        ca_file=args.ca_file,
        insecure_registries=args.insecure,
        timeout=args.timeout,
    )


@contextlib.contextmanager
def byte_bar(label: str, stream: TextIO, *, quiet: bool = False) -> Iterator[ProgressCallback | None]:
    """A tqdm bar of bytes on ``stream`` for a ProgressCallback; None when quiet or
    ``stream`` is not a terminal."""
    if quiet or not stream.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=stream, leave=True) as bar:

        def update(done: int, total: int) -> None:
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        yield update


def _cmd_manifest(args: argparse.Namespace) -> int:
    m = _client(args).get_manifest(args.reference)
    if args.raw:
        sys.stdout.buffer.write(m.raw)
        return EXIT_OK
    print(json.dumps({"digest": m.digest, "mediaType": m.media_type, "size": m.size}), file=sys.stderr)
    print(json.dumps(m.json(), indent=2))
    return EXIT_OK


def _cmd_blob(args: argparse.Namespace) -> int:
    with byte_bar(Path(args.output).name, sys.stderr, quiet=args.quiet) as progress:
        info = _client(args).pull_blob(
            args.reference, args.digest, args.output, size=args.size, progress=progress
        )
    print(f"{info.digest} {plural(info.size, 'byte')} -> {info.path}")
    return EXIT_OK


def _cmd_pull(args: argparse.Namespace) -> int:
    with _file_bars(args) as on_snapshot:
        r = _client(args)._pull_model(
            args.reference,
            cache_dir=args.cache_dir,
            local_dir=args.output,
            allow_patterns=args.include or None,
            ignore_patterns=args.exclude or None,
            offline=True if args.offline else None,
            platform=args.platform,
            artifact_type=args.artifact_type,
            concurrency=args.concurrency,
            durability="sync" if args.sync else "background",
            verify=True if args.verify else None,
            on_snapshot=on_snapshot,
        )
        _settle(on_snapshot, r)
    n, size = r.get("blobs_downloaded", 0), r.get("bytes_downloaded", 0)
    what = f"downloaded {plural(n, 'blob')}, {_human(size)}" if n else "from the cache"
    print(f"{r['reference']}: {plural(len(r.get('files') or []), 'file')} ({what})", file=sys.stderr)
    print(r["path"])
    return EXIT_OK


def _cmd_push(args: argparse.Namespace) -> int:
    with _file_bars(args) as on_snapshot:
        r = _client(args)._push_model(
            args.directory,
            args.reference,
            format=args.format,
            cache_dir=args.cache_dir,
            concurrency=args.concurrency,
            mount_from=args.mount_from or None,
            follow_symlinks=args.follow_symlinks,
            on_snapshot=on_snapshot,
        )
        _settle(on_snapshot, r)
    continued = r.get("continued", 0)
    print(
        f"{r['reference']}: {plural(r.get('files', 0), 'file')}, {_human(r.get('file_bytes', 0))} "
        f"(uploaded {r.get('uploaded', 0)}, already there {r.get('skipped', 0)}, "
        f"mounted {r.get('mounted', 0)}; sent {_human(r.get('bytes_sent', 0))}"
        + (f"; continued {plural(continued, 'interrupted upload')}" if continued else "")
        + ")",
        file=sys.stderr,
    )
    print(r["reference"])
    return EXIT_OK


@contextlib.contextmanager
def _file_bars(args: argparse.Namespace) -> Iterator[_FileBars | None]:
    """A total bar plus one bar per file being downloaded, on stderr, unless
    --quiet or stderr is not a terminal."""
    if args.quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bars = _FileBars(tqdm, sys.stderr)
    try:
        yield bars
    finally:
        bars.close()


class _FileBars:
    """The bars of a pull or push: fed the library's progress snapshots while the call
    runs, then its result. The library keeps no counters once the call returns, and a
    call shorter than one poll interval sends no snapshot at all, so the result is
    what brings every bar to its end."""

    def __init__(self, tqdm: Any, stream: TextIO) -> None:
        self._tqdm = tqdm
        self._kw: dict[str, Any] = {"unit": "B", "unit_scale": True, "unit_divisor": 1024, "file": stream}
        self.total = tqdm(desc="total", position=0, **self._kw)
        self.bars: dict[str, Any] = {}

    def _bar(self, label: str) -> Any:
        bar = self.bars.get(label)
        if bar is None:
            bar = self.bars[label] = self._tqdm(
                desc=label[-40:], position=len(self.bars) + 1, leave=False, **self._kw
            )
        return bar

    def __call__(self, snapshot: dict[str, Any]) -> None:
        _advance(self.total, int(snapshot.get("bytes_done", 0)), int(snapshot.get("bytes_total", 0)))
        for blob in snapshot.get("blobs") or ():
            bar = self._bar(str(blob.get("label", "?")))
            if blob.get("present"):
                # Found in place: no bytes moved and the snapshot has no size; the
                # result's sizes fill the bar in finish.
                bar.set_postfix_str("found in place")
                continue
            _advance(bar, int(blob.get("bytes_done", 0)), int(blob.get("bytes_total", 0)))

    def finish(self, result: dict[str, Any]) -> None:
        """Bring every bar to 100 % from a successful call's result."""
        # A pull's result names the files it made ready with their sizes; a push's
        # snapshots carry every size, skipped blobs included.
        files = result.get("files")
        names = set(files) if isinstance(files, list) else set()
        sizes = {
            str(f["path"]): int(f.get("size", 0))
            for f in (result["model"]["files"] if "model" in result else ())  # a push's has none
            if f.get("path") in names
        }
        for label, size in sizes.items():
            _fill(self._bar(label), size)
        for bar in self.bars.values():
            if bar.total:
                _fill(bar, bar.total)
        if not sizes:
            if self.total.total:
                _fill(self.total, self.total.total)
            return
        # The total counts the bytes ready, and says how many of them were downloaded:
        # a file found in place is ready, not downloaded.
        ready, moved = sum(sizes.values()), int(result.get("bytes_downloaded", 0))
        human = functools.partial(self.total.format_sizeof, suffix="B", divisor=1024)
        note = f"{human(moved)} downloaded" if moved else "all found in place"
        if 0 < moved < ready:
            note += f", {human(ready - moved)} found in place"
        self.total.set_postfix_str(note, refresh=False)
        self.total.n = 0
        _fill(self.total, ready)

    def close(self) -> None:
        for bar in (*self.bars.values(), self.total):
            bar.close()


def _settle(bars: _FileBars | None, result: dict[str, Any]) -> None:
    if bars is not None:
        bars.finish(result)


def _fill(bar: Any, size: int) -> None:
    _advance(bar, size, size)
    # update() draws at most every mininterval: the last state must be drawn before close.
    bar.refresh()


def _advance(bar: Any, done: int, total: int) -> None:
    if total and bar.total != total:
        bar.total = total
        bar.refresh()
    if done > bar.n:
        bar.update(done - bar.n)


def plural(n: int, noun: str) -> str:
    """``1 file``, ``2 files``, ``0 files``: summaries read as sentences."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _cmd_inspect(args: argparse.Namespace) -> int:
    info = _client(args).inspect(
        args.reference,
        cache_dir=args.cache_dir,
        offline=True if args.offline else None,
        platform=args.platform,
        artifact_type=args.artifact_type,
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(info), indent=2, default=str))
        return EXIT_OK
    print(info.reference)
    print(f"format    {info.format}" + (f" ({info.artifact_type})" if info.artifact_type else ""))
    print(f"manifest  {info.media_type}")
    print(f"config    {info.config_media_type}")
    print(f"files     {len(info.files)}, {_human(info.total_size)} ({plural(info.total_size, 'byte')})")
    width = max((len(f.path) for f in info.files), default=4)
    for f in info.files:
        kind = f.kind + (f" [{f.archive}]" if f.archive else "")
        print(f"  {f.path:<{width}}  {_human(f.size):>10}  {kind:<20} {f.digest}")
    for skipped in info.skipped:
        print(f"  skipped {skipped.get('digest')} ({skipped.get('media_type')}): {skipped.get('reason')}")
    return EXIT_OK


def _cmd_cache_ls(args: argparse.Namespace) -> int:
    info = OciGoClient().cache_list(cache_dir=args.cache_dir)
    rows = [("MODEL", "TAGS", "DIGEST", "SIZE", "FILES", "LAST USED")]
    for m in info.models:
        for snap in m.snapshots:
            used = snap.last_used.astimezone().strftime("%Y-%m-%d %H:%M") if snap.last_used else "-"
            tags = ",".join(snap.tags) or "-"
            rows.append((m.name, tags, snap.digest[:19], _human(snap.size), str(snap.files), used))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(f"{_human(info.size)} in {info.root}", file=sys.stderr)
    return EXIT_OK


def _cmd_cache_rm(args: argparse.Namespace) -> int:
    r = OciGoClient().cache_remove(args.reference, cache_dir=args.cache_dir)
    print(
        f"removed {args.reference}: {plural(len(r.snapshots), 'snapshot')}, {plural(r.blobs, 'blob')}, "
        f"{_human(r.bytes)} freed"
    )
    return EXIT_OK


def _cmd_cache_prune(args: argparse.Namespace) -> int:
    r = OciGoClient().cache_prune(cache_dir=args.cache_dir, min_age=args.min_age)
    entries = "1 unused entry" if r.blobs == 1 else f"{r.blobs} unused entries"
    print(f"pruned {entries}, {_human(r.bytes)} freed")
    return EXIT_OK


def _cmd_cache_verify(args: argparse.Namespace) -> int:
    with byte_bar("verify", sys.stderr, quiet=args.quiet) as progress:
        r = _client(args).cache_verify(
            args.reference,
            cache_dir=args.cache_dir,
            repair=not args.no_repair,
            offline=args.offline or None,
            progress=progress,
        )
    print(
        f"checked {plural(r.checked, 'blob')}, {_human(r.bytes_hashed)} hashed: {len(r.corrupt)} corrupt, "
        f"{len(r.missing)} missing, {plural(len(r.repaired), 'model')} pulled again"
    )
    for b in r.corrupt + r.missing:
        what = b.action or "nothing done"
        if b.moved_to is not None:
            what += f" (to {b.moved_to})"
        if b.error:
            what += f": {b.error}"
        print(f"{b.status} {b.digest} ({_human(b.size)}): {what}{'' if b.fixed else ' [still wrong]'}")
    return EXIT_OK if r.ok else EXIT_ERROR


def _cmd_check_auth(args: argparse.Namespace) -> int:
    reason = _client(args).test_authentication(args.reference)
    if reason is None:
        print(f"ok: pull access to {args.reference}")
        return EXIT_OK
    print(f"no pull access to {args.reference}: {reason}", file=sys.stderr)
    return EXIT_ERROR


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(output=args.output, keep=args.keep)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps a one-paragraph description to the terminal but keeps text with line
    breaks as written: an Examples block's command lines must stay whole."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" not in text:
            return argparse.HelpFormatter._fill_text(self, text, width, indent)
        return super()._fill_text(text, width, indent)


def _examples(*lines: str) -> str:
    return "Examples:\n" + "\n".join(f"  {line}" for line in lines)


def _verbosity(*, in_subcommand: bool) -> argparse.ArgumentParser:
    """-v/--verbose and --debug, global: before the subcommand or after it.
    After it they default to SUPPRESS, or the subcommand's default would
    overwrite what was given before it."""
    default: Any = argparse.SUPPRESS if in_subcommand else False
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log retries, redirects, range fallbacks, connection changes and leases on stderr",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="log as -v does, and every request (method, URL with its query masked, status, time)",
    )
    return p


def _add(
    sub: Any,
    name: str,
    *,
    help: str,
    description: str,
    examples: Sequence[str],
    parents: Sequence[argparse.ArgumentParser] = (),
    **kw: Any,
) -> argparse.ArgumentParser:
    """A subcommand whose --help has a description and an Examples block."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=_examples(*examples),
        formatter_class=_HelpFormatter,
        parents=[*parents, _verbosity(in_subcommand=True)],
        **kw,
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ca-file", help="PEM file of extra trusted certificate authorities")
    common.add_argument(
        "--insecure",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="allow plain HTTP and unverified TLS for this registry (repeatable)",
    )
    common.add_argument("--timeout", type=float, help="seconds the whole operation may take")

    p = argparse.ArgumentParser(
        prog="oci-client",
        description="Pull, push, inspect and cache models and other artifacts in OCI registries.",
        epilog=_examples(
            "oci-client demo",
            "oci-client pull localhost:5000/org/model:v1",
            "oci-client SUBCOMMAND --help",
        ),
        formatter_class=_HelpFormatter,
        parents=[_verbosity(in_subcommand=False)],
    )
    p.add_argument("--version", action="version", version=f"oci-client {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    m = _add(
        sub,
        "manifest",
        parents=[common],
        help="print a manifest or index",
        description="Print the manifest or index that REFERENCE names as indented JSON on stdout, and its "
        "digest, media type and size as one JSON line on stderr.",
        examples=(
            "oci-client manifest localhost:5000/org/model:v1",
            "oci-client manifest --raw ghcr.io/org/model:v1 | sha256sum",
        ),
    )
    m.add_argument("reference")
    m.add_argument("--raw", action="store_true", help="write the bytes exactly as served")
    m.set_defaults(func=_cmd_manifest)

    b = _add(
        sub,
        "blob",
        parents=[common],
        help="download and verify one blob",
        description="Download the blob DIGEST of REFERENCE's repository to a file and verify its digest.",
        examples=("oci-client blob localhost:5000/org/model sha256:<64 hex digits> -o weights.safetensors",),
    )
    b.add_argument("reference")
    b.add_argument("digest")
    b.add_argument("-o", "--output", required=True, help="destination file")
    b.add_argument("--size", type=int, help="expected size in bytes (from the descriptor)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_blob)

    model_opts = argparse.ArgumentParser(add_help=False)
    model_opts.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    model_opts.add_argument("--offline", action="store_true", help="serve from the cache, no network")
    model_opts.add_argument("--platform", help="pick this os/arch[/variant] out of an index")
    model_opts.add_argument("--artifact-type", help="pick the manifest of this artifactType out of an index")

    pl = _add(
        sub,
        "pull",
        parents=[common, model_opts],
        help="pull a model into the cache (or -o DIR), print its directory",
        description="Pull a model into the cache, or into a directory with -o, and print the directory "
        "that holds its files. Blobs already in the cache are not downloaded again.",
        examples=(
            "oci-client pull localhost:5000/org/model:v1",
            "oci-client pull localhost:5000/org/model:v1 -o ./model --include '*.json' --exclude '*.bin'",
            "oci-client pull --offline localhost:5000/org/model:v1",
        ),
    )
    pl.add_argument("reference")
    pl.add_argument("-o", "--output", help="put real files in this directory instead of a cache snapshot")
    pl.add_argument(
        "--include", action="append", metavar="GLOB", help="fetch only matching files (repeat it)"
    )
    pl.add_argument("--exclude", action="append", metavar="GLOB", help="skip matching files (repeatable)")
    pl.add_argument("--concurrency", type=int, help="blobs fetched at once (default 4)")
    pl.add_argument("--sync", action="store_true", help="fsync every file before returning")
    pl.add_argument(
        "--verify",
        action="store_true",
        help="re-hash every blob served from the cache (default: trust one hashed when fetched)",
    )
    pl.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    pl.set_defaults(func=_cmd_pull)

    ps = _add(
        sub,
        "push",
        parents=[common],
        help="publish a model directory, print its repo@digest",
        description="Publish the files of DIRECTORY as a model at REFERENCE and print its repo@digest. "
        "Blobs the registry has already are not uploaded again.",
        examples=(
            "oci-client push ./my-model localhost:5000/org/model:v1",
            "oci-client push --format docker ./my-model localhost:5000/org/model:v1",
        ),
    )
    ps.add_argument("directory")
    ps.add_argument("reference", help="where to publish, e.g. localhost:5000/org/model:v1")
    ps.add_argument(
        "--format",
        choices=("modelpack", "docker"),
        default="modelpack",
        help="CNCF ModelPack (default) or Docker Model Runner's layout",
    )
    ps.add_argument("--cache-dir", help=CACHE_DIR_HELP + "; remembers file digests")
    ps.add_argument("--concurrency", type=int, help="blobs uploaded at once (default 4)")
    ps.add_argument(
        "--mount-from", action="append", metavar="REPO", help="mount blobs from this repository (repeatable)"
    )
    ps.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="follow every symlink, even out of DIRECTORY (default: only into it or into a cache's blobs)",
    )
    ps.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ps.set_defaults(func=_cmd_push)

    ins = _add(
        sub,
        "inspect",
        parents=[common, model_opts],
        help="describe a model: its format and files",
        description="Describe a model without downloading its files: its format, manifest and every "
        "file's path, size, kind and digest.",
        examples=(
            "oci-client inspect localhost:5000/org/model:v1",
            "oci-client inspect --json localhost:5000/org/model:v1 | jq -r '.files[].path'",
        ),
    )
    ins.add_argument("reference")
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    ins.set_defaults(func=_cmd_inspect)

    c = _add(
        sub,
        "cache",
        help="list, remove, prune and verify cached models",
        description="List, remove, prune and verify the models pulled into the cache.",
        examples=(
            "oci-client cache ls",
            "oci-client cache rm localhost:5000/org/model:v1",
            "oci-client cache prune",
            "oci-client cache verify",
        ),
    )
    csub = c.add_subparsers(dest="cache_command", required=True)
    cache_dir = argparse.ArgumentParser(add_help=False)
    cache_dir.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    _add(
        csub,
        "ls",
        parents=[cache_dir],
        help="models, tags, sizes, last use",
        description="List the cached models: tags, digest, size, number of files and last use.",
        examples=("oci-client cache ls", "oci-client cache ls --cache-dir /data/models"),
    ).set_defaults(func=_cmd_cache_ls)
    rm = _add(
        csub,
        "rm",
        parents=[cache_dir],
        help="remove a tag or repo@digest",
        description="Remove a tag (and its snapshot when no other tag points to it) or, for repo@digest, "
        "a snapshot and its tags; then the blobs only they used.",
        examples=(
            "oci-client cache rm localhost:5000/org/model:v1",
            "oci-client cache rm localhost:5000/org/model@sha256:<64 hex digits>",
        ),
    )
    rm.add_argument("reference")
    rm.set_defaults(func=_cmd_cache_rm)
    pr = _add(
        csub,
        "prune",
        parents=[cache_dir],
        help="delete blobs no snapshot uses",
        description="Delete blobs, unpacked trees, manifests and partial downloads that no snapshot or "
        "tag uses, except those younger than --min-age: a pull running now may not have linked them yet.",
        examples=("oci-client cache prune", "oci-client cache prune --min-age 0"),
    )
    pr.add_argument(
        "--min-age", type=float, default=3600.0, metavar="SECONDS", help="keep younger entries (default 3600)"
    )
    pr.set_defaults(func=_cmd_cache_prune)
    ve = _add(
        csub,
        "verify",
        parents=[common, cache_dir],
        help="re-hash cached blobs, repair wrong ones",
        description="Re-hash every blob in the cache, or those of the models REFERENCE names (as an "
        "offline pull resolves them). A pull trusts a blob hashed when it was fetched; this finds what "
        "changed on the disk since. A wrong blob is moved into quarantine/ in the cache and fetched "
        "again; offline it is only moved aside. Prints a summary and one line per problem; exits 1 "
        "when something is still wrong.",
        examples=(
            "oci-client cache verify",
            "oci-client cache verify localhost:5000/org/model:v1 --offline",
        ),
    )
    ve.add_argument("reference", nargs="*", help="tags or repo@digest (default: every blob)")
    ve.add_argument("--offline", action="store_true", help="fetch nothing: report, move wrong blobs aside")
    ve.add_argument("--no-repair", action="store_true", help="only report: move and fetch nothing")
    ve.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ve.set_defaults(func=_cmd_cache_verify)

    a = _add(
        sub,
        "check-auth",
        parents=[common],
        help="check pull access with your credentials",
        description="Check, against the registry, that the credentials found for REFERENCE (Docker "
        "config, credential helpers) may pull it; exit 1 and say why when not.",
        examples=("oci-client check-auth ghcr.io/org/private-model:v1",),
    )
    a.add_argument("reference")
    a.set_defaults(func=_cmd_check_auth)

    add_serve_parser(sub)
    # server.py owns serve's arguments and description; its examples belong with the others here.
    serve = sub.choices["serve"]
    serve.formatter_class = _HelpFormatter
    serve.epilog = _examples(
        "oci-client serve --root ./registry --addr 127.0.0.1:5000",
        "oci-client serve --proxy https://registry-1.docker.io",
    )

    d = _add(
        sub,
        "demo",
        help="publish a small model to the built-in registry in both formats and pull it back",
        description="Start the registry packaged with oci-client on 127.0.0.1, publish a small model to "
        "it as ModelPack and as Docker Model Runner, inspect and pull both back, verify every file, pull "
        "again from the cache and stop (unless --keep). No network, no Docker.",
        examples=("oci-client demo", "oci-client demo --keep -o ./demo-model"),
    )
    d.add_argument("-o", "--output", help="keep the pulled model in this directory")
    d.add_argument("--keep", action="store_true", help="leave the registry running; print what to try next")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`oci-client inspect REF | head -2`): that is its
        # choice, not our failure, so no traceback and no message.
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        # --help and --version print into the buffer and exit: a closed pipe
        # must surface here, where main catches it, not at interpreter exit.
        sys.stdout.flush()
        raise
    try:
        with log_to_stderr(logging.DEBUG if args.debug else logging.INFO if args.verbose else None):
            rc: int = args.func(args)
    except OciError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        rc = EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        rc = 130
    sys.stdout.flush()  # the same: a reader that left is found now, while main can catch it
    return rc


class _LogFormatter(logging.Formatter):
    """``12:00:01.250 INFO transfer: retrying request method=GET ...``: one short
    line, the logger named without its ``oci_client.`` prefix."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(area)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        name = record.name
        record.area = name.removeprefix("oci_client.") if name != "oci_client" else "oci-client"
        return super().format(record)


class _StderrHandler(logging.Handler):
    """Writes through tqdm, which lifts the progress bars out of the way."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)  # stderr as it is now, not at setup
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def log_to_stderr(level: int | None) -> Iterator[None]:
    """While inside, send ``oci_client`` records at ``level`` and above to
    stderr, one line each (None: leave logging as it is). The logger is put
    back as it was after: main() also runs inside other programs (tests)."""
    if level is None:
        yield
        return
    logger = logging.getLogger("oci_client")
    handler = _StderrHandler()
    handler.setFormatter(_LogFormatter())
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null: the interpreter flushes stdout once more at exit,
    and what the reader never took is still in the buffer; that flush would raise
    again and print "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # no real fd 1 (stdout replaced in-process): nothing to flush later
        pass


if __name__ == "__main__":
    sys.exit(main())
