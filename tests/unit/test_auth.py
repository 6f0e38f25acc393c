"""The cluster token (where it comes from, how it is made) and the handshake over a socket
pair: both ends must prove they know the token, in fixed sizes, within a deadline."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from faabric.config import default_token_path
from faabric.errors import AuthError, BrokenError, ConfigError, TimeoutError_
from faabric.transport import auth
from faabric.transport.auth import (
    ANSWER,
    CONTROL,
    DATA,
    GREETING,
    MAC,
    MAGIC,
    Gate,
    accept_handshake,
    connect_handshake,
    ensure_token,
    load_token,
    new_token,
)

TOKEN = "a-cluster-token-for-the-tests-0001"
OTHER = "another-token-nobody-shares-00002"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(acceptor's end, connector's end)."""
    a, c = socket.socketpair()
    yield a, c
    a.close()
    c.close()


def in_thread(action: Callable[[], None]) -> Callable[[], BaseException | None]:
    """Run `action` on a thread; the returned function joins it and gives its exception."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> BaseException | None:
        thread.join(10)
        assert not thread.is_alive()
        return failure[0] if failure else None

    return join


def accept(sock: socket.socket, token: str = TOKEN, purpose: str = CONTROL) -> None:
    """The acceptor's side, closing the socket on a refusal (as `Gate` does)."""
    try:
        accept_handshake(sock, token, purpose)
    except AuthError:
        sock.close()
        raise


def connect(sock: socket.socket, token: str = TOKEN, timeout: float = 5.0) -> None:
    connect_handshake(sock, token, CONTROL, peer="the planner at h:1", me="worker",
                      timeout=timeout)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    sock.settimeout(5)
    return sock.recv(size, socket.MSG_WAITALL)


# -- the token ------------------------------------------------------------------------------


