"""The primitive ops: one registry (:data:`OPS`), filled by the modules imported here.

``ops`` imports nothing from the rest of tracenn; eager dispatch, the tracer and the lowering all
read these records.
"""
from . import complexnum, creation, decomp, elementwise, fft, index, linalg, movement  # noqa: F401 (they register)
from . import random, reduce, scan, special  # noqa: F401
from . import window  # noqa: F401 (registers reduce_window, window_argmax, conv_transpose)
from .registry import OPS, OpDef, register, unbroadcast

__all__ = ["OPS", "OpDef", "register", "unbroadcast"]
