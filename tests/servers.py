"""Real servers on 127.0.0.1 for the distribution tests: nginx (static, Range), a fault-injecting server, olah (Hub)."""
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


class Nginx:
    """nginx serving ``root``; its access log records each request's Range header and status."""

    def __init__(self, root: Path, workdir: Path, rate: str = "0"):
        self.root, self.workdir, self.port = Path(root), Path(workdir), free_port()
        self.log = self.workdir / "access.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        (self.workdir / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log;
events {{ worker_connections 64; }}
http {{
  log_format ranges '$request_method $uri $status range=$http_range bytes=$body_bytes_sent';
  access_log {self.log} ranges;
  client_body_temp_path {self.workdir}; proxy_temp_path {self.workdir}; fastcgi_temp_path {self.workdir};
  uwsgi_temp_path {self.workdir}; scgi_temp_path {self.workdir};
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
    limit_rate {rate};
  }}
}}
""")
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Nginx":
        self.proc = subprocess.Popen([nginx_binary(), "-c", str(self.workdir / "nginx.conf"), "-p", str(self.workdir),
                                      "-g", "daemon off;"], stderr=subprocess.PIPE)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def requests(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


class FaultServer:
    """Serves files from ``root`` with Range support (416 for a range starting at or past the end), misbehaving as
    told: per path, a list of faults consumed one per request ('500', 'stall', 'truncate', 'badrange': a 206 whose
    Content-Range starts at 0 whatever was asked), or ``always`` a fault for every request."""

    def __init__(self, root: Path, stall_seconds: float = 60):
        self.root, self.faults, self.always, self.log = Path(root), {}, None, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.lstrip("/")
                server.log.append((path, self.headers.get("Range")))
                queue = server.faults.get(path, [])
                fault = server.always or (queue.pop(0) if queue else None)
                if fault == "500":
                    self.send_error(500)
                    return
                if fault == "stall":
                    time.sleep(stall_seconds)
                    return
                f = server.root / path
                if not f.is_file():
                    self.send_error(404)
                    return
                data = f.read_bytes()
                start = 0
                if self.headers.get("Range"):
                    start = 0 if fault == "badrange" else int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if fault == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Olah:
    """olah, a self-hosted Hugging Face Hub mirror, serving local git repositories offline (models/ORG/REPO)."""

    def __init__(self, mirrors: Path, workdir: Path):
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "olah.toml"
        self.config.write_text(f"""[basic]
host = "127.0.0.1"
port = {self.port}
ssl-key = ""
ssl-cert = ""
repos-path = "{workdir / 'repos'}"
cache-size-limit = ""
cache-clean-strategy = "LRU"
hf-scheme = "https"
hf-netloc = "huggingface.co"
hf-lfs-netloc = "cdn-lfs.huggingface.co"
mirror-scheme = "http"
mirror-netloc = "127.0.0.1:{self.port}"
mirror-lfs-netloc = "127.0.0.1:{self.port}"
mirrors-path = ["{mirrors}"]

[accessibility]
offline = true
""")
        self.proc = None
        self.workdir = workdir

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Olah":
        exe = shutil.which("olah-cli")
        self.proc = subprocess.Popen([exe, "-c", str(self.config)], cwd=self.workdir,
                                     stdout=open(self.workdir / "olah.log", "wb"), stderr=subprocess.STDOUT)
        wait_port(self.port, 60)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
