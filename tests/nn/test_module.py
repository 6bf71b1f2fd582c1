"""nn.Module: registration rules and errors, attribute protocol, traversal, modes, moves and
casts, repr, copying. Tests taking ``lib`` run against tracenn and torch alike."""
from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import assert_close


def _net(lib):
    """A small nested model used by several tests."""
    class Block(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lib.nn.Linear(3, 3)
            self.register_buffer("count", lib.zeros(1, dtype=lib.int64))

        def forward(self, x):
            return self.lin(x).relu()

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = lib.nn.Parameter(lib.ones(1))
            self.register_buffer("mean", lib.zeros(3))
            self.block = Block()
            self.head = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.Tanh())

        def forward(self, x):
            return self.head(self.block(x) * self.scale)

    return Net()


# ---- registration ------------------------------------------------------------------------------

def test_assignment_registers_parameters_buffers_and_modules(lib):
    m = lib.nn.Module()
    m.p = lib.nn.Parameter(lib.ones(1))
    m.b = lib.nn.Buffer(lib.zeros(1))
    m.c = lib.nn.Linear(1, 1)
    m.t = lib.ones(1)  # a plain tensor is a plain attribute
    assert list(m._parameters) == ["p"]
    assert list(m._buffers) == ["b"]
    assert list(m._modules) == ["c"]
    assert "t" in m.__dict__ and "p" not in m.__dict__


def test_registration_methods(lib):
    m = lib.nn.Module()
    m.register_parameter("w", lib.nn.Parameter(lib.ones(2)))
    m.register_parameter("none_param", None)
    m.register_buffer("b", lib.zeros(2))
    m.register_buffer("none_buf", None)
    m.add_module("child", lib.nn.ReLU())
    m.register_module("other", lib.nn.Tanh())
    m.add_module("none_mod", None)
    assert m.none_param is None and m.none_buf is None and m.none_mod is None
    assert [n for n, _ in m.named_parameters()] == ["w"]
    assert [n for n, _ in m.named_buffers()] == ["b"]
    assert [n for n, _ in m.named_children()] == ["child", "other"]
    assert list(m.state_dict()) == ["w", "b"]


def test_reassigning_a_registered_name_moves_it_between_kinds(lib):
    m = lib.nn.Module()
    m.x = lib.nn.Linear(1, 1)
    m.x = lib.nn.Parameter(lib.ones(1))  # a Parameter always wins the name
    assert "x" in m._parameters and "x" not in m._modules
    with pytest.raises(TypeError):  # ... but a module cannot take a parameter's name
        m.x = lib.nn.Linear(1, 1)
    m.b = lib.nn.Buffer(lib.ones(1))
    m.b = lib.nn.Linear(1, 1)
    assert "b" not in m._buffers and "b" in m._modules
    m.y = 3
    m.y = lib.nn.Parameter(lib.ones(1))
    assert "y" not in m.__dict__ and "y" in m._parameters
    m.x = None  # None keeps the slot
    assert "x" in m._parameters and m.x is None


def test_assigning_a_tensor_to_a_registered_buffer_keeps_it_a_buffer(lib):
    m = lib.nn.Module()
    m.register_buffer("b", lib.zeros(1), persistent=False)
    m.b = lib.ones(3)
    assert m._buffers["b"] is m.b and "b" in m._non_persistent_buffers_set
    m.b = lib.nn.Buffer(lib.ones(1))  # a Buffer brings its own persistence
    assert "b" not in m._non_persistent_buffers_set


