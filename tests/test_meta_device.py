"""The meta device (shape-and-dtype tensors, no data) and ``with tracenn.device(...)``."""
import copy
import pickle

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from tracenn.func import functional_call, stack_module_state, vmap


def meta(*shape, dtype=None, lib=tracenn):
    return lib.empty(*shape, device="meta", dtype=dtype)


# ---- ops on meta tensors: shapes and dtypes, as torch's meta tensors ------------------------------

OPS = {
    "matmul": lambda L: meta(4, 3, lib=L) @ meta(3, 5, lib=L),
    "bmm": lambda L: L.bmm(meta(2, 4, 3, lib=L), meta(2, 3, 5, lib=L)),
    "matmul_f16": lambda L: meta(4, 3, dtype=L.float16, lib=L) @ meta(3, 2, dtype=L.float16, lib=L),
    "conv2d": lambda L: L.nn.functional.conv2d(meta(2, 3, 8, 8, lib=L), meta(4, 3, 3, 3, lib=L), meta(4, lib=L),
                                               stride=2, padding=1),
    "linear": lambda L: L.nn.functional.linear(meta(2, 3, lib=L), meta(5, 3, lib=L), meta(5, lib=L)),
    "softmax": lambda L: meta(2, 3, lib=L).softmax(-1),
    "log_softmax": lambda L: L.nn.functional.log_softmax(meta(2, 3, lib=L), dim=1),
    "sum_dim": lambda L: meta(2, 3, lib=L).sum(1),
    "mean_keepdim": lambda L: meta(2, 3, lib=L).mean(0, keepdim=True),
    "max_dim": lambda L: meta(2, 3, lib=L).max(1),
    "argmax": lambda L: meta(2, 3, lib=L).argmax(),
    "var": lambda L: meta(2, 3, lib=L).var(1),
    "int_sum": lambda L: meta(2, 3, dtype=L.int32, lib=L).sum(),
    "reshape": lambda L: meta(2, 3, lib=L).reshape(3, 2),
    "view": lambda L: meta(2, 3, lib=L).view(-1),
    "transpose": lambda L: meta(2, 3, 4, lib=L).transpose(0, 2),
    "permute": lambda L: meta(2, 3, 4, lib=L).permute(2, 0, 1),
    "expand": lambda L: meta(1, 3, lib=L).expand(4, 3),
    "cat": lambda L: L.cat([meta(2, 3, lib=L), meta(4, 3, lib=L)]),
    "stack": lambda L: L.stack([meta(2, 3, lib=L), meta(2, 3, lib=L)], 1),
    "chunk": lambda L: meta(6, 3, lib=L).chunk(3),
    "index_int": lambda L: meta(4, 3, lib=L)[1],
    "index_slice": lambda L: meta(4, 3, lib=L)[1:3, ::2],
    "index_none": lambda L: meta(4, 3, lib=L)[None, :, 0],
    "index_cpu_tensor": lambda L: meta(4, 3, lib=L)[L.tensor([0, 2, 3])],
    "int_plus_float": lambda L: meta(3, dtype=L.int64, lib=L) + 1.5,
    "int_true_div": lambda L: meta(3, dtype=L.int64, lib=L) / 2,
    "plus_cpu_scalar_tensor": lambda L: meta(3, lib=L) + L.tensor(2.0),
    "compare": lambda L: meta(3, lib=L) > 0,
    "where": lambda L: L.where(meta(3, lib=L) > 0, meta(3, lib=L), 0.0),
    "layer_norm": lambda L: L.nn.functional.layer_norm(meta(2, 5, lib=L), (5,)),
    "embedding": lambda L: L.nn.functional.embedding(L.tensor([[1, 2]]), meta(10, 4, lib=L)),
    "max_pool2d": lambda L: L.nn.functional.max_pool2d(meta(1, 2, 8, 8, lib=L), 2),
    "cross_entropy": lambda L: L.nn.functional.cross_entropy(meta(4, 5, lib=L), meta(4, dtype=L.int64, lib=L)),
    "batch_norm_train": lambda L: L.nn.functional.batch_norm(meta(4, 3, lib=L), meta(3, lib=L), meta(3, lib=L),
                                                             training=True),
    "sdpa": lambda L: L.nn.functional.scaled_dot_product_attention(meta(2, 4, 8, lib=L), meta(2, 4, 8, lib=L),
                                                                   meta(2, 4, 8, lib=L)),
    "topk": lambda L: meta(5, 6, lib=L).topk(2),
    "cumsum": lambda L: meta(5, lib=L).cumsum(0),
    "einsum": lambda L: L.einsum("ij,jk->ik", meta(2, 3, lib=L), meta(3, 4, lib=L)),
    "cast": lambda L: meta(2, 3, lib=L).to(L.float64),
}


