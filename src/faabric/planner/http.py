"""The planner's public HTTP+JSON API (described in `openapi.json`, served at /v1/openapi.json).

A threading HTTP/1.1 server with keep-alive; each request is routed to a small handler that
validates input, calls `PlannerService`, and answers JSON (or msgpack when the client sends
`Accept: application/msgpack`, which keeps byte fields exact). Every request but
`GET /v1/health` must carry `Authorization: Bearer <cluster token>` (compared in constant
time), else it is answered 401; `GET /metrics` too (Prometheus text, from the registry
given). Every error is a 4xx/5xx with `{"error": "<one line>"}`.
A client that goes away is not an error: its request is dropped without an answer, and the
apps it bound to its connection (`cancel_on_disconnect`) are cancelled when it closes the
connection. This module must not hold planner state of its own.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import select
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import msgpack
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from faabric import __version__
from faabric.errors import ModuleError, NotEnoughSlots
from faabric.planner import http_output, views
from faabric.planner.http_limits import ApiFailure, GuardedHandler, GuardedServer, HttpLimits
from faabric.planner.modules import is_digest
from faabric.planner.service import PlannerService

log = logging.getLogger(__name__)

MAX_WAIT = 600.0
_APP_ID = re.compile(r"[1-9][0-9]{0,17}")  # app ids start at 1
MSGPACK = "application/msgpack"
PUBLIC = (("GET", "/v1/health"),)  # what answers without the token
CANCEL_REASON = "by client"  # the outcome of a cancelled app's granules: "cancelled: by client"
HANGUP_REASON = "by client (its connection closed)"
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True, slots=True)
class _Text:
    """A response body sent as it is, with its content type."""

    payload: bytes
    kind: str


class ClientGone(Exception):
    """Raised by a route that finds its client has closed the connection: nothing is sent."""


class Answered(Exception):
    """Raised by a route that wrote its whole response itself (a stream): nothing more is
    sent, and the connection closes."""


class PlannerHttpServer(GuardedServer):
    """HTTP server bound to one `PlannerService`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        service: PlannerService,
        *,
        token: str,
        control_port: Callable[[], int],
        max_request_bytes: int,
        limits: HttpLimits | None = None,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        self.service = service
        self.metrics = metrics  # what GET /metrics exposes (None: it answers 404)
        self.token = token.encode()
        self.control_port = control_port
        self.max_request_bytes = max_request_bytes
        super().__init__(address, _Handler, limits or HttpLimits())

    @property
    def port(self) -> int:
        """The port clients connect to."""
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke under a request is the client's doing, not a bug."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("the connection of %s broke", client_address)
            return
        super().handle_error(request, client_address)


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/v1/health$"), "health"),
    ("GET", re.compile(r"^/v1/config$"), "config"),
    ("GET", re.compile(r"^/v1/openapi\.json$"), "openapi"),
    ("GET", re.compile(r"^/metrics$"), "metrics"),
    ("GET", re.compile(r"^/v1/hosts$"), "hosts"),
    ("POST", re.compile(r"^/v1/hosts/(?P<name>[^/]+)/evict$"), "evict_host"),
    ("GET", re.compile(r"^/v1/status$"), "status"),
    ("POST", re.compile(r"^/v1/reset$"), "reset"),
    ("PUT", re.compile(r"^/v1/modules/(?P<digest>[^/]+)$"), "put_module"),
    ("GET", re.compile(r"^/v1/modules/(?P<digest>[^/]+)$"), "get_module"),
    ("HEAD", re.compile(r"^/v1/modules/(?P<digest>[^/]+)$"), "head_module"),
    ("GET", re.compile(r"^/v1/apps$"), "list_apps"),
    ("POST", re.compile(r"^/v1/apps$"), "submit_app"),
    ("POST", re.compile(r"^/v1/apps/batch$"), "submit_batch"),
    ("GET", re.compile(r"^/v1/apps/(?P<app_id>[^/]+)$"), "get_app"),
    ("DELETE", re.compile(r"^/v1/apps/(?P<app_id>[^/]+)$"), "cancel_app"),
    ("GET", re.compile(r"^/v1/apps/(?P<app_id>[^/]+)/output$"), "app_output"),
]


