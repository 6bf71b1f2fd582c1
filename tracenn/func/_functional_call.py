"""``functional_call``: run a module with some of its parameters and buffers replaced, as
``torch.func.functional_call``.

The swap is torch's: each given tensor takes its name's slot in the owning module's
``_parameters`` / ``_buffers`` (or becomes a plain attribute for a name the module lacks) for the
duration of one ``module(*args, **kwargs)`` call, and the originals go back afterwards, also when
forward raises. Nothing is copied, so autograd reaches the given tensors, in-place updates made
by forward (BatchNorm's running statistics) land in them, and under ``tracenn.compile`` the
given tensors may be symbolic: the swap then happens once, while tracing.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import _dispatch
from ..tensor import Tensor

_MISSING = object()  # a name the module did not have before the swap


def functional_call(module, parameter_and_buffer_dicts, args: Any = None, kwargs: dict | None = None, *,
                    tie_weights: bool = True, strict: bool = False):
    """Call ``module`` with its parameters and buffers replaced by the given tensors.

    As ``torch.func.functional_call``: the module runs eagerly on the given tensors (gradients
    flow to them: ``tracenn.autograd.grad(loss, list(params.values()))``), and its own
    parameters and buffers are back in place afterwards, even when forward raises. If forward
    changes a given buffer in place (BatchNorm in training mode), the change is in the tensor you
    passed; if it assigns a new tensor (``self.buf = self.buf + 1``), the dict you passed (when a
    single dict) holds the new tensor afterwards. Inside ``tracenn.compile`` the swap happens
    while tracing, so a compiled ``lambda params, x: functional_call(model, params, x)`` takes
    the parameters as ordinary inputs.

    Args:
        module: the ``nn.Module`` to call (given ``tracenn.compile(model)``, ``model`` runs eagerly
            here; compile the whole ``functional_call`` instead to run it compiled).
        parameter_and_buffer_dicts: a dict from ``state_dict``-style dotted names to tensors, or a
            tuple/list of such dicts with distinct keys. Names the module does not hold are set
            as plain attributes for the call (unless ``strict``).
        args: the positional arguments; anything but a tuple is one argument.
        kwargs: the keyword arguments.
        tie_weights: a tensor the module shares under several names (tied weights) is replaced
            under all of them when one is given; giving different tensors for tied names raises
            ``ValueError``. With ``False`` only the names given are replaced.
        strict: the given names must be exactly the module's parameter and buffer names (tied
            ones included); otherwise ``RuntimeError`` lists the unexpected and missing keys.

    Returns:
        whatever ``module(*args, **kwargs)`` returns.

    >>> import tracenn
    >>> from tracenn import nn
    >>> from tracenn.func import functional_call
    >>> lin = nn.Linear(2, 1)
    >>> params = {"weight": tracenn.ones(1, 2, requires_grad=True), "bias": tracenn.zeros(1)}
    >>> y = functional_call(lin, params, tracenn.tensor([[1.0, 2.0]]))
    >>> y
    tensor([[3.]], grad_fn=<AddBackward0>)
    >>> lin.weight is not params["weight"]
    True
    >>> tracenn.autograd.grad(y.sum(), params["weight"])
    (tensor([[1., 2.]]),)
    """
    if isinstance(parameter_and_buffer_dicts, dict):
        given = parameter_and_buffer_dicts
    elif isinstance(parameter_and_buffer_dicts, Sequence):
        if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
        counts: dict[str, int] = {}
        for d in parameter_and_buffer_dicts:
            for k in d:
                counts[k] = counts.get(k, 0) + 1
        repeated = [k for k, n in counts.items() if n > 1]
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is ambiguous")
        given = {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    else:
        raise ValueError("Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, "
                         f"but got {type(parameter_and_buffer_dicts)}")

    from ..runtime.compiled import Compiled
    if isinstance(module, Compiled):
        module = module._target
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)

    swapped = _untie(module, given) if tie_weights else given
    if strict:
        _check_keys(module, swapped)
    originals = _swap_all(module, swapped)
    try:
        return module(*args, **kwargs)
    finally:
        now = _swap_all(module, originals)
        # forward may have assigned new tensors to the slots (``self.buf = ...``): the caller's
        # dict sees them, as in torch
        given.update({k: now[k] for k in given if k in now})


# ---- the swap ------------------------------------------------------------------------------------

def _owner(module, name: str, memo: dict):
    """(submodule, attribute) for dotted ``name``; AttributeError names the missing link."""
    prefix, _, attr = name.rpartition(".")
    if not attr:
        raise KeyError('tensor name can\'t be empty string ""')
    mod = memo.get(prefix)
    if mod is None:
        mod = module
        for atom in prefix.split(".") if prefix else ():
            try:
                child = getattr(mod, atom)
            except AttributeError as e:
                raise AttributeError(f"{mod._get_name()} has no attribute `{atom}`") from e
            if not hasattr(child, "_parameters"):
                raise TypeError(f"submodule `{prefix}`: {child} is not an instance of tracenn.nn.Module")
            mod = child
        memo[prefix] = mod
    return mod, attr


def _swap(mod, attr: str, tensor):
    """Put ``tensor`` (or remove the name, for ``_MISSING``) in ``mod``'s slot; return the old one."""
    if tensor is not _MISSING and tensor is not None and not isinstance(tensor, Tensor):
        raise TypeError(f"{tensor} is not an instance of tracenn.Tensor")
    for slots in (mod._parameters, mod._buffers):
        if attr in slots:
            old = slots[attr]
            if tensor is _MISSING:
                del slots[attr]
            else:
                slots[attr] = tensor
            return old
    old = getattr(mod, attr) if hasattr(mod, attr) else _MISSING
    if old is not _MISSING and old is not None and not isinstance(old, Tensor):
        raise TypeError(f"attribute `{attr}`: {old} is not an instance of tracenn.Tensor")
    if tensor is not _MISSING:
        setattr(mod, attr, tensor)
    elif old is not _MISSING:
        delattr(mod, attr)
    return old


