"""A compiled module is an ``nn.Module``: :class:`CompiledModule`, the class of ``tracenn.compile(module)``.

torch.compile(model) returns an ``OptimizedModule``, an ``nn.Module`` that holds the model as its child
``_orig_mod``; code takes it where a module goes (``nn.Sequential(cm)``, ``nn.ModuleList([cm])``,
``self.encoder = torch.compile(encoder)``, ``isinstance(model, nn.Module)``) and unwraps it with
``getattr(model, "_orig_mod", model)``. ``CompiledModule`` does all of that, with one difference on
purpose: it has no ``_orig_mod.`` level of its own. Every ``Module`` attribute and method it has is
the model's (``cm.state_dict()``, ``cm.parameters()``, ``cm.train()``, ``cm._modules`` read the model;
a method that returns the model returns the compiled object), so

- ``cm.state_dict()`` has the model's keys (torch's has ``_orig_mod.weight``: a checkpoint saved
  from a compiled model then does not load into the plain one, a known trap);
- as the child ``enc`` of another module, its state is under ``enc.weight`` (torch: ``enc._orig_mod.weight``),
  and ``parent.load_state_dict`` takes those keys; ``parent.named_modules()`` / ``modules()`` /
  ``apply(fn)`` reach the model itself at ``enc`` (torch lists the wrapper at ``enc`` and the model at
  ``enc._orig_mod``), while ``parent.enc``, ``named_children()`` and ``parent._modules["enc"]`` are the
  compiled object, so ``parent(x)`` calls it;
- hooks registered on it (``cm.register_forward_hook``) are the model's hooks, which its programs run.

Calls do not go through ``Module.__call__``: ``Compiled.__call__`` is the call, so a call costs what it
did before the class was a Module (one dictionary lookup on the common path).
"""
from __future__ import annotations

import functools

from ..nn.modules.module import Module
from .compiled import Compiled


class _ModelAttr:
    """A ``Module`` class attribute read from the model: ``cm.state_dict`` is the model's (its own
    override, if its class has one), not ``Module.state_dict`` run on the wrapper. Not a data
    descriptor, so the compiled object's own instance attributes come first."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return getattr(Module, self.name)
        return Compiled.__getattr__(obj, self.name)


class CompiledModule(Compiled, Module):
    """What ``tracenn.compile(module)`` returns: an ``nn.Module`` whose calls run the compiled
    programs, and whose parameters, buffers, submodules, modes, hooks and ``state_dict`` are the
    model's own (see this module's docstring for how it differs from torch's ``OptimizedModule``).

    >>> import tracenn
    >>> from tracenn import nn
    >>> lin = nn.Linear(4, 2)
    >>> cm = tracenn.compile(lin)
    >>> isinstance(cm, nn.Module), cm._orig_mod is lin
    (True, True)
    >>> list(cm.state_dict())
    ['weight', 'bias']
    >>> list(nn.Sequential(cm, nn.ReLU()).state_dict())
    ['0.weight', '0.bias']
    """

    # (Module.__init__ never runs: the model's dicts are read through Compiled.__getattr__.)

    @property
    def _orig_mod(self):
        """The compiled model (torch's ``OptimizedModule._orig_mod``)."""
        return self.__dict__["_target"]

    @property
    def forward(self):
        """The compiled call (torch's ``OptimizedModule.forward`` is too), with the signature of the
        model's ``forward`` (``inspect.signature(cm.forward)`` names its arguments)."""
        fwd = self.__dict__["_target"].forward

        @functools.wraps(fwd)
        def forward(*args, **kwargs):
            return self(*args, **kwargs)
        return forward

    def __len__(self):
        """The model's ``len`` (a compiled ``Sequential``), as torch's OptimizedModule proxies it. Other
        operators are not forwarded, as there: index ``cm._orig_mod[0]``."""
        return len(self.__dict__["_target"])

    def __bool__(self):
        return bool(self.__dict__["_target"])  # (not len(): a compiled Linear is true)

    def __delattr__(self, name):
        if name in self.__dict__:
            object.__delattr__(self, name)
        else:
            delattr(self.__dict__["_target"], name)

    def __reduce__(self):
        """Pickled as its model and the options it was compiled with (``torch.save(model)`` of a
        model with a compiled child); unpickling compiles anew."""
        recompile = self.__dict__.get("_recompile")
        if recompile is None:
            raise TypeError(f"cannot pickle {type(self).__name__} made without tracenn.compile")
        return (recompile, (self.__dict__["_target"],))


def _forward_module_attributes() -> None:
    """Every name ``Module`` (and its mixins) define that the compiled object does not define itself
    reads the model's (``_ModelAttr``)."""
    own = set()
    for klass in CompiledModule.__mro__:
        if klass is Module:
            break
        own.update(vars(klass))
    for klass in Module.__mro__[:-1]:
        for name in vars(klass):
            if name in own or (name.startswith("__") and name.endswith("__")):
                continue
            setattr(CompiledModule, name, _ModelAttr(name))
            own.add(name)


_forward_module_attributes()
