#!/usr/bin/env bash
# Every check and test of the project: builds the Go library, then Go
# (gofmt, vet, unit tests), Python (ruff, mypy) and the pytest suite against
# real registries. Extra arguments go to pytest. Run after
# `pip install -e '.[test]'` (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

# The published artifacts, checked (tools/dist.sh): the sdist and the manylinux wheels, built
# from the sdist with zig cc, each accepted by auditwheel, and this machine's target built twice
# and compared byte for byte. It leaves this machine's library and registry program in
# src/oci_client for the editable install; then the static archive.
./build.sh dist
./build.sh archive

# go/registry is a module of its own (the registry program), so ./... in go/ skips it.
# The tests run under the race detector only (cgo, hence gcc): the same tests, about 50 s
# instead of 26 s warm, and a plain run on top would find nothing the race run does not.
for mod in go go/registry; do
  echo "== go ($mod): gofmt, vet, test -race"
  unformatted=$(cd "$mod" && gofmt -l .)
  if [[ -n "$unformatted" ]]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
  (cd "$mod" && go vet ./... && go test -race -count=1 ./...)
done

echo "== python: ruff, mypy"
ruff check src tests bench tools
ruff format --check src tests bench tools
mypy

echo "== pytest"
set +e
python -m pytest "$@"
rc=$?
set -e
# pytest's exit 5 ("no tests collected") must not pass for a green run.
if [[ "$rc" != 0 ]]; then exit "$rc"; fi

wheel=$(ls dist/oci_client-*-manylinux_*_x86_64.whl)
echo "== aarch64: the wheel installed and run under qemu-user in an arm64 Debian root (.ci/arm64-qemu)"
.ci/arm64-qemu "$(ls dist/oci_client-*-manylinux_*_aarch64.whl)" "$(command -v python)"

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