def _swap_all(module, named: dict) -> dict:
    """Swap every name in; return what was there (undoing the partial swap on an error)."""
    memo: dict = {}
    old: dict = {}
    # Compiled calls must re-read the tensors they hold (their identity is part of the guard).
    _dispatch.EPOCH[0] += 1
    try:
        for name, tensor in named.items():
            mod, attr = _owner(module, name, memo)
            old[name] = _swap(mod, attr, tensor)
    except Exception:
        for name, tensor in old.items():
            mod, attr = _owner(module, name, memo)
            _swap(mod, attr, tensor)
        raise
    return old


def _untie(module, given: dict) -> dict:
    """``given`` plus, for each given name of a tied tensor, the same tensor under its other names."""
    names_of: dict[int, set] = {}
    for n, t in _named_tensors(module):
        names_of.setdefault(id(t), set()).add(n)
    tied = {n: names for names in names_of.values() if len(names) > 1 for n in names}
    out = dict(given)
    for name in given:
        if name not in tied:
            continue
        group = tied[name]
        values = {id(given[n]) for n in group if n in given}
        if len(values) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(group)}, which are tied. "
                             "Consider using tie_weights=False")
        for n in group:
            out[n] = given[name]
    return out


def _named_tensors(module):
    yield from module.named_parameters(remove_duplicate=False)
    yield from module.named_buffers(remove_duplicate=False)


def _check_keys(module, given: dict) -> None:
    valid = {n for n, _ in _named_tensors(module)}
    missing = sorted(valid - set(given))
    unexpected = sorted(set(given) - valid)
    msgs = []
    if unexpected:
        msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
    if missing:
        msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
    if msgs:
        raise RuntimeError(f"Error(s) in reparametrizing for {module._get_name()}:\n\t" + "\n\t".join(msgs))
