"""Serving on Ray Serve and building on Ray, for real: a two-node Ray cluster on 127.0.0.1 inside a network namespace
with only loopback (`unshare -n`, needs root), started and stopped by PID. One cluster per session runs every case
(tests/serve_cluster_check.py) and reports JSON; each test below asserts on its part. Plus the pieces that need no
cluster: request decoding, the score filter, mask RLE, the Serve config file."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, run_zoo

pytest.importorskip("ray.serve", reason="the serve extra: pip install -e '.[serve]'")

from zoo.errors import InputError, ZooError  # noqa: E402
from zoo.serve import codec  # noqa: E402
from zoo.serve.config import ServeSpec, serve_config  # noqa: E402

MODEL = "ssdlite320_mobilenet_v3_large"
# what the cluster builds, each method a Ray task spread over both nodes, compared with the lock: ssdlite's two
# TorchScript methods (seconds each; every file of both light models is compared with the lock by test_reproduce)
BUILT, BUILT_METHODS = [MODEL], ["tracing", "scripting"]


@pytest.fixture(scope="module")
def cluster_report(light_store, tmp_path_factory):
    """Everything that needs the cluster, in one run (~2 minutes). The namespace has its own network, not its own
    processes: the check script kills what it started."""
    work = tmp_path_factory.mktemp("ray-cluster")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(["unshare", "-n", sys.executable, str(REPO / "tests" / "serve_cluster_check.py"),
                           "--store", str(light_store), "--lock", str(REPO / "build" / "reference.lock.json"),
                           "--work", str(work), "--build", *BUILT,
                           *(x for m in BUILT_METHODS for x in ("--build-method", m))], capture_output=True, text=True, env=env,
                          timeout=1200)
    assert proc.returncode == 0 and proc.stdout.strip(), f"cluster check failed:\n{proc.stderr[-6000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in report.items() if k != "build"}, indent=1))
    return report


@pytest.mark.slow
def test_two_replicas_answer_concurrent_requests_like_zoo_load(cluster_report):
    """40 requests from 8 client threads (JPEG, PNG, .npy; every fourth with score_thresh): all answered, each
    equal to zoo.load's detections on the same decoded image, by both replicas, one on each node."""
    cli = cluster_report["cli"]
    assert cluster_report["nodes"] == 2
    assert len({r["node"] for r in cli["replicas"]}) == 2
    c = cli["concurrent"]
    assert c["ok"] == c["equal_to_zoo_load"] == c["requests"] == 40, (c["failed"], c["retried"])
    assert len(c["replica_pids"]) == 2
    assert cli["exit_code"] == 0 and cli["gone_after_exit"]  # Ctrl-C on `zoo serve` removes its application


@pytest.mark.slow
def test_a_killed_replica_is_replaced_and_only_requests_in_flight_are_lost(cluster_report):
    k = cluster_report["cli"]["kill"]
    assert k["replaced"], k
    assert k["wrong"] == 0
    assert k["lost"] <= k["clients"], k  # at most one per client thread: those in flight when the replica died
    print(f"killed replica {k['killed_pid']}: {k['lost']} of {k['requests']} requests lost "
          f"({k['in_flight_at_kill']} in flight), replaced in {k['replacement_wait_s']}s")


@pytest.mark.slow
def test_bad_requests_get_a_400_that_says_what_was_expected(cluster_report):
    bad = cluster_report["cli"]["bad"]
    assert {case["status"] for case in bad.values()} == {400}, bad
    assert "expected a PNG or JPEG image" in bad["text"]["error"]
    assert "empty request body" in bad["empty"]["error"]
    assert "divide uint8 pixels by 255" in bad["npy_uint8"]["error"]
    assert "HWC layout?" in bad["npy_hwc"]["error"]
    assert "score_thresh must be a number in [0, 1]" in bad["thresh"]["error"]


@pytest.mark.slow
def test_config_file_from_zoo_serve_deploys_onto_the_two_node_cluster(cluster_report):
    """`zoo serve --config-out FILE` then Ray's `serve deploy FILE`: two replicas, one per node, answers equal zoo.load's."""
    cfg = cluster_report["config"]
    assert cfg["config_written"] and cfg["deploy_rc"] == 0, cfg["deploy_output"]
    assert len({r["node"] for r in cfg["replicas"]}) == 2
    assert all(a["status"] == 200 and a["equal_to_zoo_load"] for a in cfg["answers"].values()), cfg["answers"]


