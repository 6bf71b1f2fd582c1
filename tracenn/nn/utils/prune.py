"""``tracenn.nn.utils.prune``: pruning by masks, as torch.nn.utils.prune.

Pruning ``name`` (say ``weight``) of a module reparametrises it: the parameter moves to
``weight_orig``, a buffer ``weight_mask`` (0 where pruned, 1 elsewhere) is added, and
``weight = weight_mask * weight_orig``, so gradients reach ``weight_orig`` through the mask. Pruning
the same tensor again combines the masks in a :class:`PruningContainer`; :func:`remove` makes the
pruning permanent (``weight`` becomes a parameter holding the masked values again). State dicts
have torch's keys (``weight_orig``, ``weight_mask``), and the pruning method is the module's
forward pre-hook, as in torch (:func:`is_pruned` and :func:`remove` find it there).

One difference: torch's hook *sets* a plain ``weight`` attribute before each forward. Here
``weight`` is computed on every read, as the old ``weight_norm`` is (see ``_computed``), and the
hook does nothing: a hook setting an attribute would leave a traced value on the module under
``tracenn.compile``, and the traced forward would read the weight as a constant. So ``weight`` is
always current, where torch's is stale until the next forward.

The random methods draw from tracenn's generator, so their masks differ from torch's for the same
seed (as every random draw does); the rest, ties aside, choose what torch chooses.
"""
from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable

from ... import random as _random
from ..._api.creation import ones_like, zeros_like
from ..._api.index import kthvalue, topk
from ..._api.reduce import norm as _norm
from ._computed import _computers, _set_computers
from .convert_parameters import parameters_to_vector

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
           "l1_unstructured", "random_structured", "ln_structured", "global_unstructured", "custom_from_mask",
           "remove", "is_pruned"]


