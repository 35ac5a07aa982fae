"""HTTP downloads: timeouts, bounded retries with backoff (urllib3 Retry), Range resume, a progress bar, and a
file that appears under its final name only once its sha256 matches. (zoo/load/sources/http.py is the mirror source that
uses it.)"""
from __future__ import annotations

import os
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import IntegrityError, NotAvailableError, ZooError
from ..core.store import sha256_file

CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 30.0
RETRIES = 4


def http_timeout() -> tuple[float, float]:
    """(connect, read) seconds; ``ZOO_HTTP_TIMEOUT`` sets the read timeout (seconds without a byte), read at each use."""
    text = os.environ.get("ZOO_HTTP_TIMEOUT")
    if text is None:
        return CONNECT_TIMEOUT, READ_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ZooError(f"ZOO_HTTP_TIMEOUT must be a number of seconds > 0 (like 30), got {text!r}: fix or unset it")
    return CONNECT_TIMEOUT, value


def session(retries: int = RETRIES, backoff: float = 0.5) -> requests.Session:
    s = requests.Session()
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET", "HEAD"}),
                  raise_on_status=False)
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    s.headers["User-Agent"] = "zoo-model-zoo"
    return s


def get_bytes(url: str, sess: requests.Session | None = None, timeout: tuple[float, float] | None = None) -> bytes:
    sess = sess or session()
    try:
        r = sess.get(url, timeout=timeout or http_timeout())
    except requests.RequestException as e:
        raise NotAvailableError(f"cannot fetch {url}: {e}") from None
    if r.status_code != 200:
        raise NotAvailableError(f"cannot fetch {url}: HTTP {r.status_code}")
    return r.content


def _resumed_at(r: requests.Response) -> int | None:
    """The first byte a 206 response carries (its Content-Range), or None when the header is missing or malformed."""
    unit, _, spec = r.headers.get("Content-Range", "").partition(" ")
    first = spec.split("-", 1)[0]
    return int(first) if unit == "bytes" and first.isdigit() else None


def download(url: str, dest: str | Path, sha256: str, size: int | None = None, sess: requests.Session | None = None,
             progress: bool = True, timeout: tuple[float, float] | None = None, attempts: int = 3,
             desc: str | None = None) -> Path:
    """Download ``url`` to ``dest``; ``sha256`` is the full digest or a prefix (as torchvision's file names carry).

    Bytes go to ``dest.part`` first; an interrupted download resumes from there with an HTTP Range request (a 206
    whose Content-Range does not start where the part file ends is refused, and the download starts over). A part
    file already holding every byte (the server answers 416) is checked and used, or deleted and fetched again. The
    part file is renamed to ``dest`` only after its digest matches; a mismatch deletes it and raises.
    """
    from tqdm.auto import tqdm

    timeout = timeout or http_timeout()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    sess = sess or session()
    last_error: Exception | None = None
    restarted = False
    for _ in range(attempts):  # whole-transfer attempts; each resumes what the last one wrote
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with sess.get(url, headers=headers, stream=True, timeout=timeout) as r:
                if r.status_code == 416 and have:
                    # the part file may hold every byte already (a download killed before its rename): check it
                    if sha256_file(part).startswith(sha256):
                        break
                    part.unlink()
                    if restarted:
                        raise NotAvailableError(f"cannot download {url}: the server refuses every range (HTTP 416)")
                    restarted = True
                    continue
                if r.status_code not in (200, 206):
                    raise NotAvailableError(f"cannot download {url}: HTTP {r.status_code}")
                if r.status_code == 206 and _resumed_at(r) != have:
                    part.unlink(missing_ok=True)  # bytes for another offset would corrupt the file: start over
                    if restarted:
                        raise NotAvailableError(f"cannot download {url}: asked for bytes from {have}, the server sent "
                                                f"Content-Range {r.headers.get('Content-Range')!r}")
                    restarted = True
                    continue
                mode = "ab" if r.status_code == 206 else "wb"
                if r.status_code == 200:
                    have = 0
                total = size if size is not None else (have + int(r.headers.get("Content-Length", 0)) or None)
                with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                 desc=desc or dest.name, disable=not progress, leave=False) as bar:
                    for chunk in r.iter_content(1 << 20):
                        f.write(chunk)
                        bar.update(len(chunk))
            if size is None or part.stat().st_size >= size:
                break
            last_error = NotAvailableError(f"{url}: connection closed after {part.stat().st_size} of {size} bytes")
        except (requests.RequestException, OSError) as e:
            last_error = e
        if (part.stat().st_size if part.exists() else 0) <= have:
            # urllib3 already retried the request with backoff: without progress another round would only stall
            raise NotAvailableError(f"cannot download {url}: {last_error}")
    else:
        raise NotAvailableError(f"cannot download {url} after {attempts} attempts: {last_error}")
    actual = sha256_file(part)
    if not actual.startswith(sha256):
        part.unlink(missing_ok=True)
        raise IntegrityError(f"sha256 mismatch for {url}: expected {sha256}, downloaded file has {actual}; deleted it "
                             "(download again; if it keeps failing the server holds another file than the one pinned)")
    os.replace(part, dest)
    return dest
