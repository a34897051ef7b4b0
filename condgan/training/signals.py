"""SIGINT and SIGTERM as a request to stop between steps (the loop checks a flag; a second signal
acts at once, which is safe because every checkpoint write is atomic)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[int], None]) -> Iterator[None]:
    """Call ``request_stop(signum)`` on SIGINT/SIGTERM inside the block (main thread only; elsewhere
    signals keep their handlers); the previous handlers come back after the first signal and at exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}

    def handler(signum, frame):
        request_stop(signum)
        for sig, old in previous.items():  # a second signal acts at once
            signal.signal(sig, old)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
