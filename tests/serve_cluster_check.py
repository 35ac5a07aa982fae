"""The serving and distributed-build cases on a two-node Ray cluster, run by tests/test_serve.py inside a network
namespace with only loopback (``unshare -n python tests/serve_cluster_check.py ...``); prints a JSON report the tests
assert on. Every Ray process is started here and stopped by its process group (see ray_cluster.Cluster)."""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ray_cluster import Cluster  # noqa: E402

MODEL = "ssdlite320_mobilenet_v3_large"
URL = "http://127.0.0.1:8000"
THRESH = 0.3


def zoo(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo.cli", *map(str, args)], capture_output=True, text=True, **kw)


def bodies() -> dict[str, bytes]:
    """The shipped JPEG, a PNG and a .npy array of seeded images of other sizes."""
    from importlib.resources import files

    from PIL import Image
    rng = np.random.default_rng(7)
    png = io.BytesIO()
    Image.fromarray((rng.random((240, 320, 3)) * 255).astype(np.uint8)).save(png, format="PNG")
    npy = io.BytesIO()
    np.save(npy, rng.random((3, 200, 260), dtype=np.float32))
    return {"jpeg": (files("zoo") / "data" / "astronaut.jpg").read_bytes(), "png": png.getvalue(), "npy": npy.getvalue()}


def expected(store: str, images: dict[str, bytes]) -> dict[str, dict]:
    """zoo.load's answers in this process, on the images as the server decodes them, with the replicas' 1 thread."""
    import zoo
    from zoo.serve.codec import decode_image
    model = zoo.load(MODEL, source=store, threads=1)
    return {k: model([decode_image(b)])[0] for k, b in images.items()}


def same(answer: dict, want: dict, thresh: float | None) -> bool:
    keep = want["scores"] > np.float32(thresh) if thresh is not None else slice(None)  # torchvision's rule
    return (np.array_equal(np.asarray(answer["boxes"], np.float32).reshape(-1, 4), want["boxes"][keep])
            and np.array_equal(np.asarray(answer["scores"], np.float32), want["scores"][keep])
            and np.array_equal(np.asarray(answer["labels"], np.int64), want["labels"][keep]))


RETRY = (502, 503, 504)  # a gateway's "try again": what Serve's proxy answers while no replica can take a request


def only_methods(lock: dict, methods: list[str]) -> dict:
    """A lock's files of the given methods (their model files, the weights and the replay reference); all of them
    when no method is given. A build of some methods has a card of its own (it lists the methods the store holds) and
    metadata of its own (it records the command, `--method` included: docs/reproducibility.md)."""
    def keep(path: str) -> bool:
        parts = path.split("/")
        return not methods or (parts[-1] not in ("README.md", "metadata.json") and (len(parts) == 3 or parts[2] in methods))
    return {**lock, "models": {m: {**e, "files": {p: d for p, d in e["files"].items() if keep(p)}}
                               for m, e in lock["models"].items()}}


def post(kind: str, body: bytes, thresh: float | None, timeout: float = 60) -> requests.Response:
    params = {"score_thresh": thresh} if thresh is not None else {}
    return requests.post(f"{URL}/predict", data=body, params=params, timeout=timeout)


def replicas() -> list[dict]:
    from ray.util.state import list_actors
    return [{"pid": a.pid, "node": a.node_id} for a in list_actors(filters=[("state", "=", "ALIVE")], limit=1000)
            if "ZooDetector" in a.class_name]


def replicas_if(condition) -> list[dict] | None:
    now = replicas()
    return now if condition(now) else None


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except requests.RequestException:
            pass
        time.sleep(1)
    raise TimeoutError(f"{what} not within {timeout:.0f}s")


def ready(n: int, started: Path | None = None) -> list[dict]:
    """`zoo serve` says it serves (when its output is ``started``), n live replicas answer the health route."""
    if started:
        wait_until(lambda: b"serving " in started.read_bytes(), 240, f"`zoo serve` printing 'serving' in {started}")
    wait_until(lambda: requests.get(f"{URL}/health", timeout=5).status_code == 200, 240, "GET /health -> 200")
    return wait_until(lambda: replicas_if(lambda r: len(r) == n), 120, f"{n} live replicas")


def concurrent_requests(images, want, n: int = 40, clients: int = 8) -> dict:
    kinds = [(list(images)[i % len(images)], THRESH if i % 4 == 3 else None) for i in range(n)]

    retried = []

    def one(job):
        kind, thresh = job
        r = post(kind, images[kind], thresh)
        if r.status_code in RETRY:  # the proxy says "not now" (no replica free or ready): a client tries again
            retried.append(f"{r.status_code} {r.text[:300]}")
            time.sleep(1)
            r = post(kind, images[kind], thresh)
        return (r.status_code, r.headers.get("x-zoo-replica"),
                r.status_code == 200 and same(r.json(), want[kind], thresh), f"{kind}: {r.status_code} {r.text[:300]}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, kinds))
    return {"requests": n, "clients": clients, "ok": sum(r[0] == 200 for r in results),
            "equal_to_zoo_load": sum(r[2] for r in results), "replica_pids": sorted({r[1] for r in results if r[1]}),
            "failed": [r[3] for r in results if not r[2]], "retried": retried,
            "seconds": round(time.perf_counter() - t0, 2)}


def kill_a_replica(images, want, n: int = 40, clients: int = 4) -> dict:
    """A client loop of n requests from `clients` threads; one replica is SIGKILLed after 8 answers."""
    before = replicas()
    victim = before[0]["pid"]
    lock, state = threading.Lock(), {"next": 0, "done": 0, "in_flight": 0, "lost": 0, "wrong": 0, "at_kill": None}
    errors: list[str] = []
    kind = "jpeg"

    def client():
        while True:
            with lock:
                if state["next"] >= n:
                    return
                state["next"] += 1
                state["in_flight"] += 1
            try:
                r = post(kind, images[kind], None)
                good = r.status_code == 200
                state["wrong"] += good and not same(r.json(), want[kind], None)  # one int add: atomic under the GIL
                if not good:
                    errors.append(f"{r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                good = False
                errors.append(repr(e)[:200])
            with lock:
                state["in_flight"] -= 1
                state["done"] += 1
                state["lost"] += not good
                if state["done"] == 8 and state["at_kill"] is None:
                    state["at_kill"] = state["in_flight"]
                    os.kill(victim, signal.SIGKILL)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t0 = time.monotonic()
    after = wait_until(lambda: replicas_if(lambda r: len(r) == len(before) and victim not in {x["pid"] for x in r}),
                       120, "a replacement replica")
    return {"requests": n, "clients": clients, "killed_pid": victim, "in_flight_at_kill": state["at_kill"],
            "lost": state["lost"], "wrong": state["wrong"], "errors": errors[:5],
            "replaced": victim not in {x["pid"] for x in after} and len(after) == len(before),
            "replacement_wait_s": round(time.monotonic() - t0, 1)}


def bad_inputs() -> dict:
    npy_int, npy_hwc = io.BytesIO(), io.BytesIO()
    np.save(npy_int, np.zeros((3, 8, 8), np.uint8))
    np.save(npy_hwc, np.zeros((8, 8, 3), np.float32))
    cases = {"text": (b"this is not an image", None), "empty": (b"", None), "npy_uint8": (npy_int.getvalue(), None),
             "npy_hwc": (npy_hwc.getvalue(), None), "thresh": (bodies()["jpeg"], "high")}
    out = {}
    for name, (body, thresh) in cases.items():
        r = requests.post(f"{URL}/predict", data=body, params={"score_thresh": thresh} if thresh else {}, timeout=60)
        is_json = r.headers.get("content-type", "").startswith("application/json")
        out[name] = {"status": r.status_code, "error": r.json().get("error") if is_json else r.text[:300]}
    return out


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def served_by_cli(cluster: Cluster, store: str, images, want, logs: Path) -> dict:
    output = open(logs / "zoo-serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "zoo.cli", "serve", MODEL, "--source", store, "--replicas", "2",
                             "--host", "0.0.0.0", "--port", "8000", "--address", cluster.address],
                            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        log("zoo serve started")
        report = {"replicas": ready(2, logs / "zoo-serve.log")}
        log("ready", report)
        report["concurrent"] = concurrent_requests(images, want)
        report["bad"] = bad_inputs()
        report["kill"] = kill_a_replica(images, want)
    except BaseException:
        import traceback
        log(traceback.format_exc())
        raise
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            report_rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            report_rc = proc.wait()
    report["exit_code"] = report_rc
    report["gone_after_exit"] = wait_until(lambda: not replicas(), 60, "replicas removed") if report_rc == 0 else False
    return report


def deployed_from_config(cluster: Cluster, store: str, images, want, work: Path) -> dict:
    config = work / "serve.yaml"
    written = zoo("serve", MODEL, "--source", store, "--replicas", "2", "--port", "8000", "--config-out", config)
    serve_cli = Path(sys.executable).with_name("serve")  # Ray's own CLI, installed beside this Python
    deploy = subprocess.run([str(serve_cli), "deploy", str(config), "--address", cluster.dashboard],
                            capture_output=True, text=True)
    report = {"config_written": written.returncode == 0, "deploy_rc": deploy.returncode,
              "deploy_output": (deploy.stdout + deploy.stderr)[-1500:]}
    if deploy.returncode == 0:
        report["replicas"] = ready(2)
        answers = {k: post(k, b, None) for k, b in images.items()}
        report["answers"] = {k: {"status": r.status_code, "equal_to_zoo_load": r.status_code == 200
                                 and same(r.json(), want[k], None), "text": "" if r.ok else r.text[:500]}
                             for k, r in answers.items()}
    return report


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", required=True)
    p.add_argument("--lock", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--build", nargs="*", default=[], help="models to build with --ray and compare with the lock")
    p.add_argument("--build-method", action="append", default=[], help="only these methods (repeat)")
    a = p.parse_args()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Ray 2.60 turns token auth on by itself once ~/.ray/auth_token exists (any local ray.init makes one), and then
    # drivers and the CLI need RAY_AUTH_MODE=token too; this cluster is reachable from loopback alone, so: off, for
    # every process started from here
    os.environ["RAY_AUTH_MODE"] = "disabled"
    work = Path(a.work)
    images = bodies()
    want = expected(a.store, images)
    report: dict = {}
    t0 = time.monotonic()
    with Cluster(work / "ray") as cluster:
        import ray
        report["cluster_start_s"] = round(time.monotonic() - t0, 1)
        if a.build:
            t = time.monotonic()
            # every (model, method) at once, then compared with the lock's files (those of the methods built)
            methods = [x for m in a.build_method for x in ("--method", m)]
            build = zoo("build", *a.build, *methods, "--ray", cluster.address, "--out", work / "built", "--quiet")
            from zoo.build.reproduce import compare, lock_of
            lock = only_methods(json.loads(Path(a.lock).read_text()), a.build_method)
            built = only_methods(lock_of(work / "built"), a.build_method) if build.returncode == 0 else {"models": {}}
            report["build"] = {"rc": build.returncode, "stdout": build.stdout[-4000:], "stderr": build.stderr[-2000:],
                               "seconds": round(time.monotonic() - t, 1),
                               "files": sum(len(built["models"].get(m, {}).get("files", {})) for m in a.build),
                               "problems": compare(lock, built, a.build).problems if build.returncode == 0
                               else ["build failed"]}
        report["nodes"] = len([n for n in ray.nodes() if n["Alive"]])
        t = time.monotonic()
        report["cli"] = served_by_cli(cluster, a.store, images, want, work)
        report["cli"]["seconds"] = round(time.monotonic() - t, 1)
        log(json.dumps(report["cli"]))
        t = time.monotonic()
        report["config"] = deployed_from_config(cluster, a.store, images, want, work)
        report["config"]["seconds"] = round(time.monotonic() - t, 1)
    report["total_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        import traceback
        log(traceback.format_exc())
        raise
