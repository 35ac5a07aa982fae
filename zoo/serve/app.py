"""The Ray Serve application: one deployment whose replicas each hold a model from `zoo.load` (verified, cached).

Routes: ``POST /predict`` (body: PNG/JPEG bytes or a .npy float array; query ``score_thresh``) -> detections as JSON;
``GET /health`` -> the artifact served and the replica's process id. A bad body or parameter is a 400 whose JSON
``error`` says what was expected."""
import asyncio  # no `from __future__ import annotations`: FastAPI reads the handlers' annotations as types
import os
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from ..core.store import payload
from ..errors import InputError, UnsupportedError, ZooError
from . import codec
from .config import ServeSpec

api = FastAPI(title="zoo detector")


@serve.deployment(name="ZooDetector")
@serve.ingress(api)
class ZooDetector:
    def __init__(self, spec: dict):
        from ..load.loader import load
        self.spec = ServeSpec.from_args(spec)
        if self.spec.runtime == "pytorch":
            import torch
            torch.set_num_threads(self.spec.threads)
        self.model = load(self.spec.model, runtime=self.spec.runtime, method=self.spec.method, source=self.spec.source,
                          threads=self.spec.threads)
        self.pool = ThreadPoolExecutor(1)  # one inference at a time per replica: threads are the runtime's

    @api.get("/health")
    def health(self) -> dict:
        art = self.model.info["artifact"]
        record = payload(art)
        return {"status": "ok", "model": self.model.info["model"], "runtime": art["runtime"], "method": art["method"],
                "sha256": record["sha256"], "weights": self.model.info["weights"]["kind"], "pid": os.getpid()}

    @api.post("/predict")
    async def predict(self, request: Request):
        body = await request.body()
        try:
            thresh = codec.parse_score_thresh(request.query_params.get("score_thresh"))
            image = codec.decode_image(body)
            det = await asyncio.get_running_loop().run_in_executor(self.pool, self.infer, image, thresh)
        except (InputError, UnsupportedError) as e:  # the request's fault: a bad body or threshold
            return JSONResponse({"error": str(e)}, status_code=400)
        except ZooError as e:
            return JSONResponse({"error": str(e)}, status_code=500)
        return JSONResponse(det, headers={"x-zoo-replica": str(os.getpid())})

    def infer(self, image, thresh) -> dict:
        # the Detector's own exact post-filter: torchvision's `scores > score_thresh`, refused below the artifact's
        return codec.to_json(self.model([image], score_thresh=thresh)[0], self.model.categories)


def app_builder(args: dict):
    """Serve's application builder (the config file's import_path): ``args`` are a ServeSpec's fields."""
    spec = ServeSpec.from_args(dict(args))
    return ZooDetector.options(**spec.deployment_options()).bind(spec.args())
