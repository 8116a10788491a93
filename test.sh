#!/usr/bin/env bash
# Every check and test of the project: builds the Go library, then Go
# (gofmt, vet, unit tests), Python (ruff, mypy) and the pytest suite against
# real registries. Extra arguments go to pytest. Run after
# `pip install -e '.[test]'` (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

./build.sh all

echo "== go: gofmt, vet, test"
unformatted=$(cd go && gofmt -l .)
if [[ -n "$unformatted" ]]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
(cd go && go vet ./... && go test -count=1 ./...)

echo "== python: ruff, mypy"
ruff check src tests bench
ruff format --check src tests bench
mypy

echo "== packaging: a platform wheel with the library and its exports"
rm -rf build/wheel
python -m pip wheel -q --no-deps -w build/wheel .
wheel=$(ls build/wheel/oci_client-*.whl)
case "$wheel" in *-none-any.whl) echo "wheel is tagged pure: $wheel"; exit 1 ;; esac
rm -rf build/wheel/unpacked && python -m zipfile -e "$wheel" build/wheel/unpacked
lib=$(ls build/wheel/unpacked/oci_client/liboci.*)
for sym in PullManifest PullBlob PullBlobs PullModel InspectModel CacheList CacheRemove CachePrune CacheSync TestAuthentication CancelOperation OperationProgress FreeString; do
  if command -v nm >/dev/null && [[ "$(uname -s)" == Linux ]]; then
    nm -D --defined-only "$lib" | grep -qw "$sym" || { echo "$lib lacks export $sym"; exit 1; }
  fi
done
echo "ok: $(basename "$wheel")"

echo "== pytest"
set +e
python -m pytest "$@"
rc=$?
set -e
# pytest's exit 5 ("no tests collected") must not pass for a green run.
exit "$rc"
