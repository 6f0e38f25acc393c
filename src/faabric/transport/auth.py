"""The cluster secret: where the token comes from, and the handshake proving both ends know it.

The token is read once, at the edge (`load_token`, `ensure_token`), and handed down
explicitly. Every control-plane and data-plane connection then starts with a fixed-size
mutual challenge, before a single frame is read:

    acceptor  -> connector   MAGIC (8 bytes) + acceptor nonce (32)
    connector -> acceptor    connector nonce (32) + HMAC-SHA256(token, "connector" | both)
    acceptor  -> connector   HMAC-SHA256(token, "acceptor" | both)

The MACs also cover the connection's purpose (control or data), so a proof made for one
cannot open the other. Nothing is allocated from what the peer sends, nothing is read beyond
these sizes, and the whole exchange has a deadline. `Gate` runs the acceptor's side on a
thread per connection, a bounded number at once. This module must not read the environment
itself (callers pass what they read) nor know what travels once the handshake is done.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from faabric.errors import AuthError, BrokenError, ConfigError, TimeoutError_

log = logging.getLogger(__name__)

TOKEN_ENV = "FAABRIC_TOKEN"
MIN_TOKEN = 16  # characters
MAX_TOKEN = 1024
MAGIC = b"FAABRIC\x01"
NONCE = 32
MAC = 32  # HMAC-SHA256
GREETING = len(MAGIC) + NONCE  # acceptor -> connector
ANSWER = NONCE + MAC  # connector -> acceptor
HANDSHAKE_TIMEOUT = 5.0
PENDING_LIMIT = 64  # connections authenticating at once, per listening socket
CONTROL, DATA = "control", "data"


# -- the token ------------------------------------------------------------------------------


class _NoTokenFile(ConfigError):
    """The token file does not exist."""


def new_token() -> str:
    """A fresh random token: 32 bytes as hex."""
    return secrets.token_hex(32)


def load_token(path: Path, given: str | None = None) -> str:
    """The cluster token: `given` (what the caller read from FAABRIC_TOKEN) if not None,
    else the contents of the file `path`, which only its owner may access.

    Raises:
        ConfigError: no token, a file group or others may access, or a malformed token.
    """
    if given is not None:
        return _checked(given.strip(), f"${TOKEN_ENV}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _NoTokenFile(f"no cluster token: set {TOKEN_ENV} or create {_shown(path)} "
                           "(faabric planner creates it)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"the token file {path} is not a regular file")
        if mode & 0o077:
            raise ConfigError(f"the token file {path} may be accessed by group or others "
                              f"(mode {stat.S_IMODE(mode):o}): run 'chmod 600 {path}'")
        data = os.read(fd, MAX_TOKEN + 2)
    finally:
        os.close(fd)
    return _checked(data.decode("latin-1").strip(), f"the token file {path}")


def ensure_token(path: Path, given: str | None = None) -> tuple[str, bool]:
    """Like `load_token`, but a missing file is created (a new token, the directory 0700,
    the file 0600, never replacing a file another process made meanwhile). Returns the
    token and whether this call created the file."""
    try:
        return load_token(path, given), False
    except _NoTokenFile:
        pass
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".token-", dir=path.parent)  # mode 0600
    except OSError as exc:
        raise ConfigError(f"cannot create the token file {path}: {exc.strerror}") from exc
    token = new_token()
    try:
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(temporary, path)  # atomic, and fails if the file appeared meanwhile
    except FileExistsError:
        return load_token(path), False  # another process won the race: use its token
    except OSError as exc:
        raise ConfigError(f"cannot create the token file {path}: {exc.strerror}") from exc
    finally:
        os.unlink(temporary)
    return token, True


def _checked(token: str, where: str) -> str:
    if not token:
        raise ConfigError(f"{where} is empty")
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise ConfigError(f"{where} must hold a token of {MIN_TOKEN} to {MAX_TOKEN} "
                          f"characters, not {len(token)}")
    if not all(0x21 <= ord(c) <= 0x7E for c in token):
        raise ConfigError(f"{where} must hold printable ASCII without spaces (the token "
                          "travels in an HTTP header)")
    return token


def _shown(path: Path) -> str:
    """`path` with the home directory written as `~`."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


# -- the handshake --------------------------------------------------------------------------


