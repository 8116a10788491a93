#!/usr/bin/env bash
# Builds the Go parts of oci-client.
#
#   ./build.sh [all|wheel|shared|registry|archive]   for this machine (default: all)
#   ./build.sh dist                                  every artifact we publish, into dist/
#
# wheel = what the Python package ships, into src/oci_client/: the shared library
# (liboci.so or .dylib), the registry program (bin/oci-registry) and the license texts of
# every Go module compiled into them (licenses/). archive = the static library and its
# header, into build/native/. The usual Go variables pick another target: GOOS, GOARCH and
# CC (a C compiler for that target; cgo needs one).
#
# dist: on Linux, the sdist and the manylinux_2_17 wheels for x86_64 and aarch64 (cgo
# cross-compiled with zig cc from PyPI's ziglang, against glibc 2.17); on macOS, the sdist
# and the wheels for arm64 and x86_64 (Apple's clang; Go's darwin runtime links Apple's
# frameworks, so they cannot be built from Linux). Each wheel is built from the sdist, which
# proves the sdist builds; each is checked (auditwheel, the newest glibc symbol, the exports)
# and its binaries compared with the same build from the source tree.
set -euo pipefail
cd "$(dirname "$0")"
what="${1:-all}"

say() { echo "build.sh: $*" >&2; }
die() { say "$*"; exit 1; }

case "$what" in
  all|wheel|shared|registry|archive|dist) ;;
  *) die "unknown target $what (all, wheel, shared, registry, archive or dist)" ;;
esac

# The Go release go.mod asks for: an older go would try to download a newer toolchain.
go_min=$(sed -n 's/^go \([0-9]*\.[0-9]*\).*/\1/p' go/go.mod)
command -v go >/dev/null || die "Go >= $go_min is required to build from source (https://go.dev/dl/)"
go_have=$(GOTOOLCHAIN=local go env GOVERSION | sed 's/^go//')
if [[ "$(printf '%s\n%s\n' "$go_min" "$go_have" | sort -V | head -1)" != "$go_min" ]]; then
  die "Go >= $go_min is required to build from source, found $go_have (https://go.dev/dl/)"
fi

# A module cache that `rm -rf` can remove (Go makes it read-only by default), and binaries
# that do not depend on the path or the time they were built in: two builds of one commit
# give byte-identical liboci and oci-registry (see `dist`).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw -trimpath -buildvcs=false"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 315532800)}"
# No debug information for the C parts: it would carry the compiler's own paths (zig's
# headers under build/toolchain) into the library, which would then differ from clone to clone.
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g0}"

# Prints a line every 20 s while a long step runs, so a build under pip is not silent.
# pip hides a build backend's output unless -v: the lines also go to the terminal, if any.
progress_pid=
start_progress() {
  local label=$1 started=$SECONDS
  stop_progress
  say "$label"
  (
    tty=/dev/null
    if [[ ! -t 2 ]] && { : >/dev/tty; } 2>/dev/null; then tty=/dev/tty; fi
    while sleep 20; do
      line="$label ($((SECONDS - started)) s)"
      echo "build.sh: $line" >&2
      [[ $tty == /dev/tty ]] && echo "oci-client: $line" >/dev/tty
    done
  ) &
  progress_pid=$!
}
stop_progress() {
  if [[ -n "$progress_pid" ]]; then kill "$progress_pid" 2>/dev/null || true; wait "$progress_pid" 2>/dev/null || true; fi
  progress_pid=
}
trap stop_progress EXIT

goos=$(go env GOOS)
goarch=$(go env GOARCH)
ldflags="-s -w -buildid="
case "$goos" in
  darwin) ext=dylib
          # An @rpath install name lets the dylib be loaded from wherever it is installed.
          ldflags="$ldflags -extldflags=-Wl,-install_name,@rpath/liboci.dylib" ;;
  # -s -w strip only Go's part: the external linker strips the rest.
  linux)  ext=so; ldflags="$ldflags -extldflags=-Wl,--strip-all" ;;
  *) die "unsupported GOOS $goos (Linux and macOS only)" ;;
esac

build_shared() {
  local out="src/oci_client/liboci.$ext"
  if [[ -z "${CC:-}" ]] && ! command -v cc >/dev/null && ! command -v gcc >/dev/null; then
    die "a C compiler (cc) is required to build liboci with cgo"
  fi
  start_progress "compiling liboci.$ext for $goos/$goarch (go build, 1-3 min the first time)"
  (cd go && CGO_ENABLED=1 go build -buildmode=c-shared -ldflags "$ldflags" -o "../$out.tmp" ./cmd/liboci)
  stop_progress
  mv "$out.tmp" "$out"
  rm -f "$out.h" "$out.tmp.h" src/oci_client/liboci.h
  say "built $out"
}

build_registry() {
  # A separate program, not part of liboci: liboci is loaded into every worker process,
  # and one process can hold only one Go runtime.
  local out=src/oci_client/bin/oci-registry
  mkdir -p "$(dirname "$out")"
  start_progress "compiling oci-registry for $goos/$goarch"
  (cd go/registry && CGO_ENABLED=0 go build -ldflags "-s -w -buildid=" -o "../../$out.tmp" ./cmd/oci-registry)
  stop_progress
  mv "$out.tmp" "$out"
  say "built $out"
}

build_licenses() {
  # The license texts of every module compiled into the two binaries, read from the
  # binaries themselves (go version -m): a module without one fails the build. The tool
  # replaces the directory whole, and only when every module has its text.
  "${PYTHON:-python3}" tools/licenses.py --out src/oci_client/licenses "src/oci_client/liboci.$ext" src/oci_client/bin/oci-registry
  say "wrote src/oci_client/licenses"
}

download_modules() {
  start_progress "downloading Go modules"
  (cd go && go mod download) && (cd go/registry && go mod download)
  stop_progress
}

if [[ "$what" != dist ]]; then
  download_modules
  case "$what" in
    all|wheel) build_shared; build_registry; build_licenses ;;
    shared) build_shared ;;
    registry) build_registry ;;
  esac
  if [[ "$what" == all || "$what" == archive ]]; then
    mkdir -p build/native
    start_progress "compiling build/native/liboci.a"
    (cd go && CGO_ENABLED=1 go build -buildmode=c-archive -ldflags "-buildid=" -o ../build/native/liboci.a ./cmd/liboci)
    stop_progress
    say "built build/native/liboci.a and build/native/liboci.h"
  fi
  exit 0
fi

exec tools/dist.sh