REGISTRATION_ERRORS = [
    # (script, exception type, message with tracenn's names)
    (lambda lib, m: setattr(m, "weight", lib.ones(2)), TypeError,
     "cannot assign 'tracenn.FloatTensor' as parameter 'weight' (tracenn.nn.Parameter or None expected)"),
    (lambda lib, m: setattr(m, "bias", 3), TypeError,
     "cannot assign 'int' as parameter 'bias' (tracenn.nn.Parameter or None expected)"),
    (lambda lib, m: m.register_parameter("q", lib.ones(1)), TypeError,
     "cannot assign 'tracenn.FloatTensor' object to parameter 'q' (tracenn.nn.Parameter or None required)"),
    (lambda lib, m: m.register_parameter("a.b", None), KeyError, "'parameter name can\\'t contain \".\"'"),
    (lambda lib, m: m.register_parameter("", None), KeyError, "'parameter name can\\'t be empty string \"\"'"),
    (lambda lib, m: m.register_parameter(1, None), TypeError, "parameter name should be a string. Got int"),
    (lambda lib, m: m.register_parameter("training", None), KeyError, "\"attribute 'training' already exists\""),
    (lambda lib, m: m.register_buffer("x", 3), TypeError,
     "cannot assign 'int' object to buffer 'x' (tracenn Tensor or None required)"),
    (lambda lib, m: m.register_buffer("weight", None), KeyError, "\"attribute 'weight' already exists\""),
    (lambda lib, m: m.register_buffer("a.b", None), KeyError, "'buffer name can\\'t contain \".\"'"),
    (lambda lib, m: m.register_buffer("", None), KeyError, "'buffer name can\\'t be empty string \"\"'"),
    (lambda lib, m: m.register_buffer(2.5, None), TypeError, "buffer name should be a string. Got float"),
    (lambda lib, m: setattr(m, "bb", lib.nn.Buffer(lib.ones(1))) or setattr(m, "bb", 5), TypeError,
     "cannot assign 'int' as buffer 'bb' (tracenn.nn.Buffer, tracenn.Tensor or None expected)"),
    (lambda lib, m: m.add_module("x", 3), TypeError, "int is not a Module subclass"),
    (lambda lib, m: m.add_module("a.b", lib.nn.ReLU()), KeyError, "'module name can\\'t contain \".\", got: a.b'"),
    (lambda lib, m: m.add_module("", lib.nn.ReLU()), KeyError, "'module name can\\'t be empty string \"\"'"),
    (lambda lib, m: m.add_module(3, lib.nn.ReLU()), TypeError, "module name should be a string. Got int"),
    (lambda lib, m: m.add_module("weight", lib.nn.ReLU()), KeyError, "\"attribute 'weight' already exists\""),
    (lambda lib, m: setattr(m, "sub", lib.nn.ReLU()) or setattr(m, "sub", lib.ones(1)), TypeError,
     "cannot assign 'tracenn.FloatTensor' as child module 'sub' (tracenn.nn.Module or None expected)"),
    (lambda lib, m: m.fc3, AttributeError, "'Linear' object has no attribute 'fc3'"),
    (lambda lib, m: delattr(m, "nothing"), AttributeError, "'Linear' object has no attribute 'nothing'"),
    (lambda lib, m: m.to(lib.int64), TypeError,
     "nn.Module.to only accepts floating point or complex dtypes, but got desired dtype=tracenn.int64"),
    (lambda lib, m: m.train("yes"), ValueError, "training mode is expected to be boolean"),
    (lambda lib, m: m.get_submodule("a.b"), AttributeError, "Linear has no attribute `a`"),
    (lambda lib, m: m.get_submodule("weight"), AttributeError, "`weight` is not an nn.Module"),
    (lambda lib, m: m.get_parameter("foo"), AttributeError, "Linear has no attribute `foo`"),
    (lambda lib, m: m.get_parameter("in_features"), AttributeError, "`in_features` is not an nn.Parameter"),
    (lambda lib, m: m.get_buffer("weight"), AttributeError, "`weight` is not a buffer"),
    (lambda lib, m: m.set_submodule("", lib.nn.ReLU()), ValueError, "Cannot set the submodule without a target name!"),
    (lambda lib, m: m.set_submodule("weight", lib.nn.ReLU()), AttributeError, "`weight` is not an nn.Module"),
    (lambda lib, m: m.set_submodule("new", lib.nn.ReLU(), strict=True), AttributeError, "Linear has no attribute `new`"),
    (lambda lib, m: m(lib.ones(2, 3)), RuntimeError, None),  # shape mismatch: message is the matmul's
]


@pytest.mark.parametrize("script,exc,text", REGISTRATION_ERRORS,
                         ids=[f"err{i}" for i in range(len(REGISTRATION_ERRORS))])
