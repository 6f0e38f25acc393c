"""The data plane's receiving end: frames parsed from a read-ahead buffer, payloads delivered
whole, in part (truncated receives) or skipped, whatever their size against the buffer."""

from __future__ import annotations

import ctypes
import socket
import threading

from faabric.mpi.network import Inbox, PayloadReader, _send_all

SIZES = (0, 1, 39, 40, 41, 63, 64, 65, 200, 5000, 3)


def test_frames_of_every_size_around_the_buffer_come_out_whole() -> None:
    a, b = socket.socketpair()
    inbox = Inbox(b, size=64)  # smaller than a header plus most payloads
    payloads = [bytes((i * 7 + n) % 256 for i in range(n)) for n in SIZES]

    def sender() -> None:
        for data in payloads:
            _send_all(a, (len(data).to_bytes(8, "little") + bytes(32), memoryview(data)))

    thread = threading.Thread(target=sender)
    thread.start()
    for i, data in enumerate(payloads):
        header = bytearray(40)
        inbox.read(memoryview(header))
        length = int.from_bytes(header[:8], "little")
        assert length == len(data)
        reader = PayloadReader(inbox, length)
        if i % 3 == 0:
            assert bytes(reader.read_bytes()) == data
        elif i % 3 == 1:
            buf = ctypes.create_string_buffer(max(length, 1))
            reader.read_into(ctypes.addressof(buf), length // 2)  # the rest is skipped
            assert buf.raw[: length // 2] == data[: length // 2]
        else:
            reader.skip()
    thread.join(5)
    a.close()
    b.close()
