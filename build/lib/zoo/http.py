"""HTTP downloads: timeouts, bounded retries with backoff (urllib3 Retry), Range resume, a progress bar, and a
file that appears under its final name only once its sha256 matches."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import IntegrityError, NotAvailableError

TIMEOUT = (10.0, float(os.environ.get("ZOO_HTTP_TIMEOUT", 30)))   # connect, read: seconds without a byte
RETRIES = 4


def session(retries: int = RETRIES, backoff: float = 0.5) -> requests.Session:
    s = requests.Session()
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET", "HEAD"}),
                  raise_on_status=False)
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    s.headers["User-Agent"] = "zoo-model-zoo"
    return s


def get_bytes(url: str, sess: requests.Session | None = None, timeout=None) -> bytes:
    timeout = timeout or TIMEOUT
    sess = sess or session()
    try:
        r = sess.get(url, timeout=timeout)
    except requests.RequestException as e:
        raise NotAvailableError(f"cannot fetch {url}: {e}") from None
    if r.status_code != 200:
        raise NotAvailableError(f"cannot fetch {url}: HTTP {r.status_code}")
    return r.content


def download(url: str, dest: str | Path, sha256: str, size: int | None = None, sess: requests.Session | None = None,
             progress: bool = True, timeout=None, attempts: int = 3, desc: str | None = None) -> Path:
    """Download ``url`` to ``dest``; ``sha256`` is the full digest or a prefix (as torchvision's file names carry).

    Bytes go to ``dest.part`` first; an interrupted download resumes from there with an HTTP Range request. The
    part file is renamed to ``dest`` only after its digest matches; a mismatch deletes it and raises.
    """
    from tqdm.auto import tqdm

    timeout = timeout or TIMEOUT
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    sess = sess or session()
    last_error: Exception | None = None
    for _ in range(attempts):  # whole-transfer attempts; each resumes what the last one wrote
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with sess.get(url, headers=headers, stream=True, timeout=timeout) as r:
                if r.status_code == 416 and size is not None and have >= size:
                    break  # the part file is already complete
                if r.status_code not in (200, 206):
                    raise NotAvailableError(f"cannot download {url}: HTTP {r.status_code}")
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
    with open(part, "rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()
    if not actual.startswith(sha256):
        part.unlink(missing_ok=True)
        raise IntegrityError(f"sha256 mismatch for {url}: expected {sha256}, downloaded file has {actual}; deleted it")
    os.replace(part, dest)
    return dest
