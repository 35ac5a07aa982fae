"""`zoo serve`: start (or join) Ray, run the application, keep it up until interrupted."""
from __future__ import annotations

import os
import signal
import threading

from ..core import settings
from .config import ServeSpec


def start(spec: ServeSpec, host: str, port: int, address: str | None, name: str | None = None) -> str:
    """Run the application on Ray Serve (joining the cluster at ``address``, else $RAY_ADDRESS, else a local Ray);
    returns the application's name."""
    import ray
    from ray import serve

    from .app import app_builder
    if address or settings.ray_address():
        ray.init(address=address or None, log_to_driver=False)
    else:  # a local Ray with enough logical CPUs for the replicas asked (their threads share the real cores)
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, spec.cpus_needed), log_to_driver=False)
    serve.start(http_options={"host": host, "port": port})
    name = name or spec.model
    serve.run(app_builder(spec.args()), name=name, route_prefix="/")
    return name


def serve_forever(spec: ServeSpec, host: str, port: int, address: str | None) -> int:
    from ray import serve
    name = start(spec, host, port, address)
    shown = "127.0.0.1" if host == "0.0.0.0" else host
    print(f"serving {spec.model} ({spec.runtime}/{spec.method or 'default'}) on http://{shown}:{port}/predict "
          f"(health: /health); Ctrl-C stops it", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.delete(name)
    return 0
