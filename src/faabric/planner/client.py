"""A small blocking client for the planner's HTTP API, used by the CLI, workers and tests.

One keep-alive connection guarded by a lock (reopened after errors), msgpack bodies so byte
fields arrive exact, the cluster token in every request's `Authorization` header, and a
timeout on every call. Failures become `AuthError` (the planner refused the token),
`ApiError` (it answered with another error) or `BrokenError` (it could not be reached). It
holds no other state, and never looks for a token itself: the caller passes it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import quote, urlsplit

import msgpack

from faabric.errors import ApiError, AuthError, BrokenError, ConfigError
from faabric.planner.follow import OutputFollower

MSGPACK = "application/msgpack"
WAIT_SLICE = 60.0
RECONNECT_FOR = 30.0  # seconds a wait keeps trying to reach a planner that went away


class PlannerClient:
    """Talks to one planner at `url` (e.g. `http://127.0.0.1:8080`) with the cluster `token`."""

    def __init__(self, url: str, *, token: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(f"bad planner URL {url!r}: expected http://HOST:PORT")
        self.url = f"http://{parts.hostname}:{parts.port or 80}"
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self._authorization = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection (a later call reopens it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- API calls ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """GET /v1/health."""
        return cast(dict[str, Any], self._call("GET", "/v1/health"))

    def config(self) -> dict[str, Any]:
        """GET /v1/config: control port and keep-alive timeout, for workers."""
        return cast(dict[str, Any], self._call("GET", "/v1/config"))

    def status(self) -> dict[str, Any]:
        """GET /v1/status: hosts and in-flight apps."""
        return cast(dict[str, Any], self._call("GET", "/v1/status"))

    def hosts(self) -> list[dict[str, Any]]:
        """GET /v1/hosts."""
        return cast(list[dict[str, Any]], self._call("GET", "/v1/hosts"))

    def reset(self) -> None:
        """POST /v1/reset."""
        self._call("POST", "/v1/reset")

    def evict(self, host: str) -> dict[str, Any]:
        """POST /v1/hosts/{host}/evict: announce a worker's eviction (ApiError 404 if it is
        not registered)."""
        path = f"/v1/hosts/{quote(host, safe='')}/evict"
        return cast(dict[str, Any], self._call("POST", path))

    def upload_module(self, data: bytes) -> str:
        """Upload a module unless the planner has it already; returns its digest."""
        digest = hashlib.sha256(data).hexdigest()
        status, _ = self._request("HEAD", f"/v1/modules/{digest}", accept_missing=True)
        if status == 404:
            self._call("PUT", f"/v1/modules/{digest}", body=data, content_type="application/wasm")
        return digest

    def fetch_module(self, digest: str) -> bytes:
        """GET /v1/modules/{digest}: the module's bytes."""
        _, body = self._request("GET", f"/v1/modules/{digest}")
        return body

    def submit(
        self, app: dict[str, Any], *, wait: float = 0.0, cancel_on_disconnect: bool = False
    ) -> dict[str, Any]:
        """POST /v1/apps; with `wait`, block up to that long for the app to finish. With
        `cancel_on_disconnect`, the planner cancels the app if this client's connection
        closes before the app has finished (`close`, or the process ending)."""
        path = "/v1/apps" + _query(wait, cancel_on_disconnect)
        return cast(dict[str, Any], self._call("POST", path, doc=app, wait=wait))

    def app(
        self, app_id: int, *, wait: float = 0.0, cancel_on_disconnect: bool = False
    ) -> dict[str, Any]:
        """GET /v1/apps/{id}; with `wait`, block up to that long for it to finish (for
        `cancel_on_disconnect`, see `submit`)."""
        path = f"/v1/apps/{app_id}" + _query(wait, cancel_on_disconnect)
        return cast(dict[str, Any], self._call("GET", path, wait=wait))

    def wait_app(
        self, app_id: int, timeout: float, *, cancel_on_disconnect: bool = False,
        reconnect_for: float = RECONNECT_FOR,
    ) -> dict[str, Any]:
        """Block until the app finishes or `timeout` s pass; returns its latest document
        (for `cancel_on_disconnect`, see `submit`). A planner that cannot be reached (it is
        restarting) is tried again for up to `reconnect_for` s before BrokenError."""
        deadline = time.monotonic() + timeout
        retry = _Retry(reconnect_for)
        while True:
            left = deadline - time.monotonic()
            try:
                doc = self.app(app_id, wait=max(0.0, min(WAIT_SLICE, left)),
                               cancel_on_disconnect=cancel_on_disconnect)
            except BrokenError as exc:
                retry.after_failure(exc)
                continue
            retry.succeeded()
            if doc["finished"] is not None or left <= 0:
                return doc

    def follow_output(self, app_id: int, start: int = 0) -> OutputFollower:
        """GET /v1/apps/{id}/output: the app's output as it is produced, on a connection of
        its own (iterate `.events()`, `.close()` to stop)."""
        return OutputFollower(self.host, self.port, self._authorization, app_id, start)

    def cancel(self, app_id: int) -> dict[str, Any]:
        """DELETE /v1/apps/{id}: stop the app (ApiError 404 if it is unknown). Returns its
        final document, whose `cancelled` says whether this call ended it (False: it had
        finished already)."""
        return cast(dict[str, Any], self._call("DELETE", f"/v1/apps/{app_id}"))

    def submit_batch(self, apps: Sequence[dict[str, Any]]) -> list[int]:
        """POST /v1/apps/batch: submit several apps in one request; returns their ids."""
        doc = self._call("POST", "/v1/apps/batch", doc={"apps": list(apps)})
        return list(cast(dict[str, Any], doc)["app_ids"])

    def apps(self, app_ids: Sequence[int], *, wait: float = 0.0) -> list[dict[str, Any]]:
        """GET /v1/apps?ids=...: the documents of these apps, in order; with `wait`, block up
        to that long for all of them to finish."""
        if not app_ids:
            return []
        path = f"/v1/apps?ids={id_ranges(app_ids)}"
        if wait > 0:
            path += f"&wait={wait:g}"
        return cast(list[dict[str, Any]], self._call("GET", path, wait=wait))

    def wait_apps(self, app_ids: Sequence[int], timeout: float, *,
                  reconnect_for: float = RECONNECT_FOR) -> list[dict[str, Any]]:
        """Block until all these apps finish or `timeout` s pass; returns their documents
        (a planner that cannot be reached is tried again as by `wait_app`)."""
        deadline = time.monotonic() + timeout
        retry = _Retry(reconnect_for)
        while True:
            left = deadline - time.monotonic()
            try:
                docs = self.apps(app_ids, wait=max(0.0, min(WAIT_SLICE, left)))
            except BrokenError as exc:
                retry.after_failure(exc)
                continue
            retry.succeeded()
            if all(doc["finished"] is not None for doc in docs) or left <= 0:
                return docs

    # -- plumbing -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        doc: Any = None,
        body: bytes | None = None,
        content_type: str = MSGPACK,
        wait: float = 0.0,
    ) -> Any:
        if doc is not None:
            body = msgpack.packb(doc, use_bin_type=True)
        _, raw = self._request(method, path, body=body, content_type=content_type, wait=wait)
        return msgpack.unpackb(raw, raw=False) if raw else None

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str = MSGPACK,
        wait: float = 0.0,
        accept_missing: bool = False,
    ) -> tuple[int, bytes]:
        headers = {"Accept": MSGPACK, "Content-Type": content_type,
                   "Authorization": self._authorization}
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection(self.timeout + wait)
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    raw = response.read()
                    break
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    self._conn = None
                    # A kept-alive connection may have been closed by the server: retry once.
                    if attempt == 2 or not _is_stale(exc):
                        raise BrokenError(
                            f"cannot reach the planner at {self.url}: {_reason(exc)}"
                        ) from exc
        if response.status == 401:
            raise AuthError(f"the planner at {self.url} refused this token "
                            f"({_error_text(raw, response.status)})")
        if response.status >= 400 and not (accept_missing and response.status == 404):
            raise ApiError(response.status, _error_text(raw, response.status))
        return response.status, raw

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        else:
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
        return self._conn