def _signature(r):
    rs = r if isinstance(r, (tuple, list)) else (r,)
    return [(tuple(x.shape), str(x.dtype).split(".")[-1], str(x.device)) for x in rs]


@pytest.mark.parametrize("name", sorted(OPS))
def test_ops_on_meta_match_torch(name):
    torch = pytest.importorskip("torch")
    got, want = _signature(OPS[name](tracenn)), _signature(OPS[name](torch))
    assert got == want
    assert all(d == "meta" for _, _, d in got)


def test_ops_on_meta_without_torch():
    y = meta(64, 784) @ meta(784, 10)
    assert y.is_meta and y.shape == (64, 10) and y.dtype is tracenn.float32 and y.device == tracenn.device("meta")
    v, i = meta(5, 6, dtype=tracenn.float64).max(1)
    assert (v.shape, v.dtype, i.dtype) == ((5,), tracenn.float64, tracenn.int64)
    assert F.conv2d(meta(2, 3, 8, 8), meta(4, 3, 3, 3), padding=1).shape == (2, 4, 8, 8)
    assert (meta(3, dtype=tracenn.int64) / 2).dtype is tracenn.float32


def test_meta_results_have_no_values_and_record_requires_grad():
    w = meta(3, 2).requires_grad_()
    y = meta(4, 3) @ w
    assert y.requires_grad and y.grad_fn is not None and not y.is_leaf
    with pytest.raises(RuntimeError, match="meta tensors have a shape and a dtype, no data"):
        y.sum().backward()


def test_in_place_on_meta_stays_meta():
    m = meta(3, 2)
    v = m._version
    assert m.add_(1) is m and m.is_meta and m._version == v + 1
    nn.init.kaiming_uniform_(m)
    nn.init.trunc_normal_(m)
    nn.init.zeros_(m)
    assert m.is_meta and m.shape == (3, 2)
    m[0].fill_(2.0)  # through a view
    assert m.is_meta
    assert m.copy_(tracenn.ones(3, 2)) is m and m.is_meta  # torch: copying into meta is a no-op


def test_broadcast_error_on_meta():
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(4\)"):
        meta(3) + meta(4)


# ---- errors and reprs, pinned to torch's ---------------------------------------------------------

def test_mixing_meta_and_real_tensors_raises_as_torch():
    with pytest.raises(RuntimeError, match=r"^Tensor on device meta is not on the expected device cpu!$"):
        tracenn.ones(2) + meta(2)
    with pytest.raises(RuntimeError, match=r"^Tensor on device cpu is not on the expected device meta!$"):
        meta(2) + tracenn.ones(2)
    assert (meta(2) + tracenn.tensor(1.0)).is_meta  # a 0-d CPU tensor is a scalar, as in torch


def test_reading_values_raises_torch_errors():
    m, s = meta(3, 2), meta(())
    with pytest.raises(RuntimeError, match="^a Tensor with 6 elements cannot be converted to Scalar$"):
        m.item()
    with pytest.raises(RuntimeError, match=r"^Tensor.item\(\) cannot be called on meta tensors$"):
        s.item()
    with pytest.raises(RuntimeError, match=r"^Tensor.item\(\) cannot be called on meta tensors$"):
        bool(s)
    with pytest.raises(RuntimeError, match=r"^Tensor.item\(\) cannot be called on meta tensors$"):
        float(s)
    with pytest.raises(NotImplementedError, match="^Cannot copy out of meta tensor; no data!$"):
        m.tolist()
    with pytest.raises(TypeError, match=r"^can't convert meta device type tensor to numpy. Use Tensor.cpu\(\) to copy"):
        m.numpy()
    with pytest.raises(TypeError, match="can't convert meta device type tensor to numpy"):
        np.asarray(m)
    with pytest.raises(NotImplementedError, match="^Cannot copy out of meta tensor; no data!$"):
        m.to("cpu")
    with pytest.raises(NotImplementedError, match="^Cannot copy out of meta tensor; no data!$"):
        m.cpu()
    with pytest.raises(NotImplementedError, match="^Cannot copy out of meta tensor; no data!$"):
        tracenn.ones(3, 2).copy_(m)


