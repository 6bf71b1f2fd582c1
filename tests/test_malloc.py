"""tracenn/_malloc.py: glibc's mmap and trim thresholds and top pad raised at import, unless switched off;
CPU programs' temporaries split into blocks glibc's thread arenas hold."""
import subprocess
import sys
import textwrap

import pytest

import tracenn
from tracenn import _malloc


class FakeLibc:
    def __init__(self, ok=1):
        self.calls, self.ok = [], ok

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.ok


@pytest.fixture
def fake(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(_malloc, "_glibc", lambda: libc)
    monkeypatch.setattr(_malloc, "state", _malloc.state)  # restored after the test
    return libc


def test_sets_both_thresholds_and_the_top_pad(fake):
    assert _malloc.tune({}) == "on: glibc mmap and trim thresholds 1024 MiB, top pad 64 MiB"
    assert sorted(fake.calls) == [(-3, 1 << 30), (-2, 64 << 20), (-1, 1 << 30)]
    assert tracenn.cpu.malloc_tuning() == "on: glibc mmap and trim thresholds 1024 MiB, top pad 64 MiB"


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_switched_off_by_the_environment(fake, value):
    assert _malloc.tune({"TRACENN_MALLOC_TUNING": value}) == f"off (TRACENN_MALLOC_TUNING={value})"
    assert fake.calls == []


@pytest.mark.parametrize("env", [{"MALLOC_MMAP_THRESHOLD_": "65536"}, {"MALLOC_TRIM_THRESHOLD_": "0"},
                                 {"MALLOC_TOP_PAD_": "0"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}])
def test_the_users_own_malloc_settings_win(fake, env):
    assert _malloc.tune(env) == "left to the user's MALLOC_* / GLIBC_TUNABLES settings"
    assert fake.calls == []


def test_other_tunables_do_not_count_as_malloc_settings(fake):
    assert _malloc.tune({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}).startswith("on:")


def test_refused_or_not_glibc(fake, monkeypatch):
    fake.ok = 0
    assert _malloc.tune({}) == "not applicable (glibc refused the thresholds)"
    monkeypatch.setattr(_malloc, "_glibc", lambda: None)
    assert _malloc.tune({}) == "not applicable (not Linux with glibc)"


# The effect itself: a 64 MiB block freed and allocated again (plain malloc, as XLA:CPU's buffers) is
# served from the heap, without the kernel faulting in its pages again (glibc's defaults: ~16k faults).
_FAULTS = textwrap.dedent("""
    import ctypes, resource, tracenn
    libc, n, faults = ctypes.CDLL(None), 1 << 26, []
    libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
    for _ in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(n); ctypes.memset(block, 1, n); libc.free(block)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(tracenn.cpu.malloc_tuning(), "|", max(faults[2:]))
""")


def _faults_on_and_off(script):
    """``script``'s printed (tuning state, page faults) in a fresh process, with tracenn's tuning
    on and off."""
    def run(env):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env={**env, "PATH": "", "PYTHONPATH": ":".join(sys.path)}).stdout
        state, faults = out.rsplit("|", 1)
        return state.strip(), int(faults)
    return run({}), run({"TRACENN_MALLOC_TUNING": "0"})


@pytest.mark.skipif(_malloc._glibc() is None, reason="needs Linux with glibc")
def test_a_freed_large_block_is_reused_without_page_faults():
    on, off = _faults_on_and_off(_FAULTS)
    assert on[0].startswith("on:") and off[0] == "off (TRACENN_MALLOC_TUNING=0)"
    assert on[1] < 100, on
    assert off[1] > 1000, off  # the check can fail: without the thresholds every allocation faults


# ---- temporaries split under glibc's 64 MiB thread heaps (program_options) ------------------------

def test_program_options_split_the_temporaries(fake):
    _malloc.tune({})
    assert _malloc.program_options(1000, {}) == {"xla_multiheap_size_constraint_per_heap": 32 << 20}
    # a value larger than the split: the limit is just over it (XLA warns about any larger buffer)
    assert _malloc.program_options(50 << 20, {}) == {"xla_multiheap_size_constraint_per_heap": (50 << 20) + 1}
    assert _malloc.program_options(3 << 30, {}) == {}  # past the option's int32
    # the user's own XLA_FLAGS setting wins
    assert _malloc.program_options(1000, {"XLA_FLAGS": "--xla_multiheap_size_constraint_per_heap=1000000"}) == {}


def test_no_program_options_without_the_thresholds(fake):
    _malloc.tune({"TRACENN_MALLOC_TUNING": "0"})
    assert _malloc.program_options(1000, {}) == {}
    _malloc.tune({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert _malloc.program_options(1000, {}) == {}


# A compiled function whose three 20 MiB running sums are live at once (85 MiB of temporaries, one
# block by XLA's default), called in a loop: with the split, calls after the first few (which warm
# up each XLA worker thread's arena) reuse the heaps' pages. Measured: ~230 faults a call against
# ~20,600 without the tuning.
_PROGRAM_FAULTS = textwrap.dedent("""
    import resource, tracenn
    ws = [tracenn.randn(16, 1024) for _ in range(3)]
    f = tracenn.compile(lambda x: (x @ ws[0]).cumsum(0).mul((x @ ws[1]).cumsum(0)).mul((x @ ws[2]).cumsum(0)).sum())
    x, faults = tracenn.randn(5120, 16), []
    with tracenn.no_grad():
        for _ in range(30):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            f(x).item()
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(tracenn.cpu.malloc_tuning(), "|", sum(faults[10:]) // len(faults[10:]))
""")


@pytest.mark.skipif(_malloc._glibc() is None, reason="needs Linux with glibc")
def test_a_compiled_program_with_large_temporaries_reuses_its_pages():
    on, off = _faults_on_and_off(_PROGRAM_FAULTS)
    assert on[0].startswith("on:") and off[0] == "off (TRACENN_MALLOC_TUNING=0)"
    assert on[1] < 3000, on
    assert off[1] > 10000, off  # the check can fail: one 85 MiB block comes from fresh pages every call
