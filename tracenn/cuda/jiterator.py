"""``tracenn.cuda.jiterator``: torch's runtime-compiled CUDA C++ elementwise kernels, which XLA
cannot run; write the function with tracenn ops (XLA fuses elementwise chains itself)."""
from __future__ import annotations

from ..errors import CudaUnsupportedError


def _create_jit_fn(code_string: str, **kwargs):
    raise CudaUnsupportedError(
        "tracenn.cuda.jiterator is not supported: it compiles CUDA C++ source, and tracenn's GPU code is "
        "XLA's. Write the elementwise function with tracenn ops; tracenn.compile fuses it into one kernel.")


def _create_multi_output_jit_fn(code_string: str, num_outputs: int, **kwargs):
    return _create_jit_fn(code_string)