def write_token(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_new_token_is_32_random_bytes_in_hex() -> None:
    first, second = new_token(), new_token()
    assert len(first) == 64 and int(first, 16) >= 0 and first != second


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write_token(tmp_path / "token", OTHER)
    assert load_token(path, f"  {TOKEN}\n") == TOKEN
    assert load_token(path) == OTHER


def test_the_file_is_read_without_its_newline(tmp_path: Path) -> None:
    assert load_token(write_token(tmp_path / "token", TOKEN + "\n")) == TOKEN


def test_no_token_is_one_line_naming_both_ways(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_token(tmp_path / "missing")
    message = str(info.value)
    assert message.startswith("no cluster token: set FAABRIC_TOKEN or create ")
    assert message.endswith("(faabric planner creates it)") and "\n" not in message


def test_the_default_file_is_shown_under_home(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_token_path() == tmp_path / ".config" / "faabric" / "token"
    with pytest.raises(ConfigError, match=r"create ~/\.config/faabric/token "):
        load_token(default_token_path())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_token_path() == tmp_path / "xdg" / "faabric" / "token"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_a_file_others_may_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_token(tmp_path / "token", TOKEN, mode)
    with pytest.raises(ConfigError, match=f"may be accessed by group or others .*chmod 600 {path}"):
        load_token(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "is empty"), ("short", "16 to 1024 characters"), ("x" * 2000, "16 to 1024 characters"),
     ("has spaces in the middle", "printable ASCII"), ("tøken-with-ø-inside", "printable")],
)
def test_malformed_tokens_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_token(write_token(tmp_path / "token", text))
    with pytest.raises(ConfigError, match=message):
        load_token(tmp_path / "unused", text)


def test_a_directory_is_not_a_token_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_token(tmp_path / "dir")


def test_ensure_creates_a_private_file_once(tmp_path: Path) -> None:
    path = tmp_path / "config" / "faabric" / "token"
    token, created = ensure_token(path)
    assert created and len(token) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert load_token(path) == token
    assert ensure_token(path) == (token, False)
    assert os.listdir(path.parent) == ["token"]  # no temporary file left behind


def test_ensure_uses_the_environment_without_creating(tmp_path: Path) -> None:
    path = tmp_path / "token"
    assert ensure_token(path, TOKEN) == (TOKEN, False)
    assert not path.exists()


def test_racing_creators_agree_on_one_token(tmp_path: Path) -> None:
    path = tmp_path / "faabric" / "token"
    start = threading.Barrier(16)

    def create() -> tuple[str, bool]:
        start.wait()
        return ensure_token(path)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: create(), range(16)))
    assert len({token for token, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert load_token(path) == results[0][0]


# -- the handshake --------------------------------------------------------------------------


def test_the_right_token_passes_both_ways(pair: tuple[socket.socket, socket.socket]) -> None:
    a, c = pair
    join = in_thread(lambda: accept_handshake(a, TOKEN, CONTROL))
    connect(c)
    assert join() is None
    assert a.gettimeout() is None and c.gettimeout() is None  # left blocking
    c.sendall(b"after")  # the connection carries on
    assert recv_exact(a, 5) == b"after"


def test_a_wrong_token_is_refused_by_the_acceptor(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, c = pair
    join = in_thread(lambda: accept(a))
    with pytest.raises(AuthError, match=r"^the planner at h:1 refused this worker's token$"):
        connect(c, OTHER)
    failure = join()
    assert isinstance(failure, AuthError) and str(failure) == "does not know the cluster token"


def test_an_acceptor_without_the_token_is_found_out(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, c = pair

    def impostor() -> None:  # answers with a proof made from another token
        nonce = os.urandom(32)
        a.sendall(MAGIC + nonce)
        theirs = recv_exact(a, ANSWER)[:32]
        a.sendall(auth._mac(OTHER, b"acceptor", CONTROL, nonce, theirs))

    join = in_thread(impostor)
    with pytest.raises(AuthError, match=r"did not prove it knows the cluster token$"):
        connect(c)
    assert join() is None


def test_an_impostor_that_replays_garbage_is_found_out(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, c = pair

    def impostor() -> None:
        a.sendall(MAGIC + bytes(32))
        recv_exact(a, ANSWER)
        a.sendall(bytes(MAC))

    join = in_thread(impostor)
    with pytest.raises(AuthError, match="did not prove it knows the cluster token"):
        connect(c)
    assert join() is None


def test_a_proof_for_the_control_plane_does_not_open_the_data_plane(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, c = pair
    join = in_thread(lambda: accept(a, TOKEN, DATA))
    with pytest.raises(AuthError, match="refused"):
        connect(c)  # CONTROL
    assert isinstance(join(), AuthError)


def test_garbage_instead_of_the_proof_is_refused(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, c = pair
    join = in_thread(lambda: accept_handshake(a, TOKEN, CONTROL))
    assert recv_exact(c, GREETING)[: len(MAGIC)] == MAGIC
    c.sendall(b"\xff\xff\xff\xff" + os.urandom(ANSWER - 4))  # a huge frame length, say
    failure = join()
    assert isinstance(failure, AuthError) and "does not know" in str(failure)


def test_a_silent_connector_times_out(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    started = time.monotonic()
    with pytest.raises(AuthError, match=r"sent no proof of the cluster token within 0\.3 s"):
        accept_handshake(a, TOKEN, CONTROL, timeout=0.3)
    assert time.monotonic() - started < 2


def test_a_trickling_connector_times_out_on_the_whole_deadline(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, c = pair
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.05):
            try:
                c.send(b"x")
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(AuthError, match=r"within 0\.3 s"):
        accept_handshake(a, TOKEN, CONTROL, timeout=0.3)
    stop.set()
    assert time.monotonic() - started < 2


def test_a_silent_acceptor_times_out(pair: tuple[socket.socket, socket.socket]) -> None:
    _, c = pair
    with pytest.raises(TimeoutError_, match=r"did not start authenticating within 0\.3 s"):
        connect(c, timeout=0.3)


def test_an_acceptor_that_closes_at_once_is_broken(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, c = pair
    a.close()
    with pytest.raises(BrokenError, match="closed the connection before authenticating"):
        connect(c)


def test_a_peer_that_does_not_speak_the_protocol(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, c = pair
    a.sendall(b"HTTP/1.1 400 Bad Request\r\n" + bytes(GREETING))
    with pytest.raises(AuthError, match="does not speak faabric's authentication"):
        connect(c)


def test_nothing_is_read_beyond_the_fixed_sizes(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, c = pair
    real_recv = auth._recv
    asked: list[int] = []

    def counting(sock: socket.socket, size: int, deadline: float) -> bytes:
        asked.append(size)
        return real_recv(sock, size, deadline)

    monkeypatch.setattr(auth, "_recv", counting)

    def acceptor() -> None:
        accept_handshake(a, TOKEN, CONTROL)
        a.sendall(b"then-the-acceptor")

    join = in_thread(acceptor)
    connect(c)
    c.sendall(b"then-the-connector")
    assert join() is None
    assert sorted(asked) == sorted([GREETING, ANSWER, MAC])
    assert recv_exact(c, 17) == b"then-the-acceptor"  # the connector read no further
    assert recv_exact(a, 18) == b"then-the-connector"


# -- the gate -------------------------------------------------------------------------------


def test_the_gate_serves_the_authenticated_and_closes_the_others() -> None:
    served: list[bytes] = []
    done = threading.Event()

    def serve(sock: socket.socket) -> None:
        served.append(recv_exact(sock, 5))
        sock.close()
        done.set()

    gate = Gate(TOKEN, CONTROL, serve, what="test", timeout=1.0)
    a1, c1 = socket.socketpair()
    a2, c2 = socket.socketpair()
    gate.admit(a2)
    gate.admit(a1)
    with pytest.raises(AuthError, match="refused"):
        connect(c2, OTHER)
    connect(c1)
    c1.sendall(b"hello")
    assert done.wait(5) and served == [b"hello"]
    c2.settimeout(5)
    assert c2.recv(1) == b""  # the refused one was closed
    for sock in (c1, c2):
        sock.close()


def test_the_gate_bounds_the_connections_authenticating_at_once() -> None:
    gate = Gate(TOKEN, CONTROL, lambda sock: None, what="test", limit=2, timeout=2.0)
    pairs = [socket.socketpair() for _ in range(3)]
    for accepted, _ in pairs:
        gate.admit(accepted)
    third = pairs[2][1]
    third.settimeout(1)
    assert third.recv(1) == b""  # closed at once: two others are authenticating
    for accepted, connector in pairs:
        accepted.close()
        connector.close()
