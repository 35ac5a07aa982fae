"""A two-node Ray cluster on 127.0.0.1 for the serving tests: every process started here, stopped by its process
group (never `ray stop`, which kills Ray processes by name, other people's too). Run it inside a network namespace
with only loopback (`unshare -n`), where Ray cannot advertise or bind another interface."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RAY = [sys.executable, "-m", "ray.scripts.scripts"]


class Cluster:
    def __init__(self, logs: Path, port: int = 6390, cpus: tuple[int, int] = (1, 1), dashboard_port: int = 8265):
        self.logs, self.port, self.cpus, self.dashboard_port = Path(logs), port, cpus, dashboard_port
        self.address = f"127.0.0.1:{port}"
        self.dashboard = f"http://127.0.0.1:{dashboard_port}"
        self.procs: list[subprocess.Popen] = []

    def _start(self, args: list[str], log: str) -> None:
        out = open(self.logs / log, "wb")
        self.procs.append(subprocess.Popen(RAY + ["start", *args, "--block"], stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def __enter__(self) -> "Cluster":
        """Starts both nodes and connects this process to the cluster as its driver."""
        import ray
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self._start(["--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
                         "--num-cpus", str(self.cpus[0]), "--dashboard-host", "127.0.0.1",
                         "--dashboard-port", str(self.dashboard_port)], "head.log")
            self.wait_for(lambda: b"Ray runtime started" in (self.logs / "head.log").read_bytes(), "the head node")
            ray.init(address=self.address, log_to_driver=False)
            self._start(["--address", self.address, "--node-ip-address", "127.0.0.1",
                         "--num-cpus", str(self.cpus[1])], "worker.log")
            self.wait_for(lambda: sum(n["Alive"] for n in ray.nodes()) == 2, "two live nodes")
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_for(self, condition, what: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"ray start exited {p.returncode}: see {self.logs}")
            if condition():
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not reach {what} in {timeout:.0f}s: see {self.logs}")

    def __exit__(self, *exc) -> None:
        import ray
        ray.shutdown()
        for p in reversed(self.procs):  # each `ray start` leads a process group holding its node's processes
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for p in reversed(self.procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
