"""Waiting for something another process does (a worker, the sandbox, a live server)."""

import time


def wait_until(predicate, timeout, what, *, interval=0.1, on_poll=None):
    """Poll PREDICATE until it returns something true (returned) or TIMEOUT seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if on_poll is not None:
            on_poll()
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
