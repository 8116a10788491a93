"""Pull benchmark for oci-client against curl, crane, oras-py, skopeo and requests.

Run ``python -m bench.pull --help``; see ``bench/README.md``.
"""
