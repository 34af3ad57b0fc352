#!/usr/bin/python3
"""python_seed.py - the seed design's TCP ingest server, as a peer of
`weir serve` (Debian's python3-pydantic 1.10, optionally python3-uvloop).

    /usr/bin/python3 bench/ingest/python_seed.py --data DIR
        [--host 127.0.0.1] [--port 0] [--port-file FILE] [--uvloop]
        [--buffer-size 1000]

What the seed talk (shared/seeds/001_*.txt) shows, re-implemented as the
research peer was (shared/research/peers-measured-here.md, 4.1):
asyncio.start_server; per connection `while not reader.at_eof(): data =
await reader.readline()`, skipping b""; the model validates the line; a
valid record's re-serialisation (`model.json() + "\\n"`, the v1 spelling of
model_dump_json) goes to an AsyncBatchWriter that buffers per hour file and
appends a batch to DIR/date=YYYY-MM-DD/hour=HH/python-seed.ndjson once it
holds --buffer-size lines; a ValidationError is logged at ERROR ("Skipping
due to validation error", as the seed does) and the line skipped. SIGTERM
or SIGINT stops the server and flushes every buffer, then exits 0.

The model is bench/validate/pydantic_seed.py's: the seed's TelemetryData
made strict where pydantic 1 allows (StrictInt, StrictFloat | StrictStr with
JSON integers taken as floats, enums), since Debian 12 ships pydantic 1.10
(pure Python), not the pydantic 2 the seed targets. The batch is written
with a plain synchronous append under an asyncio.Lock: the seed's writer is
"asynchronously write to disk" without more detail. Nothing is fsynced.
--port 0 takes a free port; --port-file receives its number once listening.
Logs (one line per rejected record, as the seed's logger.error) go to
stderr.
"""
import argparse
import asyncio
import logging
import os
import signal
import sys
from collections import defaultdict
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "validate"))
import pydantic  # noqa: E402
from pydantic_seed import TelemetryData  # noqa: E402


class AsyncBatchWriter:
    """Buffers lines per hour file; appends a file's batch when it is full."""

    def __init__(self, data_path, buffer_size):
        self.data_path = data_path
        self.buffer_size = buffer_size
        self.buffers = defaultdict(list)
        self.lock = asyncio.Lock()

    def path_for(self, timestamp):
        t = datetime.fromtimestamp(timestamp, timezone.utc)
        return os.path.join(self.data_path, t.strftime("date=%Y-%m-%d"),
                            t.strftime("hour=%H"), "python-seed.ndjson")

    async def add_to_batch(self, timestamp, line):
        path = self.path_for(timestamp)
        buf = self.buffers[path]
        buf.append(line)
        if len(buf) >= self.buffer_size:
            await self.flush(path)

    async def flush(self, path):
        async with self.lock:
            lines = self.buffers.pop(path, None)
            if not lines:
                return
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write("".join(lines))

    async def flush_all(self):
        for path in list(self.buffers):
            await self.flush(path)


class TCPServer:
    def __init__(self, host, port, data_path, buffer_size):
        self.host = host
        self.port = port
        self.writer = AsyncBatchWriter(data_path, buffer_size)
        self.logger = logging.getLogger("python-seed")

    async def handle_connection(self, reader, writer):
        while not reader.at_eof():
            data = await reader.readline()
            if data == b"":
                continue
            try:
                jdata = TelemetryData.parse_raw(data)
                await self.writer.add_to_batch(jdata.timestamp, jdata.json() + "\n")
            except pydantic.ValidationError as e:
                self.logger.error(f"Skipping due to validation error: {e.errors()}")
                continue
        writer.close()
        await writer.wait_closed()

    async def serve(self, port_file):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await asyncio.start_server(self.handle_connection, self.host,
                                            self.port)
        if port_file:
            port = server.sockets[0].getsockname()[1]
            with open(port_file + ".tmp", "w") as f:
                f.write("%d\n" % port)
            os.replace(port_file + ".tmp", port_file)
        async with server:
            await stop.wait()
            server.close()
        await self.writer.flush_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--buffer-size", type=int, default=1000)
    args = ap.parse_args()
    if not pydantic.VERSION.startswith("1."):
        sys.stderr.write("python_seed.py: wants pydantic 1.x (Debian's "
                         "python3-pydantic), found %s\n" % pydantic.VERSION)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.uvloop:
        import uvloop
        uvloop.install()
    server = TCPServer(args.host, args.port, args.data, args.buffer_size)
    asyncio.run(server.serve(args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
