#!/usr/bin/env bash
# `./build.sh dist`: the sdist and every wheel this machine can build, into dist/.
#
# Linux: manylinux_2_17 wheels for x86_64 and aarch64. cgo is cross-compiled with zig cc
# (PyPI's ziglang) against glibc $GLIBC_BASELINE, whatever the glibc of this machine.
# macOS: wheels for arm64 and x86_64, with Apple's clang (Go's darwin runtime links Apple's
# frameworks, which only a Mac has).
#
# Every wheel is built from the sdist, which proves the sdist complete. Checks that fail the
# build: auditwheel must accept each Linux wheel under its tag; no glibc symbol newer than
# the baseline; every symbol of the ABI (src/oci_client/_abi.py) exported; the registry program executable
# and built for the wheel's CPU; the license texts present. Reproducibility: no path of this
# machine in a binary, and this machine's own target is built a second time, from the source
# tree with an empty Go build cache: its liboci and oci-registry must equal the wheel's.
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC_BASELINE=2.17       # manylinux2014: RHEL/CentOS 7, Ubuntu 14.04 and every later glibc
MACOS_BASELINE=12.0       # the oldest macOS Go 1.26 runs on
ZIGLANG_VERSION=0.17.0
AUDITWHEEL_VERSION=6.8.2
PYPA_BUILD_VERSION=1.3.0

say() { echo "dist: $*" >&2; }
short_hash() { "$py" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$1"; }
die() { say "$*"; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
[[ -n "$version" ]] || die "no version in pyproject.toml"

# The tools, pinned, in a virtualenv of their own (from PyPI: no system package needed).
toolchain=build/toolchain
stamp="ziglang==$ZIGLANG_VERSION auditwheel==$AUDITWHEEL_VERSION build==$PYPA_BUILD_VERSION"
if [[ "$(cat "$toolchain/stamp" 2>/dev/null)" != "$stamp" ]]; then
  say "installing the build tools ($stamp) into $toolchain"
  rm -rf "$toolchain"
  python3 -m venv "$toolchain"
  # shellcheck disable=SC2086
  "$toolchain/bin/python" -m pip install -q --disable-pip-version-check $stamp
  echo "$stamp" >"$toolchain/stamp"
fi
py="$PWD/$toolchain/bin/python"
# The zig binary itself, not `python -m ziglang`: pip's build isolation hides the toolchain's
# site-packages from every Python started under it.
zig=$("$py" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')

host=$(go env GOHOSTARCH)
case "$(uname -s)" in
  Linux) targets=("amd64 x86_64" "arm64 aarch64") ;;
  Darwin)
    targets=("arm64 arm64" "amd64 x86_64")
    export MACOSX_DEPLOYMENT_TARGET=$MACOS_BASELINE
    ;;
  *) die "unsupported OS $(uname -s)" ;;
esac

# Sets GOOS, GOARCH, CC and the wheel's platform tag for one target.
use_target() {
  local goarch=$1 arch=$2
  export GOARCH=$goarch
  case "$(uname -s)" in
    Linux)
      export GOOS=linux
      export CC="$zig cc -target $arch-linux-gnu.$GLIBC_BASELINE"
      plat="manylinux_${GLIBC_BASELINE/./_}_$arch"
      ;;
    Darwin)
      export GOOS=darwin
      export CC="clang -arch $arch -mmacosx-version-min=$MACOS_BASELINE"
      plat="macosx_${MACOS_BASELINE/./_}_$arch"
      ;;
  esac
}

rm -rf build/dist dist/oci_client-"$version"*
mkdir -p build/dist dist

# 1. This machine's target, from the tree: the license texts the sdist carries, and the
#    binaries the wheel built from the sdist must equal (an empty build cache, another path).
for t in "${targets[@]}"; do
  read -r goarch arch <<<"$t"
  [[ "$goarch" == "$host" ]] || continue
  say "building $arch from the source tree, with an empty Go build cache"
  use_target "$goarch" "$arch"
  cache=$(mktemp -d)
  GOCACHE=$cache ./build.sh wheel
  rm -rf "$cache"
  mkdir -p "build/dist/tree-$arch"
  cp "src/oci_client/liboci.$([[ $GOOS == darwin ]] && echo dylib || echo so)" src/oci_client/bin/oci-registry "build/dist/tree-$arch/"
done
unset GOOS GOARCH CC

# 2. The sdist: go/ (both modules), build.sh, tools/ and the license texts (MANIFEST.in).
say "building the sdist"
"$py" -m build --sdist --outdir dist . >build/dist/sdist.log 2>&1 || { cat build/dist/sdist.log; die "the sdist failed"; }
sdist="dist/oci_client-$version.tar.gz"
[[ -f "$sdist" ]] || die "no $sdist"