def accept_handshake(sock: socket.socket, token: str, purpose: str,
                     timeout: float = HANDSHAKE_TIMEOUT) -> None:
    """The acceptor's side, on a freshly accepted socket, which it leaves blocking.

    Raises:
        AuthError: the peer did not prove it knows the token in time (one line, no peer
            name: the caller names it).
    """
    deadline = time.monotonic() + timeout
    mine = secrets.token_bytes(NONCE)
    try:
        _send(sock, MAGIC + mine, deadline)
        answer = _recv(sock, ANSWER, deadline)
    except TimeoutError:
        raise AuthError(f"sent no proof of the cluster token within {timeout:g} s") from None
    except OSError:
        raise AuthError("closed the connection while authenticating") from None
    theirs, proof = answer[:NONCE], answer[NONCE:]
    if not hmac.compare_digest(proof, _mac(token, b"connector", purpose, mine, theirs)):
        raise AuthError("does not know the cluster token")
    try:
        _send(sock, _mac(token, b"acceptor", purpose, mine, theirs), deadline)
    except OSError:
        raise AuthError("closed the connection while authenticating") from None
    sock.settimeout(None)


def connect_handshake(sock: socket.socket, token: str, purpose: str, *, peer: str,
                      me: str, timeout: float = HANDSHAKE_TIMEOUT) -> None:
    """The connector's side, on a freshly connected socket, which it leaves blocking.
    `peer` names the other end in errors ("the planner at HOST:PORT"), `me` this one
    ("worker").

    Raises:
        AuthError: the peer refused this side's token, or did not prove it knows it.
        TimeoutError_: the peer did not go through the handshake in time.
        BrokenError: the connection closed before the handshake began.
    """
    deadline = time.monotonic() + timeout
    try:
        greeting = _recv(sock, GREETING, deadline)
    except TimeoutError:
        raise TimeoutError_(f"{peer} did not start authenticating within {timeout:g} s "
                            "(is it a faabric of this version?)") from None
    except OSError:
        raise BrokenError(f"{peer} closed the connection before authenticating") from None
    if greeting[: len(MAGIC)] != MAGIC:
        raise AuthError(f"{peer} does not speak faabric's authentication")
    theirs, mine = greeting[len(MAGIC):], secrets.token_bytes(NONCE)
    try:
        _send(sock, mine + _mac(token, b"connector", purpose, theirs, mine), deadline)
        proof = _recv(sock, MAC, deadline)
    except TimeoutError:
        raise TimeoutError_(f"{peer} did not answer this {me}'s proof within {timeout:g} s"
                            ) from None
    except OSError:
        raise AuthError(f"{peer} refused this {me}'s token") from None
    if not hmac.compare_digest(proof, _mac(token, b"acceptor", purpose, theirs, mine)):
        raise AuthError(f"{peer} did not prove it knows the cluster token")
    sock.settimeout(None)


def _mac(token: str, role: bytes, purpose: str, acceptor: bytes, connector: bytes) -> bytes:
    message = b"faabric-auth/1|" + role + b"|" + purpose.encode() + b"|" + acceptor + connector
    return hmac.new(token.encode(), message, hashlib.sha256).digest()


def _send(sock: socket.socket, data: bytes, deadline: float) -> None:
    sock.settimeout(max(deadline - time.monotonic(), 1e-3))
    sock.sendall(data)


def _recv(sock: socket.socket, size: int, deadline: float) -> bytes:
    """Exactly `size` bytes, and not one more; TimeoutError past the deadline, OSError
    (ConnectionError) if the peer closes first."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise ConnectionError("closed")
        got += n
    return bytes(buf)


# -- the acceptor's gate --------------------------------------------------------------------


class Gate:
    """Authenticates accepted connections, each on a thread of its own, at most `limit` at
    once (more are closed at once); a connection that passes goes to `serve` on that
    thread, any other is closed with one log line naming the peer.

    Args:
        what: names the connections in logs and thread names ("control", "data-plane").
    """

    def __init__(self, token: str, purpose: str, serve: Callable[[socket.socket], None], *,
                 what: str, limit: int = PENDING_LIMIT,
                 timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self._token = token
        self._purpose = purpose
        self._serve = serve
        self._what = what
        self._timeout = timeout
        self._pending = threading.BoundedSemaphore(limit)

    def admit(self, sock: socket.socket) -> None:
        """Start authenticating `sock` (never blocks the caller)."""
        peer = _peer_name(sock)
        if not self._pending.acquire(blocking=False):
            log.warning("closed a %s connection from %s: too many are authenticating",
                        self._what, peer)
            sock.close()
            return
        try:
            threading.Thread(target=self._run, args=(sock, peer), daemon=True,
                             name=f"{self._what}-{peer}").start()
        except RuntimeError:  # no thread to spare
            self._pending.release()
            sock.close()

    def _run(self, sock: socket.socket, peer: str) -> None:
        try:
            accept_handshake(sock, self._token, self._purpose, self._timeout)
        except AuthError as exc:
            log.warning("refused a %s connection from %s: it %s", self._what, peer, exc)
            sock.close()
            return
        finally:
            self._pending.release()
        self._serve(sock)


def _peer_name(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except (OSError, ValueError):
        return "an unknown peer"
    return f"{host}:{port}"