def test_reprs_match_torch():
    assert repr(meta(3, 2)) == "tensor(..., device='meta', size=(3, 2))"
    assert str(meta(3, 2)) == "tensor(..., device='meta', size=(3, 2))"
    assert repr(meta(())) == "tensor(..., device='meta', size=())"
    assert repr(meta(0)) == "tensor(..., device='meta', size=(0,))"
    assert repr(meta(2, dtype=tracenn.int64)) == "tensor(..., device='meta', size=(2,), dtype=tracenn.int64)"
    assert repr(meta(2, dtype=tracenn.float64)) == "tensor(..., device='meta', size=(2,), dtype=tracenn.float64)"
    assert repr(meta(2, 3).requires_grad_()) == "tensor(..., device='meta', size=(2, 3), requires_grad=True)"
    assert repr(meta(3).requires_grad_() * 2) == "tensor(..., device='meta', size=(3,), grad_fn=<MulBackward0>)"
    assert repr(nn.Parameter(meta(3, 2))) == \
        "Parameter containing:\ntensor(..., device='meta', size=(3, 2), requires_grad=True)"


def test_reprs_against_torch():
    torch = pytest.importorskip("torch")
    for shape, dt in [((3, 2), "float32"), ((), "float32"), ((0,), "float32"), ((2,), "int64"), ((2,), "bool"),
                      ((2,), "float16"), ((2,), "complex64"), ((2, 1), "int32")]:
        got = repr(tracenn.empty(shape, device="meta", dtype=getattr(tracenn, dt)))
        want = repr(torch.empty(shape, device="meta", dtype=getattr(torch, dt)))
        assert got == want.replace("torch.", "tracenn.")
    assert repr(nn.Parameter(meta(3, 2))) == repr(torch.nn.Parameter(torch.empty(3, 2, device="meta")))


def test_device_and_flags():
    m = meta(2)
    assert m.device == tracenn.device("meta") and m.device.type == "meta" and str(m.device) == "meta"
    assert m.is_meta and not m.is_cpu and not m.is_cuda
    assert not tracenn.ones(2).is_meta
    assert m.numel() == 2 and m.element_size() == 4 and m.nbytes == 8


def test_pickle_and_deepcopy_keep_meta():
    p = nn.Parameter(meta(3, 2))
    for q in (pickle.loads(pickle.dumps(meta(3, 2, dtype=tracenn.bfloat16))), copy.deepcopy(p)):
        assert q.is_meta and q.shape == (3, 2)
    assert pickle.loads(pickle.dumps(meta(3, 2, dtype=tracenn.bfloat16))).dtype is tracenn.bfloat16
    assert copy.deepcopy(p).requires_grad


# ---- creation --------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: tracenn.empty(2, 3, device="meta"), lambda: tracenn.zeros(2, 3, device="meta"),
    lambda: tracenn.ones(2, 3, device="meta"), lambda: tracenn.full((2, 3), 7.0, device="meta"),
    lambda: tracenn.rand(2, 3, device="meta"), lambda: tracenn.randn(2, 3, device="meta"),
    lambda: tracenn.tensor([[1.0, 2, 3], [4, 5, 6]], device="meta"),
    lambda: tracenn.arange(6, device="meta", dtype=tracenn.float32).view(2, 3),
    lambda: tracenn.empty_like(meta(2, 3)), lambda: tracenn.zeros_like(meta(2, 3)),
    lambda: tracenn.ones_like(meta(2, 3)), lambda: tracenn.full_like(meta(2, 3), 2.0),
    lambda: tracenn.ones(2, 3).to("meta"), lambda: tracenn.ones(2, 3).to(device="meta"),
    lambda: tracenn.ones(2, 3).to(tracenn.device("meta")),
    lambda: tracenn.zeros_like(tracenn.ones(2, 3), device="meta"),
])
def test_creation_on_meta(make):
    t = make()
    assert t.is_meta and t.shape == (2, 3) and t.dtype is tracenn.float32


