"""`zoo bench-serve`: the served model against the same artifact called in-process, in one run.

In-process: ``model([decode_image(body)])`` (the server decodes the same JPEG), one call at a time. Served: the same
body POSTed to /predict on a local Ray Serve with 1, 2, 4 replicas, first from one client (the latency ratio: what
HTTP, the proxy and the replica's queue add), then from 2 clients per replica (throughput). Every replica has the
same runtime threads as the in-process model. The in-process call is timed before and after the served rows; the
ratios are against the mean of the two (the load of a shared machine drifts)."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

URL = "http://127.0.0.1:{port}/predict"


def _stats(latencies: list[float], wall: float) -> dict:
    return {"requests": len(latencies), "req_per_s": len(latencies) / wall,
            "p50_ms": float(np.percentile(latencies, 50)) * 1e3, "p95_ms": float(np.percentile(latencies, 95)) * 1e3}


def in_process(model, body: bytes, requests_: int) -> dict:
    from .codec import decode_image
    model([decode_image(body)])  # warm-up
    times = []
    t0 = time.perf_counter()
    for _ in range(requests_):
        t = time.perf_counter()
        model([decode_image(body)])
        times.append(time.perf_counter() - t)
    return _stats(times, time.perf_counter() - t0)


def _in_worker(model, runtime, method, source, threads, body, requests_) -> dict:
    import zoo
    return in_process(zoo.load(model, runtime=runtime, method=method, source=source, threads=threads), body, requests_)


def served(url: str, body: bytes, requests_: int, clients: int) -> dict:
    import requests
    local = threading.local()

    def one(_):
        session = getattr(local, "session", None) or setattr(local, "session", requests.Session()) or local.session
        t = time.perf_counter()
        r = session.post(url, data=body, timeout=120)
        r.raise_for_status()
        return time.perf_counter() - t

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(2 * clients)))  # warm-up: every replica and connection
        t0 = time.perf_counter()
        times = list(pool.map(one, range(requests_)))
    return _stats(times, time.perf_counter() - t0)


def bench_serve(model: str, source: str | None, runtime: str, method: str | None, threads: int,
                replica_counts: list[int], requests_: int, port: int, image: str | None, out_json: str | None) -> list[dict]:
    import ray
    from ray import serve

    import zoo

    from .app import app_builder
    from .config import ServeSpec
    body = Path(image).read_bytes() if image else (Path(zoo.__file__).parent / "data" / "astronaut.jpg").read_bytes()
    local = _in_worker(model, runtime, method, source, threads, body, requests_)
    rows = [{"mode": "in-process", "replicas": 0, "clients": 1, **local}]
    served_rows = []
    ray.init(address="local", num_cpus=max(replica_counts) * threads, log_to_driver=False, include_dashboard=False,
             _node_ip_address="127.0.0.1")
    try:
        # the same in-process loop inside a Ray worker: a process like a replica's, without HTTP and Serve
        in_worker = ray.remote(num_cpus=threads)(_in_worker).remote(model, runtime, method, source, threads, body,
                                                                       requests_)
        rows.append({"mode": "in-worker", "replicas": 0, "clients": 1, **ray.get(in_worker)})
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        for n in replica_counts:
            spec = ServeSpec(model, runtime, method, source, threads, n)
            serve.run(app_builder(spec.args()), name="bench", route_prefix="/")
            for clients in sorted({1, 2 * n}):
                stats = served(URL.format(port=port), body, requests_, clients)
                served_rows.append({"mode": "served", "replicas": n, "clients": clients, **stats})
            serve.delete("bench")
    finally:
        serve.shutdown()
        ray.shutdown()
    # in-process again at the end: on a shared machine the load drifts, so ratios are taken against the mean of both
    again = _in_worker(model, runtime, method, source, threads, body, requests_)
    rows.append({"mode": "in-process", "replicas": 0, "clients": 1, **again})
    base = {k: (local[k] + again[k]) / 2 for k in ("p50_ms", "req_per_s")}
    for r in served_rows:
        rows.append({**r, "p50_x_in_process": r["p50_ms"] / base["p50_ms"],
                     "req_per_s_x_in_process": r["req_per_s"] / base["req_per_s"]})
    if out_json:
        Path(out_json).write_text(json.dumps({"model": model, "runtime": runtime, "method": method, "threads": threads,
                                              "rows": rows}, indent=1))
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'mode':10s} {'replicas':>8s} {'clients':>7s} {'req/s':>7s} {'p50 ms':>7s} {'p95 ms':>7s} "
             f"{'p50 x':>6s} {'req/s x':>7s}"]
    for r in rows:
        lines.append(f"{r['mode']:10s} {r['replicas']:8d} {r['clients']:7d} {r['req_per_s']:7.2f} {r['p50_ms']:7.1f} "
                     f"{r['p95_ms']:7.1f} " + (f"{r['p50_x_in_process']:6.2f} {r['req_per_s_x_in_process']:7.2f}"
                                                if "p50_x_in_process" in r else f"{'-':>6s} {'-':>7s}"))
    return "\n".join(lines)
