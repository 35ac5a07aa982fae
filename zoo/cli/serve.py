"""Ray Serve: `zoo serve`, `zoo bench-serve`."""
from __future__ import annotations


from .options import LOADABLE, RUNTIMES, count_arg


def add_serve(sub) -> None:
    s = sub.add_parser("serve", help="serve a model over HTTP on Ray Serve (or write a config for `serve deploy`)")
    s.add_argument("model", help="model name or alias")
    s.add_argument("--runtime", default="onnxruntime", choices=RUNTIMES)
    s.add_argument("--method", default=None, choices=LOADABLE)
    s.add_argument("--source", default=None, help="store, mirror URL or hf://ORG/REPO; every node must reach it")
    s.add_argument("--replicas", type=count_arg(1), default=1)
    s.add_argument("--min-replicas", type=count_arg(0), default=None, help="autoscaling lower bound (with --max-replicas)")
    s.add_argument("--max-replicas", type=count_arg(1), default=None, help="autoscaling upper bound")
    s.add_argument("--threads", type=count_arg(1), default=1, help="runtime threads (and CPUs held) per replica")
    s.add_argument("--host", default=None, help="HTTP host (default 127.0.0.1, in a --config-out file 0.0.0.0)")
    s.add_argument("--port", type=count_arg(1), default=8000)
    s.add_argument("--address", default=None, help="Ray cluster to serve on (default $RAY_ADDRESS or a local Ray)")
    s.add_argument("--config-out", metavar="FILE", help="write a Serve config for `serve deploy FILE` and exit")
    s.set_defaults(fn=cmd_serve)


def cmd_serve(a) -> int:
    from ..serve import require_ray
    from ..serve.config import ServeSpec
    require_ray("zoo serve")
    spec = ServeSpec(a.model, a.runtime, a.method, a.source, a.threads, a.replicas, a.min_replicas, a.max_replicas)
    if a.config_out:
        from ..serve.config import write_config
        print(f"wrote {write_config(spec, a.config_out, a.host or '0.0.0.0', a.port)}: "
              f"deploy it with `serve deploy {a.config_out}`")
        return 0
    from ..serve.run import serve_forever
    return serve_forever(spec, a.host or "127.0.0.1", a.port, a.address)


def add_bench_serve(sub) -> None:
    s = sub.add_parser("bench-serve", help="requests/s and p50/p95 served on Ray Serve (1, 2, 4 replicas) vs in-process")
    s.add_argument("model")
    s.add_argument("--source", default=None)
    s.add_argument("--runtime", default="onnxruntime", choices=RUNTIMES)
    s.add_argument("--method", default=None, choices=LOADABLE)
    s.add_argument("--threads", type=count_arg(1), default=1, help="runtime threads, in-process and per replica")
    s.add_argument("--replicas", type=count_arg(1), nargs="+", default=[1, 2, 4])
    s.add_argument("--requests", type=count_arg(1), default=40, help="timed requests per row (default 40)")
    s.add_argument("--port", type=count_arg(1), default=8011)
    s.add_argument("--image", help="JPEG/PNG to send (default: the shipped astronaut.jpg)")
    s.add_argument("--json", help="also write the figures as JSON here")
    s.set_defaults(fn=cmd_bench_serve)


def cmd_bench_serve(a) -> int:
    from ..serve import require_ray
    require_ray("zoo bench-serve")
    from ..serve.bench import bench_serve, table
    rows = bench_serve(a.model, a.source, a.runtime, a.method, a.threads, a.replicas, a.requests, a.port, a.image,
                       a.json)
    print(table(rows))
    return 0
