"""The practical limit: a minimal hand-written scoring endpoint, for ``bench/serving.py``.

    .venv/bin/python bench/minimal_endpoint.py MODEL.pkl [--port 8080] [--workers 1]

Starlette + uvicorn + orjson, calling ``predict`` on an unpickled scikit-learn model: no
validation, no metrics, no logging, no micro-batching. It answers MLflow's scoring protocol for
the one payload shape the benchmark sends (``{"dataframe_split": {"columns": [...], "data": [[...]]}}``)
with ``{"predictions": [...]}``, and ``GET /ping``. The rows go to the model as one float64 array
(no DataFrame): the fastest way to call it, and what a hand-written endpoint would do.
"""

from __future__ import annotations

import argparse
import os
import pickle
import warnings
from typing import Any

MODEL_ENV = "MINIMAL_ENDPOINT_MODEL"


def create_app() -> Any:
    import numpy as np
    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    # The models were fitted on DataFrames; an array has no feature names, which sklearn would
    # warn about on every request.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    with open(os.environ[MODEL_ENV], "rb") as f:
        model = pickle.load(f)  # the benchmark's own file
    predict = model.predict

    async def invocations(request: Request) -> Response:
        doc = orjson.loads(await request.body())
        rows = np.asarray(doc["dataframe_split"]["data"], dtype=np.float64)
        out = {"predictions": predict(rows)}
        return Response(
            orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
        )

    async def ping(request: Request) -> Response:
        return Response(b"\n", media_type="application/json")

    return Starlette(
        routes=[
            Route("/invocations", invocations, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a pickled scikit-learn model")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    import uvicorn

    os.environ[MODEL_ENV] = os.path.abspath(args.model)
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": "warning",
        "access_log": False,
    }
    if args.workers <= 1:
        uvicorn.run(create_app(), **common)
    else:  # worker processes import the factory by name
        import sys

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        uvicorn.run("minimal_endpoint:create_app", factory=True, workers=args.workers, **common)


if __name__ == "__main__":
    main()
