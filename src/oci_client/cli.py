"""The ``oci-client`` command: ``manifest``, ``blob``, ``pull``, ``check-auth``, ``demo``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import __version__
from .client import OciGoClient, ProgressCallback
from .errors import InvalidArgumentError, OciError
from .paths import layer_file_name, safe_join

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _client(args: argparse.Namespace) -> OciGoClient:
    return OciGoClient(
        ca_file=args.ca_file,
        insecure_registries=args.insecure,
        timeout=args.timeout,
    )


@contextlib.contextmanager
def _progress_bar(args: argparse.Namespace, label: str) -> Iterator[ProgressCallback | None]:
    """A tqdm bar on stderr, unless --quiet or stderr is not a terminal."""
    if args.quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=True) as bar:

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
    with _progress_bar(args, Path(args.output).name) as progress:
        info = _client(args).pull_blob(
            args.reference, args.digest, args.output, size=args.size, progress=progress
        )
    print(f"{info.digest} {info.size} bytes -> {info.path}")
    return EXIT_OK


def _cmd_pull(args: argparse.Namespace) -> int:
    client = _client(args)
    manifest = client.get_manifest(args.reference).json()
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        children = [m.get("digest") for m in manifest.get("manifests", [])]
        raise InvalidArgumentError(
            f"{args.reference} is an index, not an artifact; pull one of its manifests: {children}"
        )
    root = Path(args.output)
    specs = [
        (layer["digest"], safe_join(root, layer_file_name(layer)), layer.get("size")) for layer in layers
    ]
    with _progress_bar(args, args.reference) as progress:
        infos = client.pull_blobs(args.reference, specs, concurrency=args.concurrency, progress=progress)
    for info in infos:
        print(f"{info.digest} {info.size:>12} {info.path}")
    return EXIT_OK


def _cmd_check_auth(args: argparse.Namespace) -> int:
    reason = _client(args).test_authentication(args.reference)
    if reason is None:
        print(f"ok: pull access to {args.reference}")
        return EXIT_OK
    print(f"no pull access to {args.reference}: {reason}", file=sys.stderr)
    return EXIT_ERROR


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(output=args.output)


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
        prog="oci-client", description="Pull manifests and blobs from OCI registries."
    )
    p.add_argument("--version", action="version", version=f"oci-client {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("manifest", parents=[common], help="print a manifest or index")
    m.add_argument("reference")
    m.add_argument("--raw", action="store_true", help="write the bytes exactly as served")
    m.set_defaults(func=_cmd_manifest)

    b = sub.add_parser("blob", parents=[common], help="download and verify one blob")
    b.add_argument("reference")
    b.add_argument("digest")
    b.add_argument("-o", "--output", required=True, help="destination file")
    b.add_argument("--size", type=int, help="expected size in bytes (from the descriptor)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_blob)

    pl = sub.add_parser("pull", parents=[common], help="download every layer of an artifact into a directory")
    pl.add_argument("reference")
    pl.add_argument(
        "-o", "--output", required=True, help="target directory (files named by their annotations)"
    )
    pl.add_argument("--concurrency", type=int, help="blobs fetched at once (default 4)")
    pl.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pl.set_defaults(func=_cmd_pull)

    a = sub.add_parser("check-auth", parents=[common], help="check pull access with your credentials")
    a.add_argument("reference")
    a.set_defaults(func=_cmd_check_auth)

    d = sub.add_parser("demo", help="push a tiny model to a local registry and pull it back")
    d.add_argument("-o", "--output", help="keep the pulled model in this directory")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
    except OciError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