class _Retry:
    """Paces the attempts of a call that failed to reach the planner; gives up (re-raises)
    once failures have gone on for longer than `within` seconds."""

    def __init__(self, within: float) -> None:
        self._within = within
        self._since: float | None = None
        self._delay = 0.1

    def after_failure(self, exc: BrokenError) -> None:
        """Raise `exc` when out of time, else sleep a little."""
        now = time.monotonic()
        self._since = now if self._since is None else self._since
        if now + self._delay > self._since + self._within:
            raise exc
        time.sleep(self._delay)
        self._delay = min(self._delay * 2, 1.0)

    def succeeded(self) -> None:
        self._since, self._delay = None, 0.1


def _query(wait: float, cancel_on_disconnect: bool) -> str:
    parts = [f"wait={wait:g}"] if wait > 0 else []
    if cancel_on_disconnect:
        parts.append("cancel_on_disconnect=true")
    return "?" + "&".join(parts) if parts else ""


def id_ranges(app_ids: Sequence[int]) -> str:
    """The `ids` query for these ids, in order: runs of consecutive ids become `low-high`."""
    parts: list[str] = []
    index = 0
    while index < len(app_ids):
        end = index
        while end + 1 < len(app_ids) and app_ids[end + 1] == app_ids[end] + 1:
            end += 1
        first, last = app_ids[index], app_ids[end]
        parts.append(str(first) if first == last else f"{first}-{last}")
        index = end + 1
    return ",".join(parts)


def _is_stale(exc: BaseException) -> bool:
    return isinstance(
        exc, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is it running?)"
    return str(exc) or type(exc).__name__


def _error_text(raw: bytes, status: int) -> str:
    for decode in (lambda b: msgpack.unpackb(b, raw=False), json.loads):
        try:
            doc = decode(raw)
        except Exception:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            return cast(str, doc["error"])
    return f"the planner answered HTTP {status}"
