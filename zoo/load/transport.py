"""HTTP downloads: timeouts, bounded retries with backoff (urllib3 Retry), Range resume, a progress bar, and a
file that appears under its final name only once its sha256 matches. (zoo/load/sources/http.py is the mirror source that
uses it.)"""
from __future__ import annotations

import os
import time
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import IntegrityError, NotAvailableError
from ..core import store
from ..core.settings import positive_number
from ..core.store import sha256_file

CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 30.0
RETRIES = 4


def http_timeout() -> tuple[float, float]:
    """(connect, read) seconds; ``ZOO_HTTP_TIMEOUT`` sets the read timeout (seconds without a byte), read at each use."""
    return CONNECT_TIMEOUT, positive_number("ZOO_HTTP_TIMEOUT", READ_TIMEOUT, " of seconds", " (like 30)")


def session(retries: int = RETRIES, backoff: float = 0.5) -> requests.Session:
    s = requests.Session()
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET", "HEAD"}),
                  raise_on_status=False)
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    s.headers["User-Agent"] = "zoo-model-zoo"
    return s


MIN_RATE = 64 << 10              # bytes/s: a transfer slower than this on average is abandoned (its deadline)
MAX_UNSIZED_BYTES = 4 << 30      # a download whose record states no size (an official checkpoint URL)
CHUNK = 1 << 20


def deadline_seconds(size: int, timeout: tuple[float, float]) -> float:
    """How long one transfer of ``size`` bytes may take in all: the read timeout plus the size at the slowest rate
    accepted (``ZOO_HTTP_MIN_RATE`` bytes/s, default 64 KiB/s). A server dripping a byte at a time, each within the
    read timeout, is cut off here."""
    return timeout[1] + size / positive_number("ZOO_HTTP_MIN_RATE", MIN_RATE, " of bytes per second")


index_cap = store.index_cap


class TooLarge(IntegrityError):
    """A server sent more bytes than the record (or the index cap) allows."""


def _stream(r: requests.Response, limit: int, seconds: float, url: str, sink) -> int:
    """Read ``r``'s body into ``sink(chunk)``, never more than ``limit`` bytes (reading limit + 1 proves the body is
    longer: TooLarge) and for no longer than ``seconds``; returns the bytes read."""
    got, deadline = 0, time.monotonic() + seconds
    while True:
        # read1: whatever has arrived (up to the bound), so that the deadline is checked between slow bytes too
        chunk = r.raw.read1(min(CHUNK, limit + 1 - got), decode_content=True)
        if not chunk:
            return got
        got += len(chunk)
        if got > limit:
            raise TooLarge(f"{url} sent more than the {limit} bytes its record states: aborted after {got} bytes "
                           "(the server holds another file than the one its index lists)")
        sink(chunk)
        if time.monotonic() > deadline:
            raise NotAvailableError(f"cannot download {url}: only {got} bytes in {seconds:.1f} s, slower than the "
                                    "slowest rate accepted (ZOO_HTTP_MIN_RATE bytes/s, after ZOO_HTTP_TIMEOUT): gave up")


def get_bytes(url: str, sess: requests.Session | None = None, timeout: tuple[float, float] | None = None,
              limit: int | None = None) -> bytes:
    """A small file (an index) streamed into memory: at most ``limit`` bytes (default the index cap) within a
    deadline derived from that limit."""
    sess = sess or session()
    timeout = timeout or http_timeout()
    limit = index_cap() if limit is None else limit
    parts: list[bytes] = []
    try:
        with sess.get(url, timeout=timeout, stream=True) as r:
            if r.status_code != 200:
                raise NotAvailableError(f"cannot fetch {url}: HTTP {r.status_code}")
            _stream(r, limit, deadline_seconds(limit, timeout), url, parts.append)
    except requests.RequestException as e:
        raise NotAvailableError(f"cannot fetch {url}: {e}") from None
    return b"".join(parts)


def _resumed_at(r: requests.Response) -> int | None:
    """The first byte a 206 response carries (its Content-Range), or None when the header is missing or malformed."""
    unit, _, spec = r.headers.get("Content-Range", "").partition(" ")
    first = spec.split("-", 1)[0]
    return int(first) if unit == "bytes" and first.isdigit() else None


def _size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


