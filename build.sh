#!/usr/bin/env bash
# Builds the Go library: the shared library into the Python package
# (src/oci_client/liboci.so or .dylib) and the static archive with its
# header into build/native/; and the registry program (go/registry) into
# src/oci_client/bin/oci-registry. Usage: ./build.sh [all|wheel|shared|registry|archive]
# (wheel = what the Python package ships: shared + registry).
set -euo pipefail
cd "$(dirname "$0")"
what="${1:-all}"

command -v go >/dev/null || { echo "build.sh: Go >= 1.25 is required (https://go.dev/dl/)" >&2; exit 1; }
export CGO_ENABLED=1

case "$(uname -s)" in
  Darwin) ext=dylib
          # An @rpath install name lets the dylib be loaded from wherever it is installed.
          ldflags="-s -w -extldflags=-Wl,-install_name,@rpath/liboci.dylib" ;;
  Linux)  ext=so; ldflags="-s -w" ;;
  *) echo "build.sh: unsupported OS $(uname -s) (Linux and macOS only)" >&2; exit 1 ;;
esac

case "$what" in
  all|wheel|shared|registry|archive) ;;
  *) echo "build.sh: unknown target $what (all, wheel, shared, registry or archive)" >&2; exit 2 ;;
esac

if [[ "$what" != registry ]]; then (cd go && go mod download); fi

if [[ "$what" == all || "$what" == wheel || "$what" == shared ]]; then
  out="src/oci_client/liboci.$ext"
  (cd go && go build -trimpath -buildmode=c-shared -ldflags "$ldflags" -o "../$out.tmp" ./cmd/liboci)
  mv "$out.tmp" "$out"
  rm -f "$out.h" "$out.tmp.h" src/oci_client/liboci.h
  echo "built $out"
fi
if [[ "$what" == all || "$what" == archive ]]; then
  mkdir -p build/native
  (cd go && go build -trimpath -buildmode=c-archive -o ../build/native/liboci.a ./cmd/liboci)
  echo "built build/native/liboci.a and build/native/liboci.h"
fi
if [[ "$what" == all || "$what" == wheel || "$what" == registry ]]; then
  # A separate program, not part of liboci: liboci is loaded into every
  # worker process, and one process can hold only one Go runtime.
  out=src/oci_client/bin/oci-registry
  mkdir -p "$(dirname "$out")"
  (cd go/registry && go mod download && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "../../$out.tmp" ./cmd/oci-registry)
  mv "$out.tmp" "$out"
  echo "built $out"
fi