def test_registration_errors_match_torch(lib, message, script, exc, text):
    m = lib.nn.Linear(2, 2)
    with pytest.raises(exc) as e:
        script(lib, m)
    if text is not None:
        assert message(e) == text


def test_errors_before_module_init(lib):
    class Early(lib.nn.Module):
        def __init__(self, what):
            if what == "param":
                self.p = lib.nn.Parameter(lib.ones(1))
            elif what == "module":
                self.m = lib.nn.ReLU()
            else:
                self.register_buffer("b", lib.ones(1))
            super().__init__()

    for what, text in [("param", "cannot assign parameters before Module.__init__() call"),
                       ("module", "cannot assign module before Module.__init__() call"),
                       ("buffer", "cannot assign buffer before Module.__init__() call")]:
        with pytest.raises(AttributeError) as e:
            Early(what)
        assert str(e.value) == text


def test_module_init_rejects_arguments(lib):
    with pytest.raises(TypeError) as e:
        lib.nn.Module(3)
    assert str(e.value) == "Module.__init__() takes 1 positional argument but 2 were given"
    with pytest.raises(TypeError) as e:
        lib.nn.Module(a=3)
    assert str(e.value) == "Module.__init__() got an unexpected keyword argument 'a'"


def test_missing_forward(lib):
    with pytest.raises(NotImplementedError) as e:
        lib.nn.Module()(1)
    assert str(e.value) == 'Module [Module] is missing the required "forward" function'


def test_getattr_error_names_the_subclass(lib):
    class Net(lib.nn.Module):
        pass
    with pytest.raises(AttributeError) as e:
        Net().fc3
    assert str(e.value) == "'Net' object has no attribute 'fc3'"


def test_delattr_removes_from_each_kind(lib):
    m = lib.nn.Module()
    m.p = lib.nn.Parameter(lib.ones(1))
    m.register_buffer("b", lib.ones(1), persistent=False)
    m.c = lib.nn.ReLU()
    m.x = 1
    for name in ("p", "b", "c", "x"):
        delattr(m, name)
        assert not hasattr(m, name)
    assert not m._parameters and not m._buffers and not m._modules
    assert not m._non_persistent_buffers_set


def test_dir_lists_registered_names(lib):
    m = _net(lib)
    d = dir(m)
    for name in ("scale", "mean", "block", "head", "forward", "training", "state_dict"):
        assert name in d
    assert d == sorted(d)
    assert "0" not in dir(m.head)


def test_dir_is_torchs(torch):
    assert dir(_net(tracenn)) == [d for d in dir(_net(torch)) if d in set(dir(_net(tracenn)))]
    missing = set(dir(_net(torch))) - set(dir(_net(tracenn)))
    # torch-only members: compilation, other device kinds, data-parallel internals and typing.
    assert missing <= {"T_destination", "compile", "ipu", "xpu", "mtia", "_replicate_for_data_parallel",
                       "_slow_forward", "__annotations__", "_apply", "_compiled_call_impl"} | {
        m for m in missing if m.startswith("__")}


# ---- traversal ---------------------------------------------------------------------------------

def test_traversal_names_and_order(lib):
    m = _net(lib)
    assert [n for n, _ in m.named_parameters()] == [
        "scale", "block.lin.weight", "block.lin.bias", "head.0.weight", "head.0.bias"]
    assert [n for n, _ in m.named_buffers()] == ["mean", "block.count"]
    assert [n for n, _ in m.named_children()] == ["block", "head"]
    assert [n for n, _ in m.named_modules()] == ["", "block", "block.lin", "head", "head.0", "head.1"]
    assert [type(x).__name__ for x in m.modules()] == ["Net", "Block", "Linear", "Sequential", "Linear", "Tanh"]
    assert [type(x).__name__ for x in m.children()] == ["Block", "Sequential"]
    assert len(list(m.parameters())) == 5 and len(list(m.buffers())) == 2
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in m.named_buffers(prefix="model")] == ["model.mean", "model.block.count"]
    assert [n for n, _ in m.named_modules(prefix="net")][:2] == ["net", "net.block"]
    assert len(list(m.parameters(recurse=False))) == 1 and len(list(m.buffers(recurse=False))) == 1


