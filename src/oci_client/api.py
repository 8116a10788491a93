"""Module functions: ``oci_client.pull_model(ref)`` and friends are the methods
of one :class:`Client` with default settings, as huggingface_hub's module
functions are those of one ``HfApi``: each signature and docstring is the
method's. For other settings (``timeout``, ``ca_file``, ``insecure_registries``,
``retries``, ``connections``, ...) make a :class:`Client`."""

from __future__ import annotations

from .client import Client

__all__ = [
    "cache_list",
    "cache_prune",
    "cache_remove",
    "cache_verify",
    "export_model",
    "inspect",
    "pull",
    "pull_model",
    "push_model",
]

# It holds settings only: nothing is loaded until a first call, and calls read
# os.environ as it is then.
_default = Client()

pull = _default.pull
pull_model = _default.pull_model
push_model = _default.push_model
inspect = _default.inspect
export_model = _default.export_model
cache_list = _default.cache_list
cache_remove = _default.cache_remove
cache_prune = _default.cache_prune
cache_verify = _default.cache_verify
