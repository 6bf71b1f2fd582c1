"""Grad mode is thread-local, as torch's: one thread's no_grad/inference_mode leaves others alone."""
from __future__ import annotations

import threading

import tracenn


def _in_thread(fn):
    """Run ``fn`` in a new thread and return its result (re-raising its exception)."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (handed back to the test)
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _records():
    x = tracenn.ones(2, requires_grad=True)
    return (x * 2).requires_grad


def test_new_thread_starts_with_grad_enabled():
    with tracenn.no_grad():
        assert not tracenn.is_grad_enabled()
        assert _in_thread(tracenn.is_grad_enabled)
        assert _in_thread(_records)
        assert not _records()


def test_set_grad_enabled_in_a_thread_does_not_leak():
    def off():
        tracenn.set_grad_enabled(False)  # left off: only this thread's flag
        return tracenn.is_grad_enabled(), _records()

    assert _in_thread(off) == (False, False)
    assert tracenn.is_grad_enabled()
    assert _records()


def test_no_grad_in_threads_running_together():
    """Two threads interleave: one in no_grad, one recording; each sees only its own mode."""
    inside = threading.Barrier(2)
    seen = {}

    def quiet():
        with tracenn.no_grad():
            inside.wait()
            seen["quiet"] = _records()
            inside.wait()

    def loud():
        inside.wait()  # the other thread is inside no_grad now
        seen["loud"] = _records()
        inside.wait()

    threads = [threading.Thread(target=quiet), threading.Thread(target=loud)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"quiet": False, "loud": True}


def test_inference_mode_is_thread_local():
    with tracenn.inference_mode():
        assert tracenn.is_inference_mode_enabled()
        assert _in_thread(tracenn.is_inference_mode_enabled) is False
        assert _in_thread(tracenn.is_grad_enabled) is True
    assert not tracenn.is_inference_mode_enabled()


def test_matches_torch_threads(torch):
    with torch.no_grad():
        expected = _in_thread(torch.is_grad_enabled)
    with tracenn.no_grad():
        assert _in_thread(tracenn.is_grad_enabled) == expected


def test_decorated_function_restores_the_calling_threads_mode():
    @tracenn.no_grad()
    def f():
        return tracenn.is_grad_enabled()

    assert _in_thread(f) is False
    assert tracenn.is_grad_enabled()
