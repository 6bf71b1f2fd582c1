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

``TRACENN_TEST_XLA=default`` runs the suite with XLA's own settings. Flags the caller put in
``XLA_FLAGS`` are kept, and win over these (XLA takes the last of a repeated flag).
"""
from __future__ import annotations

import os

FAST_COMPILE_FLAGS = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")

if os.environ.get("TRACENN_TEST_XLA", "fast").strip().lower() != "default":
    # before anything starts a JAX backend: XLA reads XLA_FLAGS once, when the backend starts
    os.environ["XLA_FLAGS"] = " ".join(FAST_COMPILE_FLAGS + (os.environ.get("XLA_FLAGS", ""),)).strip()
