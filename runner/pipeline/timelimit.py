"""A wall-clock limit for pure-Python work in the calling thread (template rendering).

`time_limit(seconds)` raises `TimeLimitExceeded` inside the block once `seconds` have passed, by
posting an asynchronous exception to the thread (delivered between Python bytecodes, so a loop
that calls nothing is stopped too). It never fires after the block has left.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TimeLimitExceeded(Exception):
    """The block ran longer than its limit."""


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Run the block with a limit of `seconds` (wall clock); raises TimeLimitExceeded when it is hit.

    Code blocked in one long C call is stopped only when that call returns.
    """
    thread = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def fire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                _set_async_exc(thread, ctypes.py_object(TimeLimitExceeded))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["done"] = True
            if state["fired"]:
                _set_async_exc(thread, ctypes.py_object())  # drop it if it is still pending
        timer.cancel()
    if state["fired"]:
        raise TimeLimitExceeded(f"took longer than {seconds:g}s")
