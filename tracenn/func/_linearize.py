"""``torch.func.linearize`` and ``torch.func.functionalize``.

``linearize(func, *primals)`` returns ``func``'s output and a ``jvp_fn`` that maps tangents to the
Jacobian-vector product at ``primals``. torch traces the forward-mode graph once; tracenn's
``jvp_fn`` calls :func:`tracenn.func.jvp` at copies of the primals taken when ``linearize`` ran
(so later in-place changes to them do not move the point), and jvp keeps one compiled program per
function and signature: the numbers are :func:`~tracenn.func.jvp`'s, the first ``jvp_fn`` call
traces the program and later ones reuse it.

``functionalize(func)`` is torch's "remove mutations" transform. In tracenn every op is already a
functional update of JAX arrays (an in-place op rebinds the tensor handle), so there is nothing
to rewrite: the wrapper runs ``func`` on copies of its tensor arguments and, as torch's
functionalize does, writes back into an argument every change ``func`` made to its copy (through
a view too), so callers see the same input mutations and the same outputs as ``func`` itself.
"""
from __future__ import annotations

import functools

import jax

from ..tensor import Tensor
from ._grad import jvp
from ._transforms import _ordered, _tensor_leaves

__all__ = ["linearize", "functionalize"]


def _structure(tree):
    return jax.tree_util.tree_structure(_ordered(tree))


def linearize(func, *primals):
    """``torch.func.linearize``: ``(output, jvp_fn)``, ``func(*primals)`` and a function that
    computes the Jacobian-vector product of ``func`` at ``primals``: ``jvp_fn(*tangents)`` equals
    ``tracenn.func.jvp(func, primals, tangents)[1]``.

    Args:
        func: a function of one or more tensor arguments (pytrees of tensors).
        primals: the point at which ``func`` is linearized (all leaves tensors).

    Returns:
        ``(output, jvp_fn)``; ``jvp_fn`` takes tangents with the primals' structure, shapes and dtypes.

    >>> import tracenn
    >>> from tracenn.func import linearize
    >>> out, jvp_fn = linearize(lambda x: x.sin(), tracenn.zeros(3))
    >>> jvp_fn(tracenn.ones(3))
    tensor([1., 1., 1.])
    """
    output = func(*primals)
    flat = _tensor_leaves(_ordered(primals))
    spec = _structure(primals)
    point = jax.tree_util.tree_unflatten(spec, [p.detach().clone() for p in flat])
    metas = [(tuple(p.shape), p.device, p.dtype) for p in flat]

    def jvp_fn(*tangents):
        tspec = _structure(tangents)
        if tspec != spec:
            raise RuntimeError(f"Expected the tangents {tspec} to have the same argspec as the primals {spec}")
        for idx, (t, (shape, device, dtype)) in enumerate(zip(_tensor_leaves(_ordered(tangents)), metas)):
            for what, got, want in (("shape", tuple(t.shape), shape), ("device", t.device, device),
                                    ("dtype", t.dtype, dtype)):
                if got != want:
                    raise RuntimeError(f"tangent:{idx} with {what} {got} in flattened pytree doesn't match the "
                                       f"{what} {want} of the corresponding primal.")
        return jvp(func, tuple(point), tuple(_ordered(tangents)))[1]

    return output, jvp_fn


_REMOVE_HELP = (" Valid options are:\n"
                "     remove='mutations': all inplace and out= operators will be removed from the program, and "
                "replaced with their out-of-place equivalents.\n"
                "     remove='mutations_and_views': In addition to the above, all aliasing operators {view} will be "
                "replaced with their non-aliasing counterparts, {view}_copy.\n")


def functionalize(func, *, remove: str = "mutations"):
    """``torch.func.functionalize``: ``func`` with its mutations removed, observably the same.

    tracenn's ops are functional already (see the module docstring): the wrapper runs ``func`` on
    copies of its tensor arguments and copies back into each argument what ``func`` changed in
    place, as torch's functionalize propagates input mutations. ``remove`` is ``"mutations"`` or
    ``"mutations_and_views"`` (torch's options; both behave the same here). Gradients flow through
    the copies to the arguments.

    >>> import tracenn
    >>> from tracenn.func import functionalize
    >>> def f(x):
    ...     x.view(-1).add_(1)
    ...     return x * 2
    >>> x = tracenn.zeros(2)
    >>> functionalize(f)(x), x
    (tensor([2., 2.]), tensor([1., 1.]))
    """
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(f"functionalize(f, remove='mutations'): received invalid argument for remove={remove}."
                           + _REMOVE_HELP)

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        leaves, tree = jax.tree_util.tree_flatten((args, kwargs))
        copies = [x.clone() if isinstance(x, Tensor) else x for x in leaves]
        before = [(c._version, c._value) if isinstance(c, Tensor) else None for c in copies]
        a2, k2 = jax.tree_util.tree_unflatten(tree, copies)
        out = func(*a2, **k2)
        for x, c, b in zip(leaves, copies, before):
            if b is not None and (c._version != b[0] or c._value is not b[1]):  # func changed its copy
                x.copy_(c)
        return out

    return wrapped
