"""A service's background thread that survives gunicorn's fork.

A thread started before the fork does not exist in the child: `ensure_running()`, called on the
request path, starts the loop again in a process that has not run it yet.
"""

from __future__ import annotations

import os
import threading


class BackgroundLoop:
    """Runs `self._run()` in a daemon thread of this process; `_run` watches `self._stop`."""

    thread_name = "background"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Start the loop in this process (a no-op while it runs here)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._stop = threading.Event()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def ensure_running(self) -> None:
        """Restart the loop in a forked child, whose copy of the parent's thread never runs."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop and wait for it up to `timeout` seconds (work in flight finishes first)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
