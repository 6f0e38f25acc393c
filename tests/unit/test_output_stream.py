"""Streamed output: the planner's bounded buffers, the event wire format, the worker's
streamer and how `faabric run` prints what arrives."""

from __future__ import annotations

import io
import threading
import time

from faabric.granule.streaming import OutputStreamer, StreamLimits
from faabric.messages.control import OutputChunk
from faabric.planner import http_output
from faabric.planner.output import Chunk, Ended, Lost, OutputBuffers, OutputLimits
from faabric.run_output import OutputPrinter
from faabric.wasm.capture import MemoryFile


def test_chunks_are_numbered_and_read_from_any_point() -> None:
    buffers = OutputBuffers()
    buffers.open([1])
    assert buffers.add(1, 0, 1, 0, b"a\n")
    assert buffers.add(1, 1, 2, 0, b"b\n")
    assert buffers.read(1, 0, 0) == [Chunk(0, 0, 1, 0, b"a\n"), Chunk(1, 1, 2, 0, b"b\n")]
    assert buffers.read(1, 1, 0) == [Chunk(1, 1, 2, 0, b"b\n")]
    assert buffers.read(1, 2, 0) == []  # nothing new, the app goes on


def test_an_ended_app_reads_to_its_end() -> None:
    buffers = OutputBuffers()
    buffers.open([1])
    buffers.add(1, 0, 1, 0, b"x")
    buffers.finish(1)
    assert buffers.read(1, 0, 0) == [Chunk(0, 0, 1, 0, b"x"), Ended(1)]
    assert buffers.read(1, 1, 0) == [Ended(1)]
    assert not buffers.add(1, 0, 1, 1, b"late")  # nothing is kept after the end


def test_unknown_and_reset_apps_read_as_ended() -> None:
    buffers = OutputBuffers()
    assert buffers.read(7, 0, 0) == [Ended(0)]
    assert not buffers.add(7, 0, 1, 0, b"x")
    buffers.open([1])
    buffers.add(1, 0, 1, 0, b"x")
    buffers.clear()
    assert buffers.read(1, 0, 0) == [Ended(0)] and buffers.held == 0


def test_a_follower_that_fell_behind_is_told_what_it_lost() -> None:
    buffers = OutputBuffers(OutputLimits(per_app=10))
    buffers.open([1])
    for offset in range(0, 20, 4):
        buffers.add(1, 0, 1, offset, b"abcd")
    assert buffers.held == 8  # two chunks of four bytes fit in ten
    assert buffers.read(1, 0, 0) == [Lost(0, 3), Chunk(3, 0, 1, 12, b"abcd"),
                                     Chunk(4, 0, 1, 16, b"abcd")]


def test_chunk_count_and_total_bytes_are_bounded() -> None:
    buffers = OutputBuffers(OutputLimits(max_chunks=3, total=12))
    buffers.open([1, 2])
    for offset in range(5):
        buffers.add(1, 0, 1, offset, b"x")
    assert [e.seq for e in buffers.read(1, 0, 0) if isinstance(e, Chunk)] == [2, 3, 4]
    buffers.add(2, 0, 1, 0, b"y" * 10)  # over the total: the largest buffer gives way
    assert buffers.held <= 12


def test_finished_apps_keep_their_buffer_for_a_while() -> None:
    buffers = OutputBuffers(OutputLimits(keep_finished=1))
    buffers.open([1, 2])
    buffers.add(1, 0, 1, 0, b"one")
    buffers.add(2, 0, 1, 0, b"two")
    buffers.finish(1)
    assert buffers.read(1, 0, 0)[0] == Chunk(0, 0, 1, 0, b"one")
    buffers.finish(2)  # app 1's buffer goes
    assert buffers.read(1, 0, 0) == [Ended(0)] and buffers.held == 3


def test_a_waiting_follower_is_woken_by_a_chunk() -> None:
    buffers = OutputBuffers()
    buffers.open([1])
    threading.Timer(0.05, buffers.add, (1, 0, 1, 0, b"now")).start()
    started = time.monotonic()
    assert buffers.read(1, 0, 5.0) == [Chunk(0, 0, 1, 0, b"now")]
    assert time.monotonic() - started < 2.0


def test_events_have_the_documented_wire_form() -> None:
    def status() -> int:
        return 3

    assert http_output.encode(Chunk(4, 1, 2, 10, b"hi\n"), status) == (
        b'id: 4\nevent: output\ndata: {"seq": 4, "index": 1, "stream": "stderr", '
        b'"offset": 10, "data": "aGkK"}\n\n')
    assert http_output.encode(Lost(0, 3), status) == (
        b'event: lost\ndata: {"first": 0, "next": 3}\n\n')
    assert http_output.encode(Ended(5), status) == (
        b'event: end\ndata: {"next": 5, "status": 3}\n\n')


