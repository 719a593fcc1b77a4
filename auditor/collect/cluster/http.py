"""GET requests with the client's TLS, proxy and auth settings, and mesh-audit's own bounded
retries; and how failures read in one line."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlencode, urlsplit

import orjson

from auditor import __version__
from auditor.collect.cluster.kubeconfig import ClusterError, Connection, first_line
from auditor.collect.cluster.resources import JSON


@dataclass
class RetryPolicy:
    """Bounded exponential backoff for 429, 5xx and dropped connections."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * (2 ** attempt))


class Deadline(Exception):
    pass


class Unavailable(Exception):
    """Retries exhausted: the reason and the last HTTP status, if any."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.status = status


@dataclass
class Response:
    status: int
    body: bytes
    reason: str

    def json(self):
        return orjson.loads(self.body)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class Http:
    """GETs with the client's TLS, proxy and auth settings, and our own retry policy."""

    def __init__(self, connection: Connection, deadline: float, retry: RetryPolicy, compress: bool | None, workers: int):
        from kubernetes.client import rest

        config = connection.config
        config.retries = False  # the retry policy below is the only one
        config.connection_pool_maxsize = 2 * max(workers, 1) + 1  # each list may have its next page in flight
        self.config = config
        self.pool = rest.RESTClientObject(config).pool_manager
        self.host = config.host.rstrip("/")
        self.shown = connection.server.rstrip("/") if connection.server else self.host  # no credentials in it
        self.deadline = deadline
        self.retry = retry
        # Cluster JSON compresses ~13x: worth it over a network, not over loopback.
        self.compress = (not is_loopback(self.host)) if compress is None else compress
        self._auth_lock = threading.Lock()

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": f"mesh-audit/{__version__}"}
        if self.compress:
            headers["Accept-Encoding"] = "gzip"
        with self._auth_lock:  # exec plugins refresh tokens here; run them once, not per thread
            for setting in self.config.auth_settings().values():
                if setting.get("value"):
                    # A token file's trailing newline is trimmed, as kubectl trims it (the client
                    # sets the token again before every request, so here and not once).
                    headers[setting["key"]] = setting["value"].strip()
            if "authorization" not in headers and (self.config.username or self.config.password):
                headers["authorization"] = self.config.get_basic_auth_token()
        return headers

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def get(self, path: str, query: dict | None = None, accept: str = JSON, attempts: int | None = None) -> Response:
        import urllib3

        attempts = min(attempts or self.retry.attempts, self.retry.attempts)
        url = self.host + path + (f"?{urlencode(query)}" if query else "")
        last = "no attempt"
        last_status = None
        for attempt in range(attempts):
            left = self.remaining()
            if left <= 0:
                raise Deadline()
            try:
                resp = self._within(left, lambda: self.pool.request(
                    "GET", url, headers=self._headers(accept), retries=False, preload_content=True,
                    timeout=urllib3.Timeout(connect=min(10.0, left), read=min(60.0, left)),
                ))
            except urllib3.exceptions.SSLError as err:
                raise ClusterError(f"TLS handshake with {self.shown} failed: {_ssl_reason(err)}") from None
            except ValueError:  # http.client refuses a header with a line break: never echo the token
                raise ClusterError(f"the credentials for {self.shown} cannot be sent: the token holds a line break or "
                                   "another character an HTTP header cannot carry") from None
            except (urllib3.exceptions.HTTPError, OSError) as err:
                last, last_status = _connection_reason(err), None
                if attempt + 1 < attempts:
                    self._sleep(self.retry.delay(attempt))
                continue
            status = resp.status
            if status == 429 or status >= 500:
                last, last_status = f"HTTP {status} {resp.reason or ''}".strip(), status
                wait = self.retry.delay(attempt)
                if status == 429:
                    wait = _retry_after(resp.headers.get("Retry-After"), wait, self.retry.max_retry_after)
                if attempt + 1 < attempts:
                    self._sleep(wait)
                continue
            return Response(status, resp.data, resp.reason or "")
        raise Unavailable(f"{last} (gave up after {attempts} attempts)", last_status)

    def send(self, method: str, path: str, body: dict | None = None, content_type: str = JSON,
             query: dict | None = None, timeout: float = 30.0) -> Response:
        """One write (POST, PUT, PATCH, DELETE), no retries: a caller that writes decides what a
        conflict or a failure means. Raises Unavailable when the server cannot be reached."""
        import urllib3

        url = self.host + path + (f"?{urlencode(query)}" if query else "")
        headers = {**self._headers(JSON), "Content-Type": content_type}
        data = orjson.dumps(body) if body is not None else None
        try:
            resp = self._within(timeout, lambda: self.pool.request(
                method, url, body=data, headers=headers, retries=False, preload_content=True,
                timeout=urllib3.Timeout(connect=min(10.0, timeout), read=timeout)))
        except Deadline:
            raise Unavailable("timed out") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise Unavailable(_connection_reason(err)) from None
        return Response(resp.status, resp.data, resp.reason or "")

    def stream(self, path: str, query: dict, idle: float = 60.0):
        """The lines of a streamed answer (a watch), as they arrive: raises StatusError for an
        answer other than 200, Unavailable when the connection fails or stays silent `idle`
        seconds (a watch that asks for bookmarks hears from the server well before that)."""
        import urllib3

        url = self.host + path + f"?{urlencode(query)}"
        try:
            resp = self.pool.request("GET", url, headers=self._headers(JSON), retries=False, preload_content=False,
                                     timeout=urllib3.Timeout(connect=10.0, read=idle))
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise Unavailable(_connection_reason(err)) from None
        try:
            if resp.status != 200:
                raise StatusError(Response(resp.status, resp.read(), resp.reason or ""))
            pending = b""
            try:
                for chunk in resp.stream(65536):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    yield from (line for line in lines if line.strip())
            except (urllib3.exceptions.HTTPError, OSError) as err:
                raise Unavailable(_connection_reason(err)) from None
            if pending.strip():
                yield pending
        finally:
            resp.release_conn()

    @staticmethod
    def _within(seconds: float, request):
        """`request()`, or Deadline once `seconds` pass: a server that trickles its answer a
        byte at a time resets every socket timeout, so the whole exchange has one clock.
        The request is left to finish on a daemon thread; the run ends without waiting."""
        done = threading.Event()
        outcome: list = []

        def run() -> None:
            try:
                outcome.append((True, request()))
            except BaseException as err:  # handed back to the caller as raised
                outcome.append((False, err))
            done.set()

        threading.Thread(target=run, daemon=True, name="mesh-audit-request").start()
        if not done.wait(seconds):
            raise Deadline()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _sleep(self, seconds: float) -> None:
        left = self.remaining()
        if seconds >= left:
            raise Deadline()
        time.sleep(seconds)


