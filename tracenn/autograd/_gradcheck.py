"""``torch.autograd.gradcheck`` and ``gradgradcheck``: a function's gradients (from
``backward``) against central finite differences.

Used to test a custom ``autograd.Function`` or a hand-written gradient rule. As in torch, the
check is meaningful in float64 (a float32 input warns); complex inputs are not supported.

>>> import tracenn
>>> from tracenn.autograd import gradcheck
>>> x = tracenn.randn(3, dtype=tracenn.float64, requires_grad=True)
>>> gradcheck(lambda t: (t.sin() * t).sum(), (x,))
True
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """A gradient did not match its finite-difference estimate (torch's class name)."""


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _values(outputs):
    return [np.asarray(o.detach()._value, np.float64) for o in outputs]


def _numerical(func, inputs, i, outputs_like, eps):
    """d(outputs)/d(inputs[i]) by central differences: per output, an (out.numel, in.numel) array."""
    from ..tensor import Tensor
    x = inputs[i]
    base = np.asarray(x.detach()._value)
    cols = [np.zeros((max(o.numel(), 1) if o.dim() else 1, base.size)) for o in outputs_like]
    flat = base.reshape(-1)
    for k in range(flat.size):  # (grad mode stays on: gradgradcheck's function calls autograd.grad)
        vals = []
        for sign in (1, -1):
            pert = flat.copy()
            pert[k] += sign * eps
            args = list(inputs)
            args[i] = Tensor._wrap(_jnp().asarray(pert.reshape(base.shape), dtype=base.dtype), x.requires_grad)
            vals.append(_values(_as_tuple(func(*args))))
        for j, (hi, lo) in enumerate(zip(*vals)):
            cols[j][:, k] = ((hi - lo) / (2 * eps)).reshape(-1)
    return cols


def _jnp():
    import jax.numpy as jnp
    return jnp


def _analytical(outputs, inputs, i):
    """d(outputs)/d(inputs[i]) from backward, one output element at a time."""
    from ..tensor import Tensor
    from . import grad
    x = inputs[i]
    rows = []
    for o in outputs:
        n = max(o.numel(), 1)
        mat = np.zeros((n, x.numel()))
        if o.requires_grad:
            for r in range(n):
                seed = np.zeros(n)
                seed[r] = 1
                g = _jnp().asarray(seed.reshape(tuple(o.shape)), dtype=o._value.dtype)
                (got,) = grad(o, x, grad_outputs=Tensor._wrap(g), retain_graph=True, allow_unused=True)
                if got is not None:
                    mat[r] = np.asarray(got.detach()._value, np.float64).reshape(-1)
        rows.append(mat)
    return rows


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0,
              check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
              check_batched_forward_grad=False, check_forward_ad=False, check_backward_ad=True, fast_mode=False,
              masked=None):
    """Whether the gradients of ``func`` at ``inputs`` (a tensor or tuple; those with
    ``requires_grad=True`` are checked) match central finite differences with step ``eps``,
    elementwise within ``atol + rtol * |numerical|``. On a mismatch raises ``GradcheckError``
    (a RuntimeError) naming the output and input, or returns False with ``raise_exception=False``.
    The other options are accepted for compatibility; the check done is torch's slow-mode
    backward check."""
    from ..tensor import Tensor
    ins = _as_tuple(inputs)
    if check_forward_ad:
        raise NotImplementedError("gradcheck: check_forward_ad=True is not supported (tracenn's gradient rules are "
                                  "reverse-mode); the backward check is the default")
    for k, t in enumerate(ins):
        if isinstance(t, Tensor) and t.requires_grad:
            if t.is_complex():
                raise NotImplementedError("gradcheck: complex inputs are not supported yet")
            if t.dtype.itemsize < 8:
                warnings.warn(f"Input #{k} requires gradient and is not a double precision floating point or complex. "
                              "This check will likely fail if all the inputs are not of double precision floating "
                              "point or complex. ", stacklevel=2)
    outputs = _as_tuple(func(*ins))
    diff_in = [k for k, t in enumerate(ins) if isinstance(t, Tensor) and t.requires_grad]
    if not diff_in:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the them "
                         "have requires_grad=True.")
    for i in diff_in:
        num = _numerical(func, ins, i, outputs, eps)
        ana = _analytical(outputs, ins, i)
        for j, (n, a) in enumerate(zip(num, ana)):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                msg = (f"Jacobian mismatch for output {j} with respect to input {i},\n"
                       f"numerical:{np.array2string(n, precision=4)}\nanalytical:{np.array2string(a, precision=4)}\n")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0,
                  check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
                  check_fwd_over_rev=False, check_rev_over_rev=True, fast_mode=False, masked=False):
    """:func:`gradcheck` of the gradient of ``func``: checks second derivatives, through
    ``backward(create_graph=True)``. ``grad_outputs`` (the cotangents) are random when not given."""
    from ..tensor import Tensor
    from . import grad
    from ..random import randn
    ins = _as_tuple(inputs)
    outputs = _as_tuple(func(*ins))
    if grad_outputs is None:
        grad_outputs = tuple(randn(*o.shape, dtype=o.dtype, requires_grad=True) for o in outputs
                             if o.requires_grad)
    gos = _as_tuple(grad_outputs)
    n = len(ins)

    def first_derivatives(*args):
        xs, gs = args[:n], args[n:]
        outs = [o for o in _as_tuple(func(*xs)) if o.requires_grad]
        wrt = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        got = grad(outs, wrt, grad_outputs=list(gs), create_graph=True, allow_unused=True)
        return tuple(g for g in got if g is not None)
    return gradcheck(first_derivatives, ins + tuple(gos), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