class _Transfer:
    """One file's download into its part file, in attempts that resume what the last one wrote. Each step names
    one outcome: ``attempt`` returns True once the part file may hold every byte, False to try again."""

    def __init__(self, url: str, part: Path, sha256: str, size: int | None, sess: requests.Session,
                 timeout: tuple[float, float], progress: bool, desc: str):
        self.url, self.part, self.sha256, self.size, self.sess = url, part, sha256, size, sess
        self.timeout, self.progress, self.desc = timeout, progress, desc
        self.limit = size if size is not None else MAX_UNSIZED_BYTES
        self.restarted = False

    def run(self, attempts: int) -> None:
        last_error: Exception | None = None
        for _ in range(attempts):
            have = _size_of(self.part)
            try:
                if self.attempt(have):
                    return
                last_error = NotAvailableError(f"{self.url}: connection closed after {_size_of(self.part)} of "
                                               f"{self.size} bytes")
            except TooLarge:
                self.part.unlink(missing_ok=True)
                raise
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:  # read1 raises urllib3's own
                last_error = e
            if _size_of(self.part) <= have and not self.restarted_now:
                # urllib3 already retried the request with backoff: without progress another round would only stall
                raise NotAvailableError(f"cannot download {self.url}: {last_error}")
        raise NotAvailableError(f"cannot download {self.url} after {attempts} attempts: {last_error}")

    def attempt(self, have: int) -> bool:
        self.restarted_now = False
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.sess.get(self.url, headers=headers, stream=True, timeout=self.timeout) as r:
            if r.status_code == 416 and have:
                return self._complete_already()
            if r.status_code not in (200, 206):
                raise NotAvailableError(f"cannot download {self.url}: HTTP {r.status_code}")
            if r.status_code == 206 and _resumed_at(r) != have:
                self._start_over(f"asked for bytes from {have}, the server sent Content-Range "
                                 f"{r.headers.get('Content-Range')!r}")
                return False
            self._write(r, have if r.status_code == 206 else 0)
        return self.size is None or _size_of(self.part) >= self.size

    def _complete_already(self) -> bool:
        """A 416: the part file may hold every byte already (a download killed before its rename): check it."""
        if sha256_file(self.part).startswith(self.sha256):
            return True
        self._start_over("the server refuses every range (HTTP 416)")
        return False

    def _start_over(self, why: str) -> None:
        """Bytes for another offset would corrupt the file: delete it and start over, once."""
        self.part.unlink(missing_ok=True)
        if self.restarted:
            raise NotAvailableError(f"cannot download {self.url}: {why}")
        self.restarted = self.restarted_now = True

    def _write(self, r: requests.Response, have: int) -> None:
        """Append (206) or write (200) the body, bounded by the record's size and the deadline."""
        from tqdm.auto import tqdm
        total = self.size if self.size is not None else (have + int(r.headers.get("Content-Length", 0)) or None)
        with open(self.part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                               desc=self.desc, disable=not self.progress,
                                                               leave=False) as bar:
            def sink(chunk: bytes) -> None:
                f.write(chunk)
                bar.update(len(chunk))
            _stream(r, self.limit - have, deadline_seconds(self.limit - have, self.timeout), self.url, sink)


def _place(url: str, part: Path, dest: Path, sha256: str) -> None:
    """Rename the part file to ``dest`` once its digest matches; a mismatch deletes it and raises."""
    actual = sha256_file(part)
    if not actual.startswith(sha256):
        part.unlink(missing_ok=True)
        raise IntegrityError(f"sha256 mismatch for {url}: expected {sha256}, downloaded file has {actual}; deleted it "
                             "(download again; if it keeps failing the server holds another file than the one pinned)")
    os.replace(part, dest)


def download(url: str, dest: str | Path, sha256: str, size: int | None = None, sess: requests.Session | None = None,
             progress: bool = True, timeout: tuple[float, float] | None = None, attempts: int = 3,
             desc: str | None = None) -> Path:
    """Download ``url`` to ``dest``; ``sha256`` is the full digest or a prefix (as torchvision's file names carry).

    Bytes go to ``dest.part`` first, never more than ``size`` (the record's; reading one byte more aborts and deletes
    it) and within a deadline derived from the size (deadline_seconds). An interrupted download resumes from there
    with an HTTP Range request (a 206 whose Content-Range does not start where the part file ends is refused, and the
    download starts over). A part file already holding every byte (the server answers 416) is checked and used, or
    deleted and fetched again. The part file is renamed to ``dest`` only after its digest matches.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _Transfer(url, part, sha256, size, sess or session(), timeout or http_timeout(), progress,
              desc or dest.name).run(attempts)
    _place(url, part, dest, sha256)
    return dest
