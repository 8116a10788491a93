#!/usr/bin/env bash
# Every check and test of the project: builds the Go library, then Go
# (gofmt, vet, unit tests), Python (ruff, mypy) and the pytest suite against
# real registries. Extra arguments go to pytest. Run after
# `pip install -e '.[test]'` (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

./build.sh all

# go/registry is a module of its own (the registry program), so ./... in go/ skips it.
for mod in go go/registry; do
  echo "== go ($mod): gofmt, vet, test"
  unformatted=$(cd "$mod" && gofmt -l .)
  if [[ -n "$unformatted" ]]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
  (cd "$mod" && go vet ./... && go test -count=1 ./...)
done

echo "== python: ruff, mypy"
ruff check src tests bench
ruff format --check src tests bench
mypy

echo "== packaging: a platform wheel with the library, its exports and the registry program"
rm -rf build/wheel
python -m pip wheel -q --no-deps -w build/wheel .
wheel=$(ls build/wheel/oci_client-*.whl)
case "$wheel" in *-none-any.whl) echo "wheel is tagged pure: $wheel"; exit 1 ;; esac
rm -rf build/wheel/unpacked && python -m zipfile -e "$wheel" build/wheel/unpacked
lib=$(ls build/wheel/unpacked/oci_client/liboci.*)
for sym in PullManifest PullBlob PullBlobs PullModel InspectModel CacheList CacheRemove CachePrune CacheSync PushModel TestAuthentication CancelOperation OperationProgress FreeString; do
  if command -v nm >/dev/null && [[ "$(uname -s)" == Linux ]]; then
    nm -D --defined-only "$lib" | grep -qw "$sym" || { echo "$lib lacks export $sym"; exit 1; }
  fi
done
# The mode as the wheel records it, since an unpacker may not restore it.
python - "$wheel" <<'PY'
import sys, zipfile
name = "oci_client/bin/oci-registry"
with zipfile.ZipFile(sys.argv[1]) as whl:
    try:
        mode = whl.getinfo(name).external_attr >> 16
    except KeyError:
        sys.exit(f"the wheel lacks {name}")
if mode & 0o111 != 0o111:
    sys.exit(f"{name} is not executable in the wheel (mode {mode:o})")
PY
echo "ok: $(basename "$wheel")"

echo "== pytest"
set +e
python -m pytest "$@"
rc=$?
set -e
# pytest's exit 5 ("no tests collected") must not pass for a green run.
if [[ "$rc" != 0 ]]; then exit "$rc"; fi

# The vLLM plugin, in the two vLLM environments (.ci/vllm-envs builds them the first time:
# several GB and some minutes; OCI_CLIENT_SKIP_VLLM=1 skips this stage, never in CI).
if [[ "${OCI_CLIENT_SKIP_VLLM:-}" == 1 && "${CI:-}" != true ]]; then
  echo "== vllm: skipped (OCI_CLIENT_SKIP_VLLM=1)"
  exit 0
fi
echo "== vllm: the plugin against vLLM's loader API and a real CPU engine"
declare -A envs
while IFS='=' read -r name dir; do envs[$name]=$dir; done < <(.ci/vllm-envs all)
for name in api engine; do
  py="${envs[$name]}/bin/python"
  "$py" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
  marker="not engine"; [[ "$name" == engine ]] && marker=engine
  echo "-- $name: $("$py" -c 'import vllm; print("vllm", vllm.__version__)')"
  (cd tests/with_vllm && VLLM_TARGET_DEVICE=cpu "$py" -m pytest -q -p no:cacheprovider -m "$marker")
done