class _Handler(GuardedHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; without TCP_NODELAY the second waits ~40 ms
    # for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: PlannerHttpServer
    server_version = f"faabric/{__version__}"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def setup(self) -> None:
        super().setup()
        self._bound: set[int] = set()  # apps cancelled when this connection closes

    def finish(self) -> None:
        # The connection ends. If the client closed it (or it broke), its bound apps still
        # in flight are cancelled; if the planner ends it (an idle timeout, an error answered
        # with `Connection: close`), the client is still there and they run on.
        gone = bool(self._bound) and self._peer_gone()
        try:
            super().finish()
        finally:
            for app_id in sorted(self._bound) if gone else ():
                self.server.service.cancel(app_id, HANGUP_REASON)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            self.check_framing()
            self._authorize(method, url.path)
            handler, params = self._route(method, url.path)
            status, body = handler(**params)
            if self.body_pending:
                self.close_connection = True  # an ignored body would corrupt the next request
            self._send(status, body)
        except ApiFailure as failure:
            if self.body_pending:
                self.close_connection = True  # the unread body would corrupt the next request
            self._send(failure.status, {"error": failure.reason})
        except Answered:
            self.close_connection = True
        except (ClientGone, ConnectionError):  # the client left: there is no one to answer
            log.debug("%s went away during %s %s", self.address_string(), method, url.path)
            self.close_connection = True
        except Exception as exc:  # a bug: answer 500 and keep serving
            log.exception("internal error on %s %s", method, url.path)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {exc}"})

    def _authorize(self, method: str, path: str) -> None:
        if (method, path) in PUBLIC:
            return
        given = self.headers.get("Authorization")
        if given is None:
            raise ApiFailure(HTTPStatus.UNAUTHORIZED, "the API needs the cluster token: send "
                             "'Authorization: Bearer <token>'")
        scheme, _, value = given.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), self.server.token
        ):
            log.info("refused a request from %s: wrong cluster token", self.address_string())
            raise ApiFailure(HTTPStatus.UNAUTHORIZED, "the cluster token is not valid")

    def _route(self, method: str, path: str) -> tuple[Callable[..., Any], dict[str, str]]:
        allowed = False
        for verb, pattern, name in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            allowed = True
            if verb == method:
                return getattr(self, f"_r_{name}"), match.groupdict()
        if allowed:
            raise ApiFailure(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}")
        raise ApiFailure(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")

    # -- request and response plumbing --------------------------------------------------------

    def _read_body(self, limit: int) -> bytes:
        return self.read_body(limit)

    def _read_document(self) -> Any:
        body = self._read_body(self.server.max_request_bytes)
        return self.decode_document(body, self.headers.get("Content-Type", "").startswith(MSGPACK))

    def _binary(self) -> bool:
        return MSGPACK in self.headers.get("Accept", "")

    def _send(self, status: HTTPStatus, body: Any) -> None:
        if isinstance(body, bytes):
            payload, kind = body, "application/wasm"
        elif isinstance(body, _Text):
            payload, kind = body.payload, body.kind
        elif self._binary():
            payload, kind = msgpack.packb(body, use_bin_type=True), MSGPACK
        else:
            payload, kind = json.dumps(body).encode() + b"\n", "application/json"
        self.send_response(status)
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Bearer realm="faabric"')
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _cancel_on_disconnect(self) -> bool:
        text = self.query.get("cancel_on_disconnect", "false").lower()
        if text not in _FLAGS:
            raise ApiFailure(HTTPStatus.BAD_REQUEST, "'cancel_on_disconnect' must be true or false")
        return _FLAGS[text]

    def _peer_gone(self) -> bool:
        """Whether the client has closed its end of the connection (or it failed)."""
        poller = select.poll()
        poller.register(self.connection, select.POLLRDHUP)
        return bool(poller.poll(0))

    def _wait_seconds(self) -> float:
        text = self.query.get("wait", "0")
        try:
            wait = float(text)
        except ValueError:
            raise ApiFailure(HTTPStatus.BAD_REQUEST, "'wait' must be a number of seconds") from None
        if not 0 <= wait <= MAX_WAIT:
            raise ApiFailure(HTTPStatus.BAD_REQUEST, f"'wait' must be from 0 to {MAX_WAIT:g}")
        return wait

    # -- routes -------------------------------------------------------------------------------

    def _r_health(self) -> tuple[HTTPStatus, Any]:
        return HTTPStatus.OK, {"status": "ok", "version": __version__}

    def _r_config(self) -> tuple[HTTPStatus, Any]:
        return HTTPStatus.OK, {
            "version": __version__,
            "control_port": self.server.control_port(),
            "keepalive_timeout": self.server.service.keepalive_timeout,
        }

    def _r_openapi(self) -> tuple[HTTPStatus, Any]:
        text = resources.files("faabric.planner").joinpath("openapi.json").read_text()
        return HTTPStatus.OK, json.loads(text)

    def _r_metrics(self) -> tuple[HTTPStatus, Any]:
        registry = self.server.metrics
        if registry is None:
            raise ApiFailure(HTTPStatus.NOT_FOUND, "this planner serves no metrics")
        encode, kind = choose_encoder(self.headers.get("Accept", ""))
        return HTTPStatus.OK, _Text(encode(registry), kind)

    def _r_hosts(self) -> tuple[HTTPStatus, Any]:
        return HTTPStatus.OK, [views.host_document(h) for h in self.server.service.hosts()]

    def _r_evict_host(self, name: str) -> tuple[HTTPStatus, Any]:
        self._read_body(self.server.max_request_bytes)
        name = unquote(name)
        if not self.server.service.evict(name):
            raise ApiFailure(HTTPStatus.NOT_FOUND, f"no worker named {name} is registered")
        return HTTPStatus.OK, {"host": name, "evicting": True}

    def _r_status(self) -> tuple[HTTPStatus, Any]:
        service = self.server.service
        return HTTPStatus.OK, {
            "hosts": [views.host_document(h) for h in service.hosts()],
            "apps": [views.app_info_document(a) for a in service.in_flight()],
        }

    def _r_reset(self) -> tuple[HTTPStatus, Any]:
        self._read_body(self.server.max_request_bytes)
        self.server.service.reset()
        return HTTPStatus.OK, {"status": "reset"}

    def _r_list_apps(self) -> tuple[HTTPStatus, Any]:
        service = self.server.service
        if "ids" not in self.query:
            if "wait" in self.query:
                raise ApiFailure(HTTPStatus.BAD_REQUEST, "'wait' needs 'ids'")
            return HTTPStatus.OK, [views.app_info_document(a) for a in service.in_flight()]
        try:
            ids = views.parse_ids(self.query["ids"])
        except ValueError as exc:
            raise ApiFailure(HTTPStatus.BAD_REQUEST, str(exc)) from exc
        found = service.wait_all(ids, self._wait_seconds())
        missing = next((i for i, view in zip(ids, found, strict=True) if view is None), None)
        if missing is not None:
            raise ApiFailure(HTTPStatus.NOT_FOUND, f"no app {missing} (never submitted, or reset)")
        binary, offset = self._binary(), service.wall_offset
        return HTTPStatus.OK, [
            views.app_document(view, binary=binary, wall_offset=offset)
            for view in found
            if view is not None
        ]

    def _r_put_module(self, digest: str) -> tuple[HTTPStatus, Any]:
        self._check_digest(digest)
        modules = self.server.service.modules
        data = self._read_body(modules.max_module_bytes)
        try:
            created = modules.put(digest, data)
        except ModuleError as exc:
            raise ApiFailure(HTTPStatus.BAD_REQUEST, str(exc)) from exc
        return (HTTPStatus.CREATED if created else HTTPStatus.OK), {"module": digest}

    def _r_get_module(self, digest: str) -> tuple[HTTPStatus, Any]:
        self._check_digest(digest)
        data = self.server.service.modules.get(digest)
        if data is None:
            raise ApiFailure(HTTPStatus.NOT_FOUND, f"no module {digest} was uploaded")
        return HTTPStatus.OK, data

    def _r_head_module(self, digest: str) -> tuple[HTTPStatus, Any]:
        self._check_digest(digest)
        if digest not in self.server.service.modules:
            raise ApiFailure(HTTPStatus.NOT_FOUND, f"no module {digest} was uploaded")
        return HTTPStatus.OK, {"module": digest}

    def _r_submit_app(self) -> tuple[HTTPStatus, Any]:
        wait, bind = self._wait_seconds(), self._cancel_on_disconnect()
        try:
            spec = views.parse_app_spec(self._read_document())
        except ValueError as exc:
            raise ApiFailure(HTTPStatus.BAD_REQUEST, str(exc)) from exc
        service = self.server.service
        if spec.module not in service.modules:
            raise ApiFailure(
                HTTPStatus.NOT_FOUND, f"no module {spec.module} was uploaded: PUT it first"
            )
        try:
            app_id = service.submit(spec)
        except NotEnoughSlots as exc:
            raise ApiFailure(HTTPStatus.CONFLICT, str(exc)) from exc
        if bind:
            self._bound.add(app_id)
        return self._app_response(app_id, wait, HTTPStatus.ACCEPTED)

    def _r_submit_batch(self) -> tuple[HTTPStatus, Any]:
        try:
            specs = views.parse_batch(self._read_document())
        except ValueError as exc:
            raise ApiFailure(HTTPStatus.BAD_REQUEST, str(exc)) from exc
        service = self.server.service
        for position, module in _first_use(spec.module for spec in specs):
            if module not in service.modules:
                raise ApiFailure(
                    HTTPStatus.NOT_FOUND,
                    f"apps[{position}]: no module {module} was uploaded: PUT it first",
                )
        try:
            app_ids = service.submit_all(specs)
        except NotEnoughSlots as exc:
            position = next(i for i, spec in enumerate(specs) if spec.size > exc.available)
            raise ApiFailure(HTTPStatus.CONFLICT, f"apps[{position}]: {exc}") from exc
        return HTTPStatus.ACCEPTED, {"app_ids": app_ids}

    def _r_get_app(self, app_id: str) -> tuple[HTTPStatus, Any]:
        number, wait = _app_number(app_id), self._wait_seconds()
        if self._cancel_on_disconnect() and self.server.service.app(number) is not None:
            self._bound.add(number)
        return self._app_response(number, wait, HTTPStatus.OK)

    def _r_cancel_app(self, app_id: str) -> tuple[HTTPStatus, Any]:
        self._read_body(self.server.max_request_bytes)
        number, service = _app_number(app_id), self.server.service
        view, cancelled = service.cancel(number, CANCEL_REASON)
        if view is None:
            raise ApiFailure(HTTPStatus.NOT_FOUND, f"no app {number} (never submitted, or reset)")
        doc = views.app_document(view, binary=self._binary(), wall_offset=service.wall_offset)
        return HTTPStatus.OK, {**doc, "cancelled": cancelled}

    def _r_app_output(self, app_id: str) -> tuple[HTTPStatus, Any]:
        number, service = _app_number(app_id), self.server.service
        start = _first_chunk(self.query.get("from"), self.headers.get("Last-Event-ID"))
        if service.app(number) is None:
            raise ApiFailure(HTTPStatus.NOT_FOUND, f"no app {number} (never submitted, or reset)")
        self.close_connection = True  # the stream ends with the connection
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

        def status() -> int | None:
            view = service.app(number)
            return None if view is None else views.app_document(view, binary=True)["status"]

        try:
            http_output.follow(service.outputs, number, start, self._write_flushed,
                               self._peer_gone, status)
        except OSError as exc:  # it went away, or stopped reading for too long
            raise ClientGone() from exc
        raise Answered()

    def _write_flushed(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _app_response(
        self, app_id: int, wait: float, pending: HTTPStatus
    ) -> tuple[HTTPStatus, Any]:
        service = self.server.service
        if wait > 0 and app_id in self._bound:  # watch the connection while waiting
            view = service.wait(app_id, wait, hangup=self.connection.fileno())
            if self._peer_gone():
                raise ClientGone()
        else:
            view = service.wait(app_id, wait) if wait > 0 else service.app(app_id)
        if view is None:
            raise ApiFailure(HTTPStatus.NOT_FOUND, f"no app {app_id} (never submitted, or reset)")
        status = HTTPStatus.OK if view.finished is not None else pending
        return status, views.app_document(
            view, binary=self._binary(), wall_offset=service.wall_offset
        )

    def _check_digest(self, digest: str) -> None:
        if not is_digest(digest):
            raise ApiFailure(HTTPStatus.BAD_REQUEST, "a module is named by its sha256 hex digest")


def _app_number(text: str) -> int:
    if not _APP_ID.fullmatch(text):
        raise ApiFailure(HTTPStatus.BAD_REQUEST, "an app id is a positive integer")
    return int(text)


def _first_chunk(given: str | None, last_event_id: str | None) -> int:
    """The first chunk a follower wants: `from`, else the one after `Last-Event-ID`."""
    if given is None and last_event_id is not None and last_event_id.strip().isdigit():
        return int(last_event_id.strip()) + 1
    text = given or "0"
    if not text.isdigit() or len(text) > 18:
        raise ApiFailure(HTTPStatus.BAD_REQUEST, "'from' must be a chunk number (0 or more)")
    return int(text)


def _first_use(modules: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(position, module) of each distinct module, at its first position."""
    seen: set[str] = set()
    for position, module in enumerate(modules):
        if module not in seen:
            seen.add(module)
            yield position, module