def test_creation_dtypes_and_grad_on_meta():
    assert tracenn.arange(5, device="meta").dtype is tracenn.int64
    assert tracenn.full((2,), 3, device="meta").dtype is tracenn.int64
    assert tracenn.eye(3, device="meta").shape == (3, 3)
    assert tracenn.linspace(0, 1, 5, device="meta").shape == (5,)
    assert tracenn.logspace(0, 2, 3, device="meta").is_meta
    w = tracenn.zeros(2, device="meta", requires_grad=True)
    assert w.is_meta and w.requires_grad and w.is_leaf


def test_to_meta_records_autograd_and_keeps_self():
    w = tracenn.ones(3, requires_grad=True)
    m = w.to("meta")
    assert m.is_meta and m.requires_grad and m.grad_fn is not None
    assert m.to("meta") is m
    d = w.to("meta", tracenn.float64)
    assert d.is_meta and d.dtype is tracenn.float64


def test_meta_context_computes_nothing():
    # 40 GB of float32 if any of its factories or initialisers ran for real
    with tracenn.device("meta"):
        big = nn.Linear(100_000, 100_000)
        x = tracenn.randn(8, 100_000)
    assert big.weight.is_meta and big.weight.shape == (100_000, 100_000) and big(x).shape == (8, 100_000)
    assert big.weight.nbytes == 4 * 10 ** 10


# ---- with tracenn.device(...) -------------------------------------------------------------------------

def test_device_context_sets_and_restores_default():
    assert tracenn.get_default_device() == tracenn.device("cpu")
    with tracenn.device("meta") as d:
        assert d == tracenn.device("meta")
        assert tracenn.get_default_device() == tracenn.device("meta")
        assert tracenn.empty(2).is_meta and tracenn.rand(2).is_meta and tracenn.tensor([1, 2]).is_meta
        assert tracenn.arange(3).is_meta and tracenn.zeros(2, device="cpu").device == tracenn.device("cpu")
        with tracenn.device("cpu"):
            assert tracenn.get_default_device() == tracenn.device("cpu")
            assert not tracenn.zeros(2).is_meta
            with tracenn.device("meta"):
                assert tracenn.zeros(2).is_meta
            assert not tracenn.zeros(2).is_meta
        assert tracenn.zeros(2).is_meta
    assert tracenn.get_default_device() == tracenn.device("cpu")
    assert not tracenn.zeros(2).is_meta


def test_device_context_restores_on_exception():
    d = tracenn.device("meta")
    with pytest.raises(ValueError, match="inside"):
        with d:
            with d:  # the same device object, entered twice
                raise ValueError("inside")
    assert tracenn.get_default_device() == tracenn.device("cpu") and not tracenn.ones(1).is_meta


def test_device_context_bad_device_leaves_default_alone():
    if tracenn.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA"):
        with tracenn.device("cuda"):
            pass
    assert tracenn.get_default_device() == tracenn.device("cpu")


def test_device_context_cpu_and_set_default_device_meta():
    with tracenn.device("cpu"):
        assert tracenn.ones(1).device == tracenn.device("cpu")
    tracenn.set_default_device("meta")
    try:
        assert tracenn.get_default_device() == tracenn.device("meta") and tracenn.ones(2).is_meta
    finally:
        tracenn.set_default_device("cpu")
    assert not tracenn.ones(2).is_meta


def test_device_stays_hashable_and_picklable():
    d = tracenn.device("meta")
    assert hash(d) == hash(tracenn.device("meta")) and {d: 1}[tracenn.device("meta")] == 1
    assert pickle.loads(pickle.dumps(tracenn.device("cuda", 1))) == tracenn.device("cuda:1")