def test_named_modules_of_a_shared_linear_doc_example(lib):
    # torch's documentation example: the shared Linear is yielded once.
    l = lib.nn.Linear(2, 2)
    net = lib.nn.Sequential(l, l)
    got = list(net.named_modules())
    assert [n for n, _ in got] == ["", "0"] and got[1][1] is l
    assert [n for n, _ in net.named_modules(remove_duplicate=False)] == ["", "0", "1"]
    assert len(list(net.modules())) == 2
    assert [n for n, _ in net.named_children()] == ["0"]


def test_shared_parameters_are_yielded_once(lib):
    l = lib.nn.Linear(2, 2)
    net = lib.nn.Sequential(l, l)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in net.named_parameters(remove_duplicate=False)] == [
        "0.weight", "0.bias", "1.weight", "1.bias"]
    m = lib.nn.Module()
    p = lib.nn.Parameter(lib.ones(1))
    m.a, m.b = p, p
    assert [n for n, _ in m.named_parameters()] == ["a"]
    assert list(m.state_dict()) == ["a", "b"]  # state_dict keeps every name


def test_get_submodule_parameter_buffer(lib):
    m = _net(lib)
    assert m.get_submodule("") is m
    assert m.get_submodule("head.0") is m.head[0]
    assert m.get_parameter("block.lin.weight") is m.block.lin.weight
    assert m.get_parameter("scale") is m.scale
    assert m.get_buffer("block.count") is m.block.count
    relu = lib.nn.ReLU()
    m.set_submodule("head.1", relu)
    assert m.head[1] is relu
    m.set_submodule("extra", lib.nn.Identity())
    assert "extra" in m._modules


# ---- apply, modes, grads -----------------------------------------------------------------------

def test_apply_init_weights_doc_example(lib):
    # torch's documentation example for Module.apply.
    seen = []

    @lib.no_grad()
    def init_weights(m):
        seen.append(type(m).__name__)
        if type(m) is lib.nn.Linear:
            m.weight.fill_(1.0)

    net = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Linear(2, 2))
    assert net.apply(init_weights) is net
    assert seen == ["Linear", "Linear", "Sequential"]  # children first, then self
    for lin in net:
        assert lin.weight.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_apply_with_data_fill_keeps_parameter_objects(lib):
    net = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU(), lib.nn.Linear(2, 1))
    before = list(net.parameters())

    def init_weights(m):
        if isinstance(m, lib.nn.Linear):
            m.weight.data.fill_(1.0)
            m.bias.data.zero_()

    net.apply(init_weights)
    after = list(net.parameters())
    assert all(a is b for a, b in zip(before, after))
    assert net[0].weight.tolist() == [[1.0, 1.0], [1.0, 1.0]] and net[0].bias.tolist() == [0.0, 0.0]
    out = net(lib.ones(1, 2))
    assert out.tolist() == [[4.0]]


def test_train_eval(lib):
    m = _net(lib)
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    assert m.train() is m and all(x.training for x in m.modules())
    m.train(False)
    assert not m.head[1].training


