"""Every named error tracenn raises. Each subclasses the builtin torch raises in the same case,
so ``except RuntimeError`` code written for torch keeps working."""


class TracennError(Exception):
    """Base of tracenn's own errors (always combined with a builtin below)."""


class DeviceError(TracennError, RuntimeError):
    """A device that JAX does not see was asked for."""


class InplaceError(TracennError, RuntimeError):
    """An in-place operation that autograd cannot allow (leaf requiring grad, overlapping memory)."""


class SavedTensorModifiedError(TracennError, RuntimeError):
    """A tensor saved for backward was modified in place before ``backward()`` ran."""


class BackwardError(TracennError, RuntimeError):
    """``backward()``/``autograd.grad`` called in a way torch rejects."""


class ShapeError(TracennError, RuntimeError):
    """Shapes that do not fit the operation (torch raises RuntimeError for these)."""


class DtypeError(TracennError, RuntimeError):
    """A dtype the operation cannot take, or a cast torch refuses in an in-place op."""


class SparseUnsupportedError(TracennError, NotImplementedError):
    """An operation that sparse COO tensors do not support (tracenn.sparse lists the ones they do);
    the message says to call ``.to_dense()`` first. A NotImplementedError, as torch raises for an
    op with no sparse kernel (and so a RuntimeError too)."""


class CompileError(TracennError, RuntimeError):
    """``tracenn.compile`` could not capture a call into one program (the message says why)."""


class DataDependentError(CompileError):
    """Python code read a tensor's value (``.item()``, ``bool(t)``, ``if t > 0``) while compiling,
    when tensors have only shapes and dtypes."""


class UnsupportedError(CompileError):
    """A call that a compiled program cannot contain (a module with backward hooks); the runtime
    runs such a call eagerly instead, warning once."""


class OutOfMemoryError(TracennError, RuntimeError):
    """A device ran out of memory (XLA's ``RESOURCE_EXHAUSTED``): torch.OutOfMemoryError, which
    is also ``tracenn.cuda.OutOfMemoryError``."""


class AcceleratorError(TracennError, RuntimeError):
    """An error an accelerator reported while running work (torch.AcceleratorError)."""


def out_of_memory(e: BaseException) -> "OutOfMemoryError | None":
    """:class:`OutOfMemoryError` for JAX's out-of-memory runtime error ``e`` (else None), saying
    what to do; ``raise err from e`` keeps XLA's words."""
    text = str(e).splitlines()[0] if str(e) else ""
    at = text.find("Out of memory")
    if not isinstance(e, RuntimeError) or isinstance(e, TracennError) or (
            at < 0 and not text.startswith("RESOURCE_EXHAUSTED")):
        return None
    # (JAX runs programs asynchronously: an allocation that failed in an earlier call can surface
    # in a later one that reads its result, as "INTERNAL: Error dispatching computation: ...")
    what = text[at:] if at >= 0 else text[len("RESOURCE_EXHAUSTED:"):].strip()
    return OutOfMemoryError(
        f"out of memory: {what} Free tensors you no longer need (del them; gc.collect()), use a smaller "
        "batch, or compute in a lower precision (tracenn.autocast)")


class CudaDeviceError(DeviceError, AssertionError):
    """A GPU was needed and JAX sees none (or not the one asked for). torch's CPU-only build raises
    ``AssertionError('Torch not compiled with CUDA enabled')`` here and its CUDA build a
    ``RuntimeError``; this is both, so ``except`` clauses written for either keep working."""


class CudaUnsupportedError(TracennError, NotImplementedError):
    """A CUDA feature XLA has no counterpart for (CUDA graphs, memory pools, jiterator); the message
    names what to use instead. A NotImplementedError, so a RuntimeError as torch's CPU build raises."""