# 3. A wheel per target, from the sdist, each checked.
# The symbols of the ABI, from the module generated from go/abi (which `go test ./abi` holds
# the cgo file's //export lines to).
exports=$("$py" -c 'import runpy, sys; print(" ".join(runpy.run_path(sys.argv[1])["SYMBOLS"]))' src/oci_client/_abi.py)
[[ -n "$exports" ]] || die "no exports in src/oci_client/_abi.py"
for t in "${targets[@]}"; do
  read -r goarch arch <<<"$t"
  use_target "$goarch" "$arch"
  say "building the $plat wheel from the sdist"
  out="build/dist/$arch"
  mkdir -p "$out"
  "$py" -m pip wheel -q --disable-pip-version-check --no-deps -w "$out" \
    -C--build-option=--plat-name="$plat" "$sdist"
  wheel=$(ls "$out"/oci_client-"$version"-*.whl)
  case "$wheel" in *"-py3-none-$plat.whl") ;; *) die "unexpected wheel name $wheel" ;; esac
  unset GOOS GOARCH CC
  "$py" -m zipfile -e "$wheel" "$out/unpacked"
  pkg="$out/unpacked/oci_client"
  lib=$(ls "$pkg"/liboci.*)
  [[ -f "$pkg/licenses/MODULES.txt" ]] || die "$wheel lacks the license texts"
  ls "$out"/unpacked/oci_client-*.dist-info/licenses/LICENSE >/dev/null || die "$wheel lacks LICENSE"
  "$py" - "$wheel" "$arch" <<'PY'
import sys, zipfile
wheel, arch = sys.argv[1:]
# ELF e_machine, or the Mach-O CPU type, of each binary: built for the wheel's CPU.
expected = {"x86_64": (b"\x3e\x00", b"\x07\x00\x00\x01"), "aarch64": (b"\xb7\x00",), "arm64": (b"\x0c\x00\x00\x01",)}[arch]
with zipfile.ZipFile(wheel) as whl:
    for info in whl.infolist():
        name = info.filename
        if name == "oci_client/bin/oci-registry" or name.startswith("oci_client/liboci."):
            head = whl.read(name)[:20]
            cpu = head[18:20] if head[:4] == b"\x7fELF" else head[4:8]
            if cpu not in expected:
                sys.exit(f"dist: {name} in {wheel} is not built for {arch} ({cpu.hex()})")
    mode = whl.getinfo("oci_client/bin/oci-registry").external_attr >> 16
if mode & 0o111 != 0o111:
    sys.exit(f"dist: oci_client/bin/oci-registry is not executable in {wheel} (mode {mode:o})")
PY
  if [[ "$(uname -s)" == Linux ]]; then
    # The newest versioned glibc symbol liboci needs must not pass the baseline.
    newest=$(objdump -T "$lib" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    if [[ "$(printf '%s\n%s\n' "$newest" "$GLIBC_BASELINE" | sort -V | tail -1)" != "$GLIBC_BASELINE" ]]; then
      die "$lib needs GLIBC_$newest, newer than the baseline $GLIBC_BASELINE"
    fi
    for sym in $exports; do
      nm -D --defined-only "$lib" | grep -qw "$sym" || die "$lib lacks the export $sym"
    done
    # auditwheel names the oldest manylinux the binaries allow; ours must be that or newer.
    shown=$("$py" -m auditwheel show "$wheel" | tr '\n' ' ')
    allowed=$(sed -n 's/.*following platform tag: *"manylinux_\([0-9]*\)_\([0-9]*\)_'"$arch"'".*/\1.\2/p' <<<"$shown")
    if [[ -z "$allowed" || "$(printf '%s\n%s\n' "$allowed" "$GLIBC_BASELINE" | sort -V | tail -1)" != "$GLIBC_BASELINE" ]]; then
      echo "$shown" >&2
      die "auditwheel does not accept $(basename "$wheel") as $plat"
    fi
    say "auditwheel: $(basename "$wheel") fits manylinux_${allowed/./_}_$arch and later; newest glibc symbol GLIBC_$newest"
  else
    for sym in $exports; do
      nm -gU "$lib" | grep -qw "_$sym" || die "$lib lacks the export $sym"
    done
  fi
  # A path of this machine inside a binary (the toolchain's, the tree's) would make every
  # clone build different bytes.
  if grep -qaF "$PWD/" "$lib" "$pkg/bin/oci-registry"; then die "$(basename "$lib") or oci-registry holds the path $PWD/"; fi
  if [[ -d "build/dist/tree-$arch" ]]; then
    for f in "$(basename "$lib")" oci-registry; do
      b=$pkg/$f; [[ -f $b ]] || b=$pkg/bin/$f
      cmp -s "build/dist/tree-$arch/$f" "$b" \
        || die "$f is not reproducible: the tree build and the sdist build differ ($(short_hash "build/dist/tree-$arch/$f") $(short_hash "$b"))"
    done
    say "reproducible: $(basename "$lib") and oci-registry byte-identical from two builds (liboci $(short_hash "$lib"))"
  fi
  mv "$wheel" dist/
done

ls -l dist/oci_client-"$version"* >&2