def test_requires_grad_and_zero_grad(lib):
    m = _net(lib)
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    m.requires_grad_()
    m(lib.ones(4, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and float(g.abs().sum()) == 0.0 for g in grads)
    m(lib.ones(4, 3)).sum().backward()
    assert all(p.grad is g for p, g in zip(m.parameters(), grads))  # zeroed in place, then reused
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_freezing_a_submodule_stops_its_gradients():
    m = _net(tracenn)
    m.block.requires_grad_(False)
    m(tracenn.ones(2, 3)).sum().backward()
    assert m.block.lin.weight.grad is None and m.head[0].weight.grad is not None


# ---- moves and casts ---------------------------------------------------------------------------

def test_casts_touch_floating_tensors_only_and_keep_parameter_objects(lib):
    m = _net(lib)
    params = list(m.parameters())
    m(lib.ones(2, 3)).sum().backward()
    grads = [p.grad for p in params]
    assert m.double() is m
    assert all(a is b for a, b in zip(params, m.parameters()))
    assert all(p.dtype == lib.float64 for p in m.parameters())
    assert all(p.grad is g and g.dtype == lib.float64 for p, g in zip(m.parameters(), grads))
    assert m.mean.dtype == lib.float64 and m.block.count.dtype == lib.int64
    m.half()
    assert m.scale.dtype == lib.float16 and m.block.count.dtype == lib.int64
    m.bfloat16()
    assert m.scale.dtype == lib.bfloat16
    m.float()
    assert m.scale.dtype == lib.float32 and m.mean.dtype == lib.float32
    m.to(lib.float64)
    assert m.scale.dtype == lib.float64 and m.block.count.dtype == lib.int64
    m.to(dtype=lib.float32)
    assert m.scale.dtype == lib.float32
    m.to(lib.zeros(1, dtype=lib.float64))
    assert m.scale.dtype == lib.float64
    m.to("cpu", lib.float32)
    assert m.scale.dtype == lib.float32 and m.scale.device.type == "cpu"
    assert all(a is b for a, b in zip(params, m.parameters()))


def test_type_casts_every_tensor(lib):
    m = _net(lib)
    m.type(lib.float64)
    assert m.block.count.dtype == lib.float64 and m.scale.dtype == lib.float64


def test_cast_values_and_optimizer_style_update_after_to():
    m = nn.Linear(2, 2)
    w = m.weight
    before = np.asarray(w.detach()._value)
    m.double()
    assert_close(m.weight, before.astype(np.float64))
    with tracenn.no_grad():
        w.add_(1.0)  # an optimizer holding w updates the module's parameter
    assert_close(m.weight, before.astype(np.float64) + 1.0)
    assert m(tracenn.ones(1, 2, dtype=tracenn.float64)).dtype == tracenn.float64


def test_to_and_cpu_on_cpu_return_self(lib):
    m = lib.nn.Linear(2, 2)
    w = m.weight
    assert m.to("cpu") is m and m.cpu() is m and m.to(lib.device("cpu")) is m
    assert m.weight is w and m.weight.device.type == "cpu"


def test_buffers_are_replaced_by_casts(lib):
    m = lib.nn.Module()
    m.register_buffer("b", lib.zeros(2))
    b = m.b
    m.float()
    assert m.b is b  # nothing to do: the same tensor
    m.double()
    assert m.b is not b and m.b.dtype == lib.float64


def test_to_complex_warns(lib):
    m = lib.nn.Linear(1, 1)
    with pytest.warns(UserWarning, match="Complex modules are a new feature"):
        m.to(lib.complex64)
    assert m.weight.dtype == lib.complex64


def test_to_empty_keeps_shapes(lib):
    m = lib.nn.Linear(3, 2)
    w = m.weight
    m.to_empty(device="cpu")
    assert m.weight is w and tuple(m.weight.shape) == (2, 3)


def test_share_memory_returns_self(lib):
    m = lib.nn.Linear(1, 1)
    assert m.share_memory() is m


def test_cuda_without_a_gpu_raises():
    if tracenn.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError):
        nn.Linear(1, 1).cuda()


@pytest.mark.skipif(not tracenn.cuda.is_available(), reason="needs a GPU")
def test_to_cuda_moves_parameters_and_keeps_them():
    m = nn.Linear(2, 2)
    w = m.weight
    m.to("cuda")
    assert m.weight is w and m.weight.device.type == "cuda" and m.bias.device.type == "cuda"
    assert m(tracenn.ones(1, 2, device="cuda")).device.type == "cuda"
    m.cpu()
    assert m.weight.device.type == "cpu"


# ---- repr --------------------------------------------------------------------------------------

NET_REPR = """Net(
  (block): Block(
    (lin): Linear(in_features=3, out_features=3, bias=True)
  )
  (head): Sequential(
    (0): Linear(in_features=3, out_features=2, bias=True)
    (1): Tanh()
  )
)"""


def test_nested_repr(lib):
    assert repr(_net(lib)) == NET_REPR


