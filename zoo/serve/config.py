"""What a served application is (model, artifact, replicas, threads) and the Serve config file that deploys it.

No Ray import at module level: the CLI validates its arguments before Ray starts."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import ZooError
from ..core.manifest import RUNTIMES, resolve

IMPORT_PATH = "zoo.serve.app:app_builder"


@dataclass(frozen=True)
class ServeSpec:
    model: str
    runtime: str = "onnxruntime"
    method: str | None = None
    source: str | None = None    # store dir, mirror URL or hf://; must be reachable from every node
    threads: int = 1             # intra-op threads of each replica's runtime
    replicas: int = 1            # fixed count, or the initial count when autoscaling
    min_replicas: int | None = None
    max_replicas: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "model", resolve(self.model).name)  # unknown names fail here, with close matches
        if self.source and Path(self.source).exists():  # a store directory: the same path on every node
            object.__setattr__(self, "source", str(Path(self.source).resolve()))
        if self.runtime not in RUNTIMES:
            raise ZooError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        for key in ("threads", "replicas"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ZooError(f"{key} must be an integer >= 1, got {getattr(self, key)!r}")
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise ZooError("autoscaling needs both bounds: --min-replicas N --max-replicas M")
        if self.autoscaling and not (0 <= self.min_replicas <= self.max_replicas and self.max_replicas >= 1):
            raise ZooError(f"expected 0 <= min_replicas <= max_replicas and max_replicas >= 1, got "
                           f"{self.min_replicas} and {self.max_replicas}")

    @property
    def autoscaling(self) -> bool:
        return self.max_replicas is not None

    @classmethod
    def from_args(cls, args: dict) -> "ServeSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ZooError(f"unknown serve argument(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}")
        return cls(**args)

    def args(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def deployment_options(self) -> dict:
        """Options of the Serve deployment: replicas (or autoscaling bounds) and the CPUs each replica holds."""
        options: dict = {"ray_actor_options": {"num_cpus": self.threads}}
        if self.autoscaling:
            initial = min(max(self.replicas, self.min_replicas), self.max_replicas)
            options["autoscaling_config"] = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                                             "initial_replicas": initial}
        else:
            options["num_replicas"] = self.replicas
        return options

    @property
    def cpus_needed(self) -> int:
        return self.threads * (self.max_replicas if self.autoscaling else self.replicas)


def serve_config(spec: ServeSpec, host: str = "0.0.0.0", port: int = 8000, name: str | None = None) -> dict:
    """A Serve config for `serve deploy`: the app is built on the cluster by ``app_builder`` from ``spec``'s arguments.
    No working_dir (a cluster refuses a local one): the nodes import zoo from their own `pip install "zoo[serve]"`."""
    from ray.serve.schema import ServeDeploySchema
    config = {
        "proxy_location": "EveryNode",
        "http_options": {"host": host, "port": port},
        "applications": [{
            "name": name or spec.model, "route_prefix": "/", "import_path": IMPORT_PATH, "args": spec.args(),
            "runtime_env": {"env_vars": {"OMP_NUM_THREADS": str(spec.threads)}},
        }],
    }
    ServeDeploySchema.model_validate(config)  # Serve's own schema: what `serve deploy` will accept
    return config


def write_config(spec: ServeSpec, path: str | Path, host: str = "0.0.0.0", port: int = 8000) -> Path:
    import yaml

    from ..core.store import atomic_write
    text = "# deploy with: serve deploy " + str(path) + "\n" + yaml.safe_dump(serve_config(spec, host, port), sort_keys=False)
    atomic_write(Path(path), text.encode("utf-8"))
    return Path(path)