def test_real_tensors_inside_meta_context_get_values():
    tracenn.manual_seed(0)
    want = nn.Linear(3, 2)
    tracenn.manual_seed(0)
    with tracenn.device("meta"):
        got = nn.Linear(3, 2, device="cpu")  # its init draws inside the block: real values, as torch
        z = tracenn.zeros(2, device="cpu").fill_(3.0)
    assert not got.weight.is_meta and tracenn.equal(got.weight, want.weight) and z.tolist() == [3.0, 3.0]
    with tracenn.device("meta"):
        lin = nn.Linear(3, 2)  # initialised in place: a meta parameter, no values to copy out
        with pytest.raises(NotImplementedError, match="^Cannot copy out of meta tensor; no data!$"):
            tracenn.zeros(2, 3, device="cpu").copy_(lin.weight)


# ---- modules ---------------------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 5)
        self.ln = nn.LayerNorm(5)

    def forward(self, x):
        return self.ln(self.fc(F.relu(self.bn(self.conv(x))).flatten(1)))


def _all_meta(m):
    return all(t.is_meta for t in list(m.parameters()) + list(m.buffers()))


def test_module_built_under_meta_context():
    with tracenn.device("meta"):
        m = Net()
    assert _all_meta(m)
    assert all(type(p) is nn.Parameter and p.requires_grad for p in m.parameters())
    assert m.bn.num_batches_tracked.dtype is tracenn.int64
    y = m(meta(2, 3, 8, 8))  # shape inference through a whole model (train mode: bn updates stay meta)
    assert y.is_meta and y.shape == (2, 5) and _all_meta(m)


def test_module_to_meta_keeps_parameters():
    m = Net()
    w = m.fc.weight
    assert m.to("meta") is m and m.fc.weight is w and type(w) is nn.Parameter and _all_meta(m)
    assert m.to(device="meta") is m and _all_meta(m)


def test_deferred_init_to_empty_and_load_state_dict():
    tracenn.manual_seed(0)
    ref = Net().eval()
    sd = ref.state_dict()
    x = tracenn.randn(2, 3, 8, 8)

    with tracenn.device("meta"):
        a = Net()
    a.to_empty(device="cpu")
    assert not any(t.is_meta for t in a.state_dict().values())
    assert [(k, t.shape, t.dtype) for k, t in a.state_dict().items()] == \
        [(k, t.shape, t.dtype) for k, t in sd.items()]
    assert all(type(p) is nn.Parameter for p in a.parameters())
    a.load_state_dict(sd)
    assert tracenn.equal(a.eval()(x), ref(x))

    with tracenn.device("meta"):
        b = Net()
    b.load_state_dict(sd)  # copying into meta parameters is a no-op, as torch's
    assert _all_meta(b)
    assert str(b.load_state_dict(sd, assign=True)) == "<All keys matched successfully>"
    assert not any(t.is_meta for t in list(b.parameters()) + list(b.buffers()))
    assert all(type(p) is nn.Parameter and p.requires_grad for p in b.parameters())
    assert tracenn.equal(b.eval()(x), ref(x))


def test_to_empty_then_reset_parameters():
    with tracenn.device("meta"):
        lin = nn.Linear(4, 3)
    lin.to_empty(device="cpu")
    assert lin.weight.abs().sum().item() == 0.0  # tracenn's "uninitialised" memory is zeros
    lin.reset_parameters()
    assert lin.weight.abs().sum().item() > 0 and lin(tracenn.ones(2, 4)).shape == (2, 3)


def test_deferred_init_against_torch():
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        t = torch.nn.Linear(4, 3)
    with tracenn.device("meta"):
        m = nn.Linear(4, 3)
    assert repr(m.weight) == repr(t.weight).replace("torch.", "tracenn.")
    t.to_empty(device="cpu")
    m.to_empty(device="cpu")
    assert [(k, tuple(v.shape), str(v.dtype)[6:]) for k, v in t.state_dict().items()] == \
        [(k, tuple(v.shape), str(v.dtype)[8:]) for k, v in m.state_dict().items()]


def test_compile_of_a_meta_model_raises_clearly():
    m = nn.Linear(4, 3).to("meta")
    with pytest.raises(RuntimeError, match="meta tensors have a shape and a dtype, no data"):
        tracenn.compile(m)(tracenn.ones(2, 4))


# ---- the torch.func model-ensembling tutorial ------------------------------------------------------

class SimpleMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def test_model_ensembling_tutorial():
    tracenn.manual_seed(0)
    models = [SimpleMLP() for _ in range(4)]
    minibatch = tracenn.randn(64, 1, 28, 28)
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    assert _all_meta(base)

    def fmodel(params, buffers, x):
        return functional_call(base, (params, buffers), (x,))

    out = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, minibatch)
    loop = tracenn.stack([m(minibatch) for m in models])
    assert out.shape == (4, 64, 10) and not out.is_meta
    np.testing.assert_allclose(out.detach().numpy(), loop.detach().numpy(), rtol=1e-5, atol=1e-5)
    one = functional_call(base, ({k: v[1] for k, v in params.items()}, buffers), (minibatch,))
    np.testing.assert_allclose(one.detach().numpy(), loop[1].detach().numpy(), rtol=1e-5, atol=1e-5)
    assert _all_meta(base)  # functional_call put the meta parameters back


def test_ensembling_different_minibatches():
    tracenn.manual_seed(1)
    models = [SimpleMLP() for _ in range(3)]
    minibatches = tracenn.randn(3, 8, 1, 28, 28)
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    out = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)))(params, buffers, minibatches)
    loop = tracenn.stack([m(x) for m, x in zip(models, minibatches)])
    np.testing.assert_allclose(out.detach().numpy(), loop.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_meta_tensors_inside_transforms_and_compile_raise_clearly():
    m = meta(3, 2)
    with pytest.raises(RuntimeError, match="reached a computation that needs its values"):
        vmap(lambda x: x @ m)(tracenn.ones(4, 5, 3))
    with pytest.raises(RuntimeError, match="reached a computation that needs its values"):
        tracenn.compile(lambda x: x + m)(tracenn.ones(3, 2))
    with pytest.raises(BufferError, match="^Cannot pack tensors on meta$"):
        m.__dlpack__()


def test_random_draws_for_a_meta_input_are_meta():
    """torch draws ``*_like`` values and dropout/rrelu masks on the input's device: on meta, shapes only."""
    x = tracenn.empty(4, 3, device="meta")
    F = tracenn.nn.functional
    for out in (tracenn.rand_like(x), tracenn.randn_like(x), tracenn.randint_like(x, 5), F.dropout(x, 0.5),
                tracenn.nn.Dropout(0.1)(x), F.rrelu(x, training=True), tracenn.nn.init.sparse_(x, 0.5),
                tracenn.nn.init.orthogonal_(x)):
        assert out.is_meta and tuple(out.shape) == (4, 3)
    y = tracenn.ones(4, 5)  # a real input on the default device: its draws are not placed anew
    assert not F.dropout(y, 0.5)._value.committed and not tracenn.rand_like(y)._value.committed
    assert tracenn.func.vmap(lambda z: F.dropout(z, 0.5), randomness="different")(y).shape == (4, 5)


def test_loading_into_meta_parameters_without_assign_warns_as_torch():
    with tracenn.device("meta"):
        lin = tracenn.nn.Linear(2, 3)
    sd = tracenn.nn.Linear(2, 3).state_dict()
    with pytest.warns(UserWarning, match=r"for weight: copying from a non-meta parameter in the checkpoint to a "
                                         r"meta parameter in the current model, which is a no-op. \(Did you mean "
                                         r"to pass `assign=True`"):
        result = lin.load_state_dict(sd)
    assert not result.missing_keys and lin.weight.is_meta
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lin.load_state_dict(sd, assign=True)  # (assigning: nothing to warn about)
    assert not lin.weight.is_meta


def test_compiled_functional_call_over_a_meta_base_module():
    import copy
    m = tracenn.nn.Linear(4, 3)
    base = copy.deepcopy(m).to("meta")
    cf = tracenn.compile(lambda params, x: tracenn.func.functional_call(base, params, (x,)))
    x = tracenn.randn(2, 4)
    params = dict(m.named_parameters())
    out = cf(params, x)
    assert tracenn.allclose(out, m(x), atol=1e-6)
    out.sum().backward()
    assert m.weight.grad is not None and m.weight.grad.shape == (3, 4)
    with pytest.raises(RuntimeError, match="a tensor on the meta device"):  # reading the base itself
        tracenn.compile(lambda x: base(x))(x)
