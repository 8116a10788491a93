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
ruff check src tests
ruff format --check src tests
mypy

echo "== pytest"
set +e
python -m pytest "$@"
rc=$?
set -e
# pytest's exit 5 ("no tests collected") must not pass for a green run.
exit "$rc"
