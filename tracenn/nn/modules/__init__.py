"""The module classes of ``tracenn.nn`` (one file per family, as torch's ``torch.nn.modules``)."""
from .module import Module  # noqa: F401
from .container import Container, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential  # noqa: F401
from .linear import Identity, Linear  # noqa: F401
from .activation import ReLU, Sigmoid, Tanh  # noqa: F401

__all__ = ["Module", "Container", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "ParameterDict", "Identity", "Linear", "ReLU", "Tanh", "Sigmoid"]