def test_follow_writes_until_the_end() -> None:
    buffers = OutputBuffers()
    buffers.open([1])
    buffers.add(1, 0, 1, 0, b"a")
    buffers.finish(1)
    written: list[bytes] = []
    http_output.follow(buffers, 1, 0, written.append, lambda: False, lambda: 0)
    assert b"".join(written).endswith(b'event: end\ndata: {"next": 1, "status": 0}\n\n')


def test_the_streamer_sends_what_is_written_in_order_and_within_the_limit() -> None:
    sent: list[OutputChunk] = []
    streamer = OutputStreamer(sent.append, StreamLimits(limit=10, chunk_size=4,
                                                        interval=0.01))
    out, err = MemoryFile("out"), MemoryFile("err")
    try:
        tap = streamer.tap(5, 2, base=(3, 0))  # 3 bytes were sent before a move
        tap.attach(out, err)
        out_fd = open(out.path, "ab", buffering=0)  # noqa: SIM115
        out_fd.write(b"hello")
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.01)
        out_fd.write(b" world, more than the limit")
        open(err.path, "ab", buffering=0).write(b"oops")  # noqa: SIM115
        tap.detach()
        out_fd.close()
    finally:
        streamer.close()
        out.close()
        err.close()
    stdout = [c for c in sent if c.stream == 1]
    assert b"".join(c.data for c in stdout) == b"hello w"  # 3 + 7 bytes: the limit
    assert [c.offset for c in stdout] == sorted(c.offset for c in stdout)
    assert stdout[0].offset == 3 and all(len(c.data) <= 4 for c in sent)
    assert [(c.app_id, c.index, c.offset, c.data) for c in sent if c.stream == 2] == [
        (5, 2, 0, b"oops")]


def _printer(size: int, *, tag: bool = False,
             verbose: bool = False) -> tuple[OutputPrinter, io.BytesIO, io.BytesIO]:
    out, err = io.BytesIO(), io.BytesIO()
    return OutputPrinter(7, size, out, err, tag=tag, verbose=verbose), out, err


def test_one_granule_prints_bytes_as_they_come_and_never_twice() -> None:
    printer, out, _ = _printer(1)
    printer.take([Chunk(0, 0, 1, 0, b"work"), Chunk(1, 0, 1, 4, b"ing...")])
    assert out.getvalue() == b"working..."
    printer.finish([{"index": 0, "stdout": b"working... done\n", "stderr": b""}])
    assert out.getvalue() == b"working... done\n"


def test_granules_lines_never_mix_and_tags_name_app_and_granule() -> None:
    printer, out, err = _printer(2, tag=True)
    printer.take([Chunk(0, 0, 1, 0, b"a1\na"), Chunk(1, 1, 1, 0, b"b1\n"),
                  Chunk(2, 0, 1, 4, b"2\n"), Chunk(3, 1, 2, 0, b"warn\n")])
    assert out.getvalue() == b"[7,0]<stdout>:a1\n[7,1]<stdout>:b1\n[7,0]<stdout>:a2\n"
    assert err.getvalue() == b"[7,1]<stderr>:warn\n"
    printer.finish([{"index": 0, "stdout": b"a1\na2\nlast", "stderr": b""},
                    {"index": 1, "stdout": b"b1\n", "stderr": b"warn\n"}])
    assert out.getvalue().endswith(b"[7,0]<stdout>:last\n")


def test_a_gap_stops_live_printing_and_the_results_fill_in() -> None:
    printer, out, _ = _printer(1)
    printer.take([Chunk(0, 0, 1, 0, b"one "), Lost(1, 2), Chunk(2, 0, 1, 8, b"three ")])
    assert out.getvalue() == b"one "
    printer.finish([{"index": 0, "stdout": b"one two three ", "stderr": b""}])
    assert out.getvalue() == b"one two three "


def test_a_traps_backtrace_is_printed_only_when_verbose() -> None:
    stderr = b"guest said\n\n[faabric] error while executing at wasm backtrace:\n  0: x\n"
    for verbose, expected in ((False, b"guest said\n"), (True, stderr)):
        printer, _, err = _printer(1, verbose=verbose)
        printer.take([Chunk(0, 0, 2, 0, b"guest said\n")])
        printer.finish([{"index": 0, "stdout": b"", "stderr": stderr}])
        assert err.getvalue() == expected