def _retry_after(value: str | None, default: float, cap: float) -> float:
    try:
        return min(max(float(value), 0.0), cap) if value is not None else default
    except ValueError:
        return default


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _connection_reason(err: BaseException) -> str:
    import urllib3

    timeouts = (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError)
    # NewConnectionError subclasses ConnectTimeoutError, but "connection refused" is no timeout.
    if isinstance(err, timeouts) and not isinstance(err, urllib3.exceptions.NewConnectionError):
        return "timed out"
    if isinstance(err, urllib3.exceptions.ProtocolError):
        return "connection dropped by the server"
    m = _ERRNO.search(str(err))
    return f"cannot connect: {m.group(1).strip()}" if m else f"cannot connect: {first_line(err)}"


def _ssl_reason(err: BaseException) -> str:
    text = str(err)
    m = re.search(r"certificate verify failed: ([^(]+)", text)
    return f"certificate verify failed: {m.group(1).strip()}" if m else first_line(err)


def status_reason(resp: Response) -> str:
    try:
        doc = resp.json()
        message = doc.get("message") if isinstance(doc, dict) else None
    except orjson.JSONDecodeError:
        message = None
    label = {401: "unauthorized", 403: "forbidden", 404: "not found"}.get(resp.status, f"HTTP {resp.status}")
    return f"{label} ({resp.status}): {message}" if message else f"{label} ({resp.status})"


class StatusError(Exception):
    """A response that is neither 200 nor retried (403, 404, 410 ...)."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response
