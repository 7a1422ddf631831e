#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that delays every byte by a fixed time in each direction: PostgreSQL "a
network hop away" for the benchmarks (these machines' kernels have no `netem` qdisc, so `tc` cannot
add the delay). Written here because it is twenty lines of asyncio; order within a connection is kept.

    .venv/bin/python scripts/delayproxy.py --listen-port 6543 --target-port 5432 --delay-ms 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence

CHUNK = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward what `reader` gets to `writer`, each chunk `delay` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(CHUNK):
            queue.put_nowait((loop.time() + delay, data))
    except OSError:
        pass
    finally:
        queue.put_nowait((0.0, b""))
        with contextlib.suppress(OSError):
            await sender


async def _serve(listen_port: int, target_host: str, target_port: int, delay: float, ready: threading.Event) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pump(client_r, server_w, delay), _pump(server_r, client_w, delay))
        for w in (client_w, server_w):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    ready.set()
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def delaying_proxy(
    listen_port: int, target_port: int, delay_ms: float, target_host: str = "127.0.0.1"
) -> Iterator[None]:
    """The proxy in a daemon thread of this process for the duration of the block."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    task: list[asyncio.Task[None]] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        task.append(loop.create_task(_serve(listen_port, target_host, target_port, delay_ms / 1000, ready)))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task[0])
        # The connections still open end with the proxy.
        pending = asyncio.all_tasks(loop)
        for t in pending:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name="delayproxy", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("delaying proxy did not start")
    try:
        yield
    finally:
        loop.call_soon_threadsafe(task[0].cancel)
        thread.join(10)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen-port", type=int, required=True)
    ap.add_argument("--target-host", default="127.0.0.1")
    ap.add_argument("--target-port", type=int, default=5432)
    ap.add_argument("--delay-ms", type=float, default=1.0)
    args = ap.parse_args(argv)
    ready = threading.Event()
    asyncio.run(_serve(args.listen_port, args.target_host, args.target_port, args.delay_ms / 1000, ready))


if __name__ == "__main__":
    main()