@pytest.mark.slow
def test_distributed_build_is_byte_identical_to_the_lock(cluster_report):
    """`zoo build ssdlite --method tracing --method scripting --ray ADDRESS --out STORE`: every (model, method) a Ray
    task, all started at once, spread over both nodes; the weights, the replay reference and each method's model
    file equal to the lock in the tree (whatever lock that is), compared by zoo.build.reproduce as `zoo build --check`
    does."""
    b = cluster_report["build"]
    assert b["rc"] == 0, b["stdout"][-3000:] + b["stderr"][-2000:]
    assert b["problems"] == [], b["problems"]
    lock = json.loads((REPO / "build" / "reference.lock.json").read_text())
    lock_files = [p for m in BUILT for p in lock["models"][m]["files"] if not p.endswith(("README.md", "metadata.json"))
                  and (p.count("/") == 2 or p.split("/")[2] in BUILT_METHODS)]
    assert b["files"] == len(lock_files) == len(BUILT_METHODS) + 2  # a model file per method, weights, reference
    tasks = len(BUILT) * len(BUILT_METHODS)  # one per (model, method)
    assert f"ray: {tasks} task(s) on 2 node(s)" in b["stdout"], b["stdout"][-500:]


def _png(array_hwc: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(array_hwc).save(buf, format="PNG")
    return buf.getvalue()


def test_request_bodies_decode_to_the_models_input():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(codec.decode_image(_png(rgb)), rgb.transpose(2, 0, 1).astype(np.float32) / 255)
    arr = np.random.default_rng(1).random((3, 4, 6), dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, arr)
    assert np.array_equal(codec.decode_image(buf.getvalue()), arr)
    for body, says in [(b"", "empty request body"), (b"GIF? no", "neither PNG nor JPEG nor .npy"),
                       (_png(rgb)[:-30], "could not be decoded"), (b"\x93NUMPY garbage", "malformed .npy header"),
                       (_npy(rgb.astype(np.float32) / 255), r"shape \[5, 7, 3\]: expected .* \(HWC layout\? send array"),
                       (_npy(rgb), r"dtype uint8: .* \(divide uint8 pixels by 255\)")]:
        with pytest.raises(InputError, match=says):
            codec.decode_image(body)


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _npy_header(shape, dtype="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_hostile_bodies_are_400s_decided_before_decoding():
    """Issue 22: an 8000x8000 PNG (61 KiB of zeros) is refused from its header, in milliseconds and without the
    2.5 GiB decode; a .npy header claiming 224 GiB, or more bytes than the body has, is refused before allocating;
    formats other than PNG/JPEG are not decoded at all."""
    import time

    from PIL import Image
    buf = io.BytesIO()
    Image.new("L", (8000, 8000)).save(buf, format="PNG")
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"8000x8000 = 64000000 pixels, over the server's limit of 25000000"):
        codec.decode_image(buf.getvalue())
    assert time.perf_counter() - t0 < 1
    for header, says in [(_npy_header((3, 200_000, 100_000)), "over the server's limit"),
                         (_npy_header((3, 4, 4)), r"says \[3, 4, 4\] float32 \(192 bytes\) but the body holds 0"),
                         (_npy_header((3, 4, 4), "|O"), "dtype object"), (_npy_header((4, 4)), "shape"),
                         (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',}", "malformed .npy header")]:
        with pytest.raises(InputError, match=says):
            codec.decode_image(header)
    for fmt in ("GIF", "BMP", "TIFF", "WEBP"):
        other = io.BytesIO()
        Image.new("RGB", (4, 4)).save(other, format=fmt)
        with pytest.raises(InputError, match="neither PNG nor JPEG nor .npy"):
            codec.decode_image(other.getvalue())


def test_a_body_over_the_limit_is_refused_before_it_is_held():
    import asyncio

    class Request:
        def __init__(self, headers, chunks):
            self.headers, self.chunks, self.read = headers, chunks, 0

        async def stream(self):
            for c in self.chunks:
                self.read += 1
                yield c
    declared = Request({"content-length": str(512 << 20)}, [b"x" * 10])
    with pytest.raises(codec.BodyTooLarge, match="over the server's limit of 1000 bytes"):
        asyncio.run(codec.read_body(declared, 1000))
    assert declared.read == 0
    chunked = Request({}, [b"x" * 600] * 100)
    with pytest.raises(codec.BodyTooLarge):
        asyncio.run(codec.read_body(chunked, 1000))
    assert chunked.read == 2
    assert asyncio.run(codec.read_body(Request({}, [b"ab", b"c"]), 1000)) == b"abc"
    assert issubclass(codec.BodyTooLarge, InputError)


def test_score_thresh_parses_to_a_number_in_0_1():
    assert codec.parse_score_thresh("0.25") == 0.25 and codec.parse_score_thresh(None) is None
    for bad in ("1.5", "-0.1", "nan", "x"):
        with pytest.raises(InputError, match=r"score_thresh must be a number in \[0, 1\]"):
            codec.parse_score_thresh(bad)


def test_detections_become_json_with_names_and_masks_as_rle():
    from pycocotools import mask as mask_utils
    masks = np.zeros((2, 1, 6, 5), np.float32)
    masks[0, 0, 1:4, 2:5] = 0.8
    masks[1, 0, 0, 0] = 0.49
    det = {"boxes": np.array([[1.5, 2.25, 3.125, 4.0], [0, 0, 1, 1]], np.float32), "labels": np.array([1, 90]),
           "scores": np.array([0.75, 0.1], np.float32), "masks": masks}
    out = json.loads(json.dumps(codec.to_json(det, ["__background__", "person"])))
    assert out["label_names"] == ["person", "90"]  # a label past the category list is named by its number
    assert np.array_equal(np.asarray(out["boxes"], np.float32), det["boxes"])
    rles = [{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in out["masks"]]
    assert np.array_equal(mask_utils.decode(rles).transpose(2, 0, 1), masks[:, 0] >= 0.5)


def test_a_panoptic_segmentation_becomes_json_segments_with_rle():
    """A panoptic model's outputs: each segment with its segments_info columns and its pixels as RLE; the sem_seg
    logits not listed (megabytes); the instances as for any model."""
    from pycocotools import mask as mask_utils
    ids = np.zeros((4, 6), np.int32)
    ids[:2, :3], ids[2:, :] = 1, 2
    det = {"boxes": np.array([[0, 0, 3, 2]], np.float32), "labels": np.array([1]), "scores": np.array([0.9], np.float32),
           "sem_seg": np.zeros((3, 4, 6), np.float32), "panoptic_seg": ids,
           "segments_info": np.array([[1, 1, 1, 0, 6], [2, 2, 0, -1, 12]])}
    out = json.loads(json.dumps(codec.to_json(det, ["__background__", "person"])))
    assert "sem_seg" not in out and "panoptic_seg" not in out and "segments_info" not in out
    assert [(s["id"], s["category"], s["isthing"], s["instance"], s["area"]) for s in out["segments"]] == [
        (1, 1, True, 0, 6), (2, 2, False, -1, 12)]
    for s in out["segments"]:
        rle = {"size": s["rle"]["size"], "counts": s["rle"]["counts"].encode("ascii")}
        assert np.array_equal(mask_utils.decode(rle), (ids == s["id"]).astype(np.uint8))


def test_config_file_is_what_serve_deploy_accepts(tmp_path):
    """Checked against Serve's own schema when written; a relative store path is written absolute (nodes differ in
    their working directory)."""
    (tmp_path / "store").mkdir()
    run_zoo("serve", "ssdlite", "--source", "store", "--min-replicas", "1", "--max-replicas", "3",
            "--threads", "2", "--config-out", "serve.yaml", cwd=tmp_path)
    import yaml
    config = yaml.safe_load((tmp_path / "serve.yaml").read_text())
    app = config["applications"][0]
    assert app["import_path"] == "zoo.serve.app:app_builder" and "working_dir" not in app["runtime_env"]
    assert app["args"] == {"model": MODEL, "runtime": "onnxruntime", "source": str(tmp_path / "store"), "threads": 2,
                           "replicas": 1, "min_replicas": 1, "max_replicas": 3}
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8000}
    options = ServeSpec.from_args(app["args"]).deployment_options()
    assert options["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3, "initial_replicas": 1}
    assert options["ray_actor_options"] == {"num_cpus": 2}


def test_serve_arguments_are_checked_before_ray_starts(tmp_path):
    proc = run_zoo("serve", "ssdlit", "--config-out", tmp_path / "x.yaml", check=False)
    assert proc.returncode == 2 and "unknown model 'ssdlit'" in proc.stderr
    proc = run_zoo("serve", "ssdlite", "--max-replicas", "2", "--config-out", tmp_path / "x.yaml", check=False)
    assert proc.returncode == 2 and "autoscaling needs both bounds" in proc.stderr
    with pytest.raises(ZooError, match="unknown serve argument"):
        ServeSpec.from_args({"model": "ssdlite", "replica": 2})
    with pytest.raises(ZooError, match="min_replicas <= max_replicas"):
        serve_config(ServeSpec("ssdlite", min_replicas=3, max_replicas=2))
    assert not (tmp_path / "x.yaml").exists()


def test_import_zoo_does_not_import_ray():
    code = "import sys, zoo, zoo.cli; print(sorted(m for m in ('ray', 'torch', 'fastapi') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
