"""A service's background thread: one step at a time, retried with backoff, restarted after a fork.

A thread started before a fork does not exist in the child: a loop that was running when the process
forked starts again in the child (`os.register_at_fork`), so a gunicorn worker forked from a master
holding the app runs its own.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref


class BackgroundLoop:
    """Runs `tick()` in a daemon thread of this process, again after the seconds it returns. A step that
    raises is logged (`failure`, on `log`) and retried after `retry_first` seconds, doubling up to
    `retry_max`. `settled` is set once the first step has finished, whatever its outcome. `stop()`
    waits `stop_wait` seconds for a step in flight."""

    thread_name: str
    log: logging.Logger
    failure: str
    retry_first: float
    retry_max: float
    stop_wait: float

    def __init__(self) -> None:
        self.settled = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        _LOOPS.add(self)

    def tick(self) -> float:
        """One step; returns the seconds until the next."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the loop in this process (a no-op while it runs)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the loop and wait for the step in flight, up to `stop_wait` seconds."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread.is_alive():
            thread.join(self.stop_wait)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        stop = self._stop
        backoff = self.retry_first
        while not stop.is_set():
            try:
                delay = self.tick()
                backoff = self.retry_first
            # The loop must outlive any failure (database down, bad data): coderd retries every error.
            except Exception:
                self.log.error(self.failure, exc_info=True)
                delay, backoff = backoff, min(backoff * 2, self.retry_max)
            self.settled.set()
            stop.wait(delay)

    def _after_fork(self) -> None:
        # In the child: the parent's thread is gone and its lock may have been held at the fork.
        was_running = self._thread is not None and not self._stop.is_set()
        self._lock = threading.Lock()
        self._thread = None
        if was_running:
            self.start()


_LOOPS: weakref.WeakSet[BackgroundLoop] = weakref.WeakSet()


def _restart_after_fork() -> None:
    for loop in list(_LOOPS):
        loop._after_fork()


os.register_at_fork(after_in_child=_restart_after_fork)