class BasePruningMethod(ABC):
    """Abstract base of the pruning methods: subclasses give ``compute_mask`` (and
    ``PRUNING_TYPE``: ``"unstructured"``, ``"structured"`` or ``"global"``). An instance is also
    the module's forward pre-hook, as in torch."""

    _tensor_name: str

    def __call__(self, module, inputs):
        """The forward pre-hook: nothing to do where :meth:`apply` made ``module.<name>`` a
        computed attribute; elsewhere (a hook registered by hand) set it to the masked tensor."""
        if not isinstance(_computers(module).get(self._tensor_name), _Masked):
            setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t, default_mask):
        """The mask for tensor ``t``, given the mask of earlier prunings (``default_mask``)."""

    def apply_mask(self, module):
        """``<name>_mask * <name>_orig`` of ``module``."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned")
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return mask.to(dtype=orig.dtype) * orig

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Prune ``module.<name>`` with a new ``cls(*args, **kwargs)`` (combined with an earlier
        pruning of the same tensor in a :class:`PruningContainer`) and return the method.

        Args:
            module (Module): the module holding the tensor.
            name (str): the parameter's name in ``module``.
            importance_scores (Tensor, optional): scores (the tensor's shape) the mask is computed
                from instead of the tensor itself.
        """
        def _get_composite_method(cls, module, name, *args, **kwargs):
            old_method = None
            found = 0
            hooks_to_remove = []
            for k, hook in module._forward_pre_hooks.items():
                if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
                    old_method = hook
                    hooks_to_remove.append(k)
                    found += 1
            if found > 1:
                raise AssertionError(f"Avoid adding multiple pruning hooks to the same tensor {name} of module "
                                     f"{module}. Use a PruningContainer.")
            for k in hooks_to_remove:
                del module._forward_pre_hooks[k]
            method = cls(*args, **kwargs)
            method._tensor_name = name
            if old_method is not None:
                if isinstance(old_method, PruningContainer):
                    old_method.add_pruning_method(method)
                    method = old_method
                elif isinstance(old_method, BasePruningMethod):
                    container = PruningContainer(old_method)
                    container.add_pruning_method(method)
                    method = container
            return method

        method = _get_composite_method(cls, module, name, *args, **kwargs)
        orig = getattr(module, name)
        if importance_scores is not None:
            if importance_scores.shape != orig.shape:
                raise AssertionError(f"importance_scores should have the same shape as parameter {name} of "
                                     f"{module}, got {importance_scores.shape} vs {orig.shape}")
        else:
            importance_scores = orig

        if not isinstance(method, PruningContainer):  # first pruning of this tensor: reparametrise it
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = ones_like(orig)
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()

        try:
            mask = method.compute_mask(importance_scores, default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            _compute_masked(module, name, method)
            method._tracenn_traceable = True  # (a no-op hook here: tracenn.compile traces it inline)
            module.register_forward_pre_hook(method)
        except Exception as e:
            if not isinstance(method, PruningContainer):
                _compute_masked(module, name, None)
                orig = getattr(module, name + "_orig")
                module.register_parameter(name, orig)
                del module._parameters[name + "_orig"]
            raise e
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """``t`` times its mask (no module involved)."""
        if importance_scores is not None:
            if importance_scores.shape != t.shape:
                raise AssertionError("importance_scores should have the same shape as tensor t, got "
                                     f"{importance_scores.shape} vs {t.shape}")
        else:
            importance_scores = t
        default_mask = default_mask if default_mask is not None else ones_like(t)
        return t * self.compute_mask(importance_scores, default_mask=default_mask)

    def remove(self, module) -> None:
        """Make the pruning permanent: ``<name>`` becomes the parameter again, holding the
        masked values; ``<name>_orig`` and ``<name>_mask`` go (the hook is removed by
        :func:`remove`)."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned before pruning can be removed")
        weight = self.apply_mask(module)
        _compute_masked(module, self._tensor_name, None)
        if self._tensor_name in module.__dict__:  # (set by a hook registered by hand)
            delattr(module, self._tensor_name)
        orig = module._parameters[self._tensor_name + "_orig"]
        orig.data = weight.data
        del module._parameters[self._tensor_name + "_orig"]
        del module._buffers[self._tensor_name + "_mask"]
        setattr(module, self._tensor_name, orig)


class _Masked:
    """``module.<name>`` computed as the pruning method's ``apply_mask(module)``."""

    def __init__(self, method) -> None:
        self.method = method

    def __call__(self, module):
        return self.method.apply_mask(module)


def _compute_masked(module, name, method) -> None:
    """Make ``module.<name>`` computed by ``method`` (None: no longer computed)."""
    computers = _computers(module)
    if method is None:
        if not isinstance(computers.pop(name, None), _Masked):
            return
    else:
        computers[name] = _Masked(method)
    _set_computers(module, computers)


class PruningContainer(BasePruningMethod):
    """A sequence of pruning methods applied to one tensor, each to what the earlier ones left
    (the tensor's unpruned entries or slices)."""

    def __init__(self, *args) -> None:
        self._pruning_methods: tuple = ()
        if not isinstance(args, Iterable):  # (kept from torch: args is always a tuple)
            self._tensor_name = args._tensor_name
            self.add_pruning_method(args)
        elif len(args) == 1:
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        else:
            for method in args:
                self.add_pruning_method(method)

    def add_pruning_method(self, method) -> None:
        """Append a pruning method acting on the same tensor."""
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        elif method is not None and self._tensor_name != method._tensor_name:
            raise ValueError("Can only add pruning methods acting on the parameter named "
                             f"'{self._tensor_name}' to PruningContainer {self}. Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        """The newest method's mask, computed on the part of ``t`` the earlier masks kept: the
        unpruned entries (unstructured), the unpruned slices along its ``dim`` (structured) or
        all of it (global)."""
        method = self._pruning_methods[-1]
        new_mask = default_mask.to(dtype=t.dtype)
        if method.PRUNING_TYPE == "unstructured":
            slc = default_mask == 1
        elif method.PRUNING_TYPE == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError('Pruning methods of PRUNING_TYPE "structured" need to have the attribute '
                                     "`dim` defined.")
            n_dims = t.dim()
            dim = method.dim
            if dim < 0:
                dim = n_dims + dim
            if dim < 0:
                raise IndexError(f"Index is out of bounds for tensor with dimensions {n_dims}")
            keep_channel = default_mask.sum(dim=[d for d in range(n_dims) if d != dim]) != 0
            slc = [slice(None)] * n_dims
            slc[dim] = keep_channel
        elif method.PRUNING_TYPE == "global":
            slc = [slice(None)] * len(t.shape)
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
        if isinstance(slc, list):
            slc = tuple(slc)
        partial_mask = method.compute_mask(t[slc], default_mask=default_mask[slc])
        new_mask[slc] = partial_mask.to(dtype=new_mask.dtype)
        return new_mask


class Identity(BasePruningMethod):
    """Prunes nothing: the mask is all ones (the reparametrisation alone)."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


class _ScoredUnstructured(BasePruningMethod):
    """Prunes the ``amount`` entries (a count, or a fraction of the tensor) that score lowest
    (:meth:`_scores`: the entries' scores, and whether the highest go instead)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount) -> None:
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        tensor_size = t.nelement()
        nparams_toprune = _compute_nparams_toprune(self.amount, tensor_size)
        _validate_pruning_amount(nparams_toprune, tensor_size)
        mask = default_mask.clone()
        if nparams_toprune != 0:
            scores, largest = self._scores(t)
            mask.view(-1)[topk(scores.view(-1), k=nparams_toprune, largest=largest).indices] = 0
        return mask


class RandomUnstructured(_ScoredUnstructured):
    """Prunes ``amount`` entries (a count, or a fraction of the tensor) chosen at random."""

    def _scores(self, t):
        return _random.rand_like(t), True

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(_ScoredUnstructured):
    """Prunes the ``amount`` entries (a count, or a fraction) of smallest absolute value."""

    def _scores(self, t):
        return t.abs(), False

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class _Structured(BasePruningMethod):
    """Prunes ``amount`` slices (a count, or a fraction) along ``dim``; :meth:`_kept` picks the
    slices that stay (a boolean per slice, or their indices)."""

    PRUNING_TYPE = "structured"

    def compute_mask(self, t, default_mask):
        _validate_structured_pruning(t)
        _validate_pruning_dim(t, self.dim)
        tensor_size = t.shape[self.dim]
        nparams_toprune = _compute_nparams_toprune(self.amount, tensor_size)
        _validate_pruning_amount(nparams_toprune, tensor_size)
        if nparams_toprune == 0:
            return default_mask
        mask = _slices_mask(t, self.dim, self._kept(t, tensor_size, nparams_toprune))
        return mask * default_mask.to(dtype=mask.dtype)


class RandomStructured(_Structured):
    """Prunes ``amount`` slices (a count, or a fraction) along ``dim``, chosen at random."""

    def __init__(self, amount, dim=-1) -> None:
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.dim = dim

    def _kept(self, t, tensor_size, nparams_toprune):
        prob = _random.rand(tensor_size)
        return prob > kthvalue(prob, k=nparams_toprune).values

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(_Structured):
    """Prunes the ``amount`` slices (a count, or a fraction) along ``dim`` of smallest
    ``n``-norm (``n``: as ``tracenn.norm``'s ``p``)."""

    def __init__(self, amount, n, dim=-1) -> None:
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.n = n
        self.dim = dim

    def _kept(self, t, tensor_size, nparams_toprune):
        return topk(_compute_norm(t, self.n, self.dim), k=tensor_size - nparams_toprune, largest=True).indices

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prunes where a given ``mask`` is 0."""

    PRUNING_TYPE = "global"

    def __init__(self, mask) -> None:
        self.mask = mask

    def compute_mask(self, t, default_mask):
        if default_mask.shape != self.mask.shape:
            raise AssertionError(f"default_mask shape {default_mask.shape} must match self.mask shape "
                                 f"{self.mask.shape}")
        return default_mask * self.mask.to(dtype=default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


def _slices_mask(t, dim, index):
    """Zeros like ``t`` with ones in the slices along ``dim`` that ``index`` (booleans or
    indices) picks."""
    mask = zeros_like(t)
    slc = [slice(None)] * len(t.shape)
    slc[dim] = index
    mask[tuple(slc)] = 1
    return mask


# ---- the functional interface ------------------------------------------------------------------------

def identity(module, name):
    """Reparametrise ``module.<name>`` without pruning anything (the mask is all ones); returns
    ``module``."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    """Prune ``amount`` random entries of ``module.<name>``: an int counts entries, a float in
    [0, 1] is a fraction of them. Returns ``module``."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    """Prune the ``amount`` entries of ``module.<name>`` with the smallest absolute value (or
    smallest ``importance_scores``). Returns ``module``.

    Args:
        module (Module): the module holding the tensor.
        name (str): the parameter's name, e.g. ``"weight"``.
        amount (int or float): how many entries to prune, or which fraction of them.
        importance_scores (Tensor, optional): scores of the tensor's shape to rank by.

    >>> import tracenn
    >>> from tracenn.nn.utils import prune
    >>> m = tracenn.nn.Linear(3, 1, bias=False)
    >>> with tracenn.no_grad():
    ...     _ = m.weight.copy_(tracenn.tensor([[0.5, -0.1, 2.0]]))
    >>> _ = prune.l1_unstructured(m, "weight", amount=1)
    >>> m.weight_mask, sorted(dict(m.named_parameters())), sorted(m.state_dict())
    (tensor([[1., 0., 1.]]), ['weight_orig'], ['weight_mask', 'weight_orig'])
    >>> m(tracenn.ones(1, 3)).item()   # the pruned weight: 0.5 + 2.0
    2.5
    """
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    """Prune ``amount`` random slices of ``module.<name>`` along ``dim``. Returns ``module``."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    """Prune the ``amount`` slices of ``module.<name>`` along ``dim`` with the smallest
    ``n``-norm (``1``, ``2``, ``float("inf")``, ...). Returns ``module``."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune the ``(module, name)`` tensors of ``parameters`` together, as one vector: e.g. the
    20% of all their entries with the smallest absolute value, wherever they are.

    Args:
        parameters (iterable): ``(module, name)`` pairs.
        pruning_method: an unstructured method class (e.g. :class:`L1Unstructured`).
        importance_scores (dict, optional): ``{(module, name): scores}``; the tensor itself
            where missing.
        kwargs: the method's arguments (``amount=...``).

    >>> import tracenn
    >>> from tracenn.nn.utils import prune
    >>> a, b = tracenn.nn.Linear(2, 1, bias=False), tracenn.nn.Linear(2, 1, bias=False)
    >>> with tracenn.no_grad():
    ...     _ = a.weight.copy_(tracenn.tensor([[0.1, 3.0]]))
    ...     _ = b.weight.copy_(tracenn.tensor([[0.2, -0.05]]))
    >>> prune.global_unstructured([(a, "weight"), (b, "weight")], prune.L1Unstructured, amount=2)
    >>> a.weight_mask, b.weight_mask
    (tensor([[0., 1.]]), tensor([[1., 0.]]))
    """
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    parameters = list(parameters)  # (read twice below: a generator would be spent)
    relevant_importance_scores = parameters_to_vector(
        [importance_scores.get((module, name), getattr(module, name)) for module, name in parameters])
    default_mask = parameters_to_vector(
        [getattr(module, name + "_mask", ones_like(getattr(module, name))) for module, name in parameters])
    container = PruningContainer()
    container._tensor_name = "temp"
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError('Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
                        f"{pruning_method} of type {method.PRUNING_TYPE}")
    container.add_pruning_method(method)
    final_mask = container.compute_mask(relevant_importance_scores, default_mask)
    pointer = 0
    for module, name in parameters:
        param = getattr(module, name)
        num_param = param.numel()
        custom_from_mask(module, name, mask=final_mask[pointer: pointer + num_param].view_as(param))
        pointer += num_param


def custom_from_mask(module, name, mask):
    """Prune ``module.<name>`` where ``mask`` (its shape) is 0. Returns ``module``."""
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module, name):
    """Make the pruning of ``module.<name>`` permanent: it becomes a parameter again, holding
    the pruned values, and ``<name>_orig``, ``<name>_mask`` and the hook go. Returns ``module``.

    >>> import tracenn
    >>> from tracenn.nn.utils import prune
    >>> m = prune.identity(tracenn.nn.Linear(2, 2), "bias")
    >>> sorted(m.state_dict())
    ['bias_mask', 'bias_orig', 'weight']
    >>> sorted(prune.remove(m, "bias").state_dict()), prune.is_pruned(m)
    (['bias', 'weight'], False)
    """
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module) -> bool:
    """Whether ``module`` or a submodule has a pruning hook."""
    for _, submodule in module.named_modules():
        for hook in submodule._forward_pre_hooks.values():
            if isinstance(hook, BasePruningMethod):
                return True
    return False


# ---- argument checks (torch's) -----------------------------------------------------------------------

def _validate_pruning_amount_init(amount) -> None:
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral) and (float(amount) > 1.0 or float(amount) < 0.0)):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _validate_pruning_amount(amount, tensor_size) -> None:
    if isinstance(amount, numbers.Integral) and amount > tensor_size:
        raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={tensor_size}")


def _validate_structured_pruning(t) -> None:
    shape = t.shape
    if len(shape) <= 1:
        raise ValueError("Structured pruning can only be applied to multidimensional tensors. Found tensor of "
                         f"shape {shape} with {len(shape)} dims")


def _compute_nparams_toprune(amount, tensor_size):
    if isinstance(amount, numbers.Integral):
        return amount
    return round(amount * tensor_size)


def _validate_pruning_dim(t, dim) -> None:
    if dim >= t.dim():
        raise IndexError(f"Invalid index {dim} for tensor of size {t.shape}")


def _compute_norm(t, n, dim):
    dims = list(range(t.dim()))
    if dim < 0:
        dim = dims[dim]
    dims.remove(dim)
    return _norm(t, p=n, dim=dims)
