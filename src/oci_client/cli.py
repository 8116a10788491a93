"""The ``oci-client`` command: ``manifest``, ``blob``, ``check-auth``, ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .client import OciGoClient
from .errors import OciError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _client(args: argparse.Namespace) -> OciGoClient:
    return OciGoClient(
        ca_file=args.ca_file,
        insecure_registries=args.insecure,
        timeout=args.timeout,
    )


def _cmd_manifest(args: argparse.Namespace) -> int:
    m = _client(args).get_manifest(args.reference)
    if args.raw:
        sys.stdout.buffer.write(m.raw)
        return EXIT_OK
    print(json.dumps({"digest": m.digest, "mediaType": m.media_type, "size": m.size}), file=sys.stderr)
    print(json.dumps(m.json(), indent=2))
    return EXIT_OK


def _cmd_blob(args: argparse.Namespace) -> int:
    info = _client(args).pull_blob(args.reference, args.digest, args.output, size=args.size)
    print(f"{info.digest} {info.size} bytes -> {info.path}")
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
    b.set_defaults(func=_cmd_blob)

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
