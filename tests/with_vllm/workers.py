"""vLLM's parent and workers in miniature: ``python workers.py oci://REF CACHE MODEL_DIR fork|spawn``.
The parent resolves the model as the plugin does for EngineArgs, checks that liboci was
never loaded in it, then two workers load the weights into real modules; prints when each
worker's first and last tensor came (``times: FIRST LAST FIRST LAST``, wall-clock seconds),
then "workers: ok ok" when both got exactly the model's tensors."""

import multiprocessing
import sys
import time
from pathlib import Path
from types import SimpleNamespace

Outcome = tuple[str, float, float]  # "ok" or the error, when the first and the last tensor came


def load(ref: str, cache: str, model_dir: str, out: "multiprocessing.Queue[Outcome]") -> None:
    first = 0.0
    try:
        from test_loader_api import Flat, loader_for, tensors
        from vllm.plugins import load_general_plugins

        load_general_plugins()  # as vLLM does in each of its processes

        expected = tensors(Path(model_dir))
        module = Flat({k: v.shape for k, v in expected.items()})
        fill = module.load_weights

        def timed(weights):  # type: ignore[no-untyped-def]
            nonlocal first
            for i, item in enumerate(weights):
                if i == 0:
                    first = time.time()
                yield item

        module.load_weights = lambda weights: fill(timed(weights))
        loader_for(ref, Path(cache)).load_weights(module, SimpleNamespace(model=ref, quantization=None))
        same = all(module.params[k.replace(".", "__")].data.equal(v) for k, v in expected.items())
        out.put(("ok" if same else "tensors differ", first, time.time()))
    except BaseException as exc:
        out.put((f"{type(exc).__name__}: {exc}", first, time.time()))


if __name__ == "__main__":
    model, cache, model_dir, method = sys.argv[1:5]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from vllm.engine.arg_utils import EngineArgs

    from oci_client import _native

    args = EngineArgs(model=model, load_format="oci", download_dir=cache)
    args.create_model_config()
    if _native._lib is not None:
        sys.exit("the parent loaded liboci while resolving the model")
    ctx = multiprocessing.get_context(method)
    out = ctx.Queue()
    ref = args.model_loader_extra_config["oci_reference"]
    workers = [ctx.Process(target=load, args=(ref, cache, model_dir, out)) for _ in range(2)]
    for w in workers:
        w.start()
    results = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    print("times:", *(f"{t:.3f}" for _, first, last in results for t in (first, last)))
    print("workers:", *(r for r, _, _ in results))