def test_repr_with_extra_repr_lines_and_children(lib):
    class WithExtra(lib.nn.Module):
        def __init__(self, lines):
            super().__init__()
            self.lines = lines

        def extra_repr(self):
            return self.lines

    assert repr(WithExtra("alpha=1")) == "WithExtra(alpha=1)"
    assert repr(WithExtra("a=1\nb=2")) == "WithExtra(\n  a=1\n  b=2\n)"
    m = WithExtra("alpha=1")
    m.child = WithExtra("x=1\ny=2")
    m.add_module("none", None)
    assert repr(m) == ("WithExtra(\n  alpha=1\n  (child): WithExtra(\n    x=1\n    y=2\n  )\n"
                       "  (none): None\n)")
    assert repr(lib.nn.Module()) == "Module()"


def test_builtin_module_reprs(lib):
    assert repr(lib.nn.Linear(3, 4, bias=False)) == "Linear(in_features=3, out_features=4, bias=False)"
    assert repr(lib.nn.ReLU()) == "ReLU()"
    assert repr(lib.nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(lib.nn.Tanh()) == "Tanh()"
    assert repr(lib.nn.Sigmoid()) == "Sigmoid()"
    assert repr(lib.nn.Identity(3, a=4)) == "Identity()"


# ---- copying -----------------------------------------------------------------------------------

def test_deepcopy_keeps_structure_values_and_sharing(lib):
    l = lib.nn.Linear(2, 2)
    net = lib.nn.Sequential(l, l, lib.nn.ReLU())
    net.register_buffer("steps", lib.tensor([3]))
    net2 = copy.deepcopy(net)
    assert net2[0] is net2[1] and net2[0] is not l
    assert type(net2[0].weight) is lib.nn.Parameter
    assert net2[0].weight.tolist() == l.weight.tolist()
    assert net2.steps.tolist() == [3]
    with lib.no_grad():
        net2[0].weight.fill_(0.0)
    assert l.weight.abs().sum().item() > 0
    assert repr(net2) == repr(net)


class _Block(nn.Module):  # module level: pickle finds classes by name
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.register_buffer("count", tracenn.zeros(1, dtype=tracenn.int64))
        self.register_buffer("tmp", tracenn.ones(1), persistent=False)

    def forward(self, x):
        return self.lin(x).relu()


def test_pickle_roundtrip():
    m = nn.Sequential(_Block(), nn.Linear(3, 2))
    m[0].lin.weight.grad = tracenn.ones(3, 3)
    m.eval()
    m2 = pickle.loads(pickle.dumps(m))
    assert type(m2[0]) is _Block and not m2.training and not m2[0].training
    assert list(m2.state_dict()) == list(m.state_dict())
    assert m2[0]._non_persistent_buffers_set == {"tmp"}
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert_close(a, b)
    assert all(type(p) is nn.Parameter and p.requires_grad for p in m2.parameters())
    x = tracenn.ones(2, 3)
    assert_close(m2(x), m(x))


def _module_with_hooks():
    m = nn.Linear(2, 2)
    m.register_forward_hook(_double_output)
    return m


def _double_output(module, args, out):
    return out * 2


def test_pickle_keeps_picklable_hooks():
    m = _module_with_hooks()
    m2 = pickle.loads(pickle.dumps(m))
    x = tracenn.ones(1, 2)
    assert_close(m2(x), m(x))
    assert_close(m2(x), m2.forward(x) * 2)


def test_setstate_fills_missing_attributes():
    m = nn.Linear(1, 1)
    state = m.__getstate__()
    del state["_forward_pre_hooks_with_kwargs"], state["_non_persistent_buffers_set"]
    m2 = nn.Linear.__new__(nn.Linear)
    m2.__setstate__(state)
    assert m2._forward_pre_hooks_with_kwargs == OrderedDict() and m2._non_persistent_buffers_set == set()


def test_call_super_init_passes_arguments_on():
    class Base:
        def __init__(self, *args, **kwargs):
            self.got = (args, kwargs)

    class M(nn.Module, Base):
        call_super_init = True

    m = M(1, a=2)
    assert m.got == ((1,), {"a": 2})
