"""Pull benchmark for oci-client against curl, crane, oras-py, skopeo and requests.

Run ``python -m bench.pull --help``; see ``bench/README.md``.
"""

import sys
from pathlib import Path

# The local registries and the pusher are test tooling (tests/oci_testing), not in the wheel.
_TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
