"""Test-session settings shared by ``tests/`` and the doctests under ``tracenn/``.

XLA:CPU compiles every kernel and program the suite runs, and the suite runs thousands of distinct
ones (each eager op at each shape it meets, each compiled model): compiling, not running, is most
of the suite's time. On a 2-core AMD EPYC a tiny kernel took ~35 ms to compile with XLA's defaults
and ~15 ms with LLVM's optimisation off (``--xla_backend_optimization_level=0``) and XLA's older
loop emitters (``--xla_cpu_use_fusion_emitters=false``); two compile-heavy test files ran in 201 s
instead of 386 s.

What this changes in the numbers: the older emitters gave the same bits as the default ones on
every function checked; LLVM's optimisation, when on, fuses ``a * b + c`` into one FMA
instruction and picks other instruction sequences for tanh and rsqrt, so with it off some float32
results differ in the last bit or two (cancelling sums by more, relative to their size). Every
comparison in the suite has a tolerance for that kind of difference (PyTorch's kernels differ from
XLA's by as much), and eager and compiled code run under the same flags. Benchmarks, examples run
by hand and user programs keep XLA's defaults.

The other part of a kernel's first-use cost is JAX's lowering, and a third of that is one step:
each lowering makes a new MLIR context and loads every dialect into it (6-8 ms here, against
~15 ms for the fast compile). Tests reuse one context per thread for 200 lowerings
(:func:`_reuse_mlir_contexts`): the lowered programs are the same text, since a context only
holds the dialects and uniqued types and attributes. Three compile-heavy files ran in 112 s
instead of 167 s on two workers, and ``tests/test_linalg_extra.py`` peaked at 0.77 GB instead
of 1.5 GB (JAX keeps up to 2,048 lowered modules cached, each holding its own context alive).

``TRACENN_TEST_XLA=default`` runs the suite with XLA's own settings and JAX's own lowering. Flags
the caller put in ``XLA_FLAGS`` are kept, and win over these (XLA takes the last of a repeated flag).
"""
from __future__ import annotations

import os

import pytest

FAST_COMPILE_FLAGS = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")

CONTEXT_REUSES = 200  # lowerings per MLIR context (a bound on what one context accumulates)


def _reuse_mlir_contexts(uses: int = CONTEXT_REUSES) -> bool:
    """Make JAX's lowering reuse an MLIR context per thread, a new one every ``uses`` lowerings.

    ``jax._src.interpreters.mlir.make_ir_context`` is private API: when a JAX version no longer
    has it, the suite runs with JAX's own contexts (False returned), only slower."""
    import threading

    try:
        from jax._src.interpreters import mlir
    except ImportError:
        return False
    make = getattr(mlir, "make_ir_context", None)
    if make is None or getattr(make, "reused", False):
        return make is not None
    local = threading.local()

    def reused_context():
        n = getattr(local, "n", uses)
        if n >= uses:
            local.context, n = make(), 0
        local.n = n + 1
        return local.context

    reused_context.reused, reused_context.original = True, make
    reused_context.install = _reuse_mlir_contexts  # (for tests/test_suite_settings.py)
    mlir.make_ir_context = reused_context
    return True


if os.environ.get("TRACENN_TEST_XLA", "fast").strip().lower() != "default":
    # before anything starts a JAX backend: XLA reads XLA_FLAGS once, when the backend starts
    os.environ["XLA_FLAGS"] = " ".join(FAST_COMPILE_FLAGS + (os.environ.get("XLA_FLAGS", ""),)).strip()
    _reuse_mlir_contexts()


# Tests the default run leaves out: tests/slow.txt lists them by node id (scripts/slow_tests.py
# writes it from a --durations log), and they are marked slow here, before pytest's -m 'not slow'
# deselects. A listed test that no longer exists in a collected file is an error, so the list
# cannot silently rot when a test is renamed.
_SLOW_LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests", "slow.txt")


def _slow_ids() -> set:
    with open(_SLOW_LIST) as fh:
        return {line.split(maxsplit=1)[1].strip() for line in fh if line.strip() and not line.startswith("#")}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    slow = _slow_ids()
    seen, files = set(), set()
    for item in items:
        files.add(item.nodeid.split("::")[0])
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)
            seen.add(item.nodeid)
    if any("::" in a for a in config.args):  # (single tests named: the rest of their files is not collected)
        return
    stale = sorted(n for n in slow - seen if n.split("::")[0] in files)
    if stale:
        raise pytest.UsageError("tests/slow.txt lists tests that no longer exist (rename or remove them there):\n  "
                                + "\n  ".join(stale[:20]))
