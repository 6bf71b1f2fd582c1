"""Small torch API names real scripts use: ``amp.custom_fwd``/``custom_bwd``/``is_autocast_available``,
``func.linearize``/``functionalize``, ``testing.make_tensor``/``assert_allclose``, conv weight memory
formats, ``nn.init``'s deprecated aliases, ``utils.checkpoint``'s selective-checkpoint API,
``utils.swap_tensors``, ``jit.freeze``/``fork``/..., ``autograd.set_multithreading_enabled``.
Known values and NumPy first; torch comparisons where torch is installed."""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.utils.checkpoint import CheckpointPolicy


def _np(t):
    return np.asarray(t.detach().float().numpy())


# ---- amp.custom_fwd / custom_bwd / is_autocast_available ----------------------------------------

def _matmul_function(ns, cast_inputs, seen):
    class MatMul(ns.autograd.Function):
        @staticmethod
        @ns.amp.custom_fwd(device_type="cpu", cast_inputs=cast_inputs)
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            seen.append(("fwd", str(a.dtype).split(".")[-1], ns.is_autocast_enabled("cpu")))
            return a @ b

        @staticmethod
        @ns.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            seen.append(("bwd", str((g @ b.t()).dtype).split(".")[-1], ns.is_autocast_enabled("cpu")))
            return g @ b.t(), a.t() @ g
    return MatMul


@pytest.mark.parametrize("cast_inputs", [None, "float32"])
def test_custom_fwd_bwd_autocast_state(cast_inputs):
    seen = []
    F = _matmul_function(tracenn, None if cast_inputs is None else tracenn.float32, seen)
    a = tracenn.randn(2, 3, dtype=tracenn.bfloat16, requires_grad=True)
    b = tracenn.randn(3, 2, requires_grad=True)
    with tracenn.autocast("cpu"):
        y = F.apply(a, b)
    y.float().sum().backward()
    if cast_inputs is None:   # forward under autocast (bf16 matmul), backward too
        assert y.dtype == tracenn.bfloat16
        assert seen == [("fwd", "bfloat16", True), ("bwd", "bfloat16", True)]
    else:                     # inputs cast to float32, forward and backward with autocast off
        assert y.dtype == tracenn.float32
        assert seen == [("fwd", "float32", False), ("bwd", "float32", False)]
    assert a.grad.dtype == tracenn.bfloat16 and b.grad.dtype == tracenn.float32
    seen.clear()
    F.apply(a, b.bfloat16())   # outside a region: custom_fwd changes nothing (no cast)
    assert seen == [("fwd", "bfloat16", False)]


@pytest.mark.parametrize("cast_inputs", [None, "float32"])
def test_custom_fwd_bwd_match_torch(cast_inputs):
    torch = pytest.importorskip("torch")
    got, want = [], []
    F = _matmul_function(tracenn, None if cast_inputs is None else tracenn.float32, got)
    T = _matmul_function(torch, None if cast_inputs is None else torch.float32, want)
    an, bn = np.random.RandomState(0).randn(2, 3), np.random.RandomState(1).randn(3, 2)
    a, b = (tracenn.tensor(an.astype(np.float32), requires_grad=True),
            tracenn.tensor(bn.astype(np.float32), requires_grad=True))
    ta, tb = torch.tensor(an, dtype=torch.float32, requires_grad=True), torch.tensor(bn, dtype=torch.float32,
                                                                                     requires_grad=True)
    with tracenn.autocast("cpu"):
        y = F.apply(a, b)
    with torch.autocast("cpu"):
        ty = T.apply(ta, tb)
    y.float().square().sum().backward()
    ty.float().square().sum().backward()
    assert got == want
    # (float32 products summed in another order than torch's kernels: an ulp or two apart)
    np.testing.assert_allclose(_np(y), ty.detach().float().numpy(), rtol=1e-5)
    np.testing.assert_allclose(_np(a.grad), ta.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(_np(b.grad), tb.grad.numpy(), rtol=1e-5)


def test_custom_fwd_in_a_compiled_training_step():
    seen = []
    F = _matmul_function(tracenn, tracenn.float32, seen)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(tracenn.randn(3, 2))

        def forward(self, x):
            with tracenn.autocast("cpu"):
                return F.apply(x.bfloat16(), self.w)    # F casts to float32 and runs with autocast off

    m, x = M(), tracenn.randn(4, 3)

    def step(x):
        loss = m(x).float().square().sum()
        loss.backward()
        return loss
    eager = step(x)
    g_eager, m.w.grad = m.w.grad.clone(), None
    compiled = tracenn.compile(step)(x)
    assert seen[:2] == [("fwd", "float32", False), ("bwd", "float32", False)]
    np.testing.assert_allclose(compiled.item(), eager.item(), rtol=1e-6)
    np.testing.assert_allclose(_np(m.w.grad), _np(g_eager), rtol=1e-5)


def test_custom_fwd_errors_and_cuda_amp_spellings():
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        tracenn.amp.custom_fwd(device_type=1)
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        tracenn.amp.custom_bwd(lambda ctx, g: g, device_type=None)
    with pytest.raises(TypeError, match="device_type"):
        tracenn.amp.custom_fwd(lambda ctx, x: x)
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.custom_fwd\(args...\)` is deprecated. Please use "
                                           r"`torch.amp.custom_fwd\(args..., device_type='cuda'\)"):
        dec = tracenn.cuda.amp.custom_fwd(cast_inputs=tracenn.float32)
    assert callable(dec)
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.custom_bwd\(args...\)` is deprecated"):
        tracenn.cuda.amp.custom_bwd(lambda ctx, g: g)
    assert not hasattr(tracenn.cpu.amp, "custom_fwd")   # as torch.cpu.amp


def test_is_autocast_available():
    assert tracenn.amp.is_autocast_available("cpu") and tracenn.amp.is_autocast_available("cuda:0")
    assert not tracenn.amp.is_autocast_available("meta")
    with pytest.raises(RuntimeError, match="device type at start of device string: foo"):
        tracenn.amp.is_autocast_available("foo")


# ---- func.linearize / func.functionalize ------------------------------------------------------------

def _lin_f(x, y):
    return (x.sin() * y).sum(0), x @ y.t()


def test_linearize_is_jvp():
    from tracenn.func import jvp, linearize
    rs = np.random.RandomState(0)
    x, y, tx, ty = (tracenn.tensor(rs.rand(3, 4).astype(np.float32)) for _ in range(4))
    out, jvp_fn = linearize(_lin_f, x, y)
    want_out, want = jvp(_lin_f, (x, y), (tx, ty))
    got = jvp_fn(tx, ty)
    for a, b in zip(out + got, want_out + want):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6)
    # known values: d(x sin x)/dx = sin x + x cos x
    xs = tracenn.tensor([0.0, 1.0, 2.0])
    _, fn = linearize(lambda v: v * v.sin(), xs)
    a = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(_np(fn(tracenn.ones(3))), np.sin(a) + a * np.cos(a), rtol=1e-6)
    np.testing.assert_allclose(_np(fn(2 * tracenn.ones(3))), 2 * (np.sin(a) + a * np.cos(a)), rtol=1e-6)
    xs.add_(100.0)                  # the point was taken when linearize ran
    np.testing.assert_allclose(_np(fn(tracenn.ones(3))), np.sin(a) + a * np.cos(a), rtol=1e-6)


def test_linearize_errors():
    from tracenn.func import linearize
    _, fn = linearize(_lin_f, tracenn.randn(3, 4), tracenn.randn(3, 4))
    with pytest.raises(RuntimeError, match="to have the same argspec as the primals"):
        fn(tracenn.randn(3, 4))
    with pytest.raises(RuntimeError, match=r"tangent:1 with shape \(4, 3\) in flattened pytree doesn't match the "
                                           r"shape \(3, 4\)"):
        fn(tracenn.randn(3, 4), tracenn.randn(4, 3))
    with pytest.raises(RuntimeError, match="tangent:0 with dtype tracenn.float64 in flattened pytree doesn't match "
                                           "the dtype tracenn.float32"):
        fn(tracenn.randn(3, 4).double(), tracenn.randn(3, 4))


def test_linearize_compiled():
    from tracenn.func import linearize

    def g(x, t):
        out, fn = linearize(_lin_f, x, x.cos())
        return out, fn(t, t)
    x, t = tracenn.randn(3, 4), tracenn.randn(3, 4)
    eager, compiled = g(x, t), tracenn.compile(g)(x, t)
    for a, b in zip(jax_leaves(eager), jax_leaves(compiled)):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-5, atol=1e-6)


def jax_leaves(tree):
    import jax
    return jax.tree_util.tree_leaves(tree)


def test_linearize_matches_torch():
    torch = pytest.importorskip("torch")
    from tracenn.func import linearize
    rs = np.random.RandomState(1)
    arrs = [rs.rand(3, 4).astype(np.float32) for _ in range(4)]
    out, fn = linearize(_lin_f, tracenn.tensor(arrs[0]), tracenn.tensor(arrs[1]))
    tout, tfn = torch.func.linearize(_lin_f, torch.tensor(arrs[0]), torch.tensor(arrs[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # (torch's const_fold warns)
        want = tfn(torch.tensor(arrs[2]), torch.tensor(arrs[3]))
    got = fn(tracenn.tensor(arrs[2]), tracenn.tensor(arrs[3]))
    for a, b in zip(out + got, tout + want):
        np.testing.assert_allclose(_np(a), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def _mutating(x, y):
    x.mul_(2)
    x[0].add_(y)                    # through a view
    return x.sum() + y


def test_functionalize_keeps_input_mutations():
    from tracenn.func import functionalize
    xn = np.array([1.0, 2.0, 3.0], np.float32)
    x, x_ref, y = tracenn.tensor(xn), tracenn.tensor(xn), tracenn.tensor(5.0)
    out = functionalize(_mutating)(x, y)
    ref = _mutating(x_ref, y)
    np.testing.assert_allclose(_np(x), [7.0, 4.0, 6.0])
    np.testing.assert_allclose(_np(x), _np(x_ref))
    assert out.item() == ref.item() == 22.0
    assert y.item() == 5.0 and y._version == 0          # not mutated: not written back
    w = tracenn.tensor(xn, requires_grad=True)          # gradients reach the arguments through the copies
    a = w * 1
    functionalize(_mutating)(a, tracenn.tensor(1.0)).backward()
    np.testing.assert_allclose(_np(w.grad), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(_np(a), [3.0, 4.0, 6.0])
    with pytest.raises(RuntimeError, match="received invalid argument for remove=views. Valid options are"):
        functionalize(_mutating, remove="views")


def test_functionalize_compiled_and_torch():
    from tracenn.func import functionalize

    def g(x, y):
        x = x * 1
        out = functionalize(_mutating, remove="mutations_and_views")(x, y)
        return out, x
    x, y = tracenn.randn(3), tracenn.randn(())
    for a, b in zip(g(x, y), tracenn.compile(g)(x, y)):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6)
    torch = pytest.importorskip("torch")
    tx, ty = torch.tensor(_np(x)), torch.tensor(_np(y))
    tout = torch.func.functionalize(_mutating)(tx, ty)
    out = functionalize(_mutating)(x, y)
    np.testing.assert_allclose(_np(out), tout.numpy(), rtol=1e-6)
    np.testing.assert_allclose(_np(x), tx.numpy(), rtol=1e-6)


# ---- testing.make_tensor / assert_allclose ----------------------------------------------------------

@pytest.mark.parametrize("dtype,lo,hi", [("float32", -9, 9), ("float64", -9, 9), ("bfloat16", -9, 9),
                                         ("int64", -9, 10), ("int8", -9, 10), ("uint8", 0, 10), ("bool", 0, 2),
                                         ("complex64", -9, 9)])
def test_make_tensor_default_ranges(dtype, lo, hi):
    from tracenn.testing import make_tensor
    dt = getattr(tracenn, dtype)
    x = make_tensor(50, 40, dtype=dt, device="cpu")
    assert x.shape == (50, 40) and x.dtype == dt and not x.requires_grad
    a = np.asarray(x._value)
    parts = [a.real, a.imag] if dtype.startswith("complex") else [a.astype(np.float64)]
    for p in parts:
        assert p.min() >= lo and p.max() < hi
        assert p.max() - p.min() > 0.8 * (hi - lo - 1)      # spread over the range, not a constant
    if dtype in ("int64", "uint8", "bool"):
        assert set(np.unique(a.astype(np.int64))) == set(range(lo, hi))


def test_make_tensor_options():
    from tracenn.testing import make_tensor
    tracenn.manual_seed(0)
    a = make_tensor((3, 4), dtype=tracenn.float32, device="cpu", low=-1, high=1)
    tracenn.manual_seed(0)
    b = make_tensor(3, 4, dtype=tracenn.float32, device="cpu", low=-1, high=1)
    np.testing.assert_array_equal(_np(a), _np(b))              # tracenn's generator: seeded
    assert (_np(a) >= -1).all() and (_np(a) < 1).all()
    nc = make_tensor(3, 4, dtype=tracenn.float32, device="cpu", noncontiguous=True)
    assert nc.shape == (3, 4) and not nc.is_contiguous()
    assert make_tensor(1, dtype=tracenn.float32, device="cpu", noncontiguous=True).is_contiguous()
    cl = make_tensor(2, 3, 4, 5, dtype=tracenn.float32, device="cpu", memory_format=tracenn.channels_last,
                     requires_grad=True)
    assert cl.is_contiguous(memory_format=tracenn.channels_last) and cl.requires_grad and cl.is_leaf
    nz = make_tensor(400, dtype=tracenn.int64, device="cpu", low=0, high=2, exclude_zero=True)
    assert (np.asarray(nz._value) == 1).all()
    big = make_tensor(100, dtype=tracenn.float16, device="cpu", low=-1e10, high=1e10)   # clamped to finfo
    assert np.isfinite(_np(big)).all() and np.abs(_np(big)).max() > 1000


def test_make_tensor_errors():
    from tracenn.testing import make_tensor
    with pytest.raises(ValueError, match="`requires_grad=True` is not supported for boolean and integral dtypes"):
        make_tensor(2, dtype=tracenn.int64, device="cpu", requires_grad=True)
    with pytest.raises(ValueError, match="`low` must be less than `high`, but got 2 >= 1"):
        make_tensor(2, dtype=tracenn.float32, device="cpu", low=2, high=1)
    with pytest.raises(ValueError, match="`low` and `high` cannot be NaN"):
        make_tensor(2, dtype=tracenn.float32, device="cpu", low=float("nan"))
    with pytest.raises(ValueError, match="mutually exclusive"):
        make_tensor(2, 2, dtype=tracenn.float32, device="cpu", noncontiguous=True,
                    memory_format=tracenn.contiguous_format)
    with pytest.raises(ValueError, match=r"The value interval specified by `low` and `high` is \[300, 400\)"):
        make_tensor(2, dtype=tracenn.uint8, device="cpu", low=300, high=400)
    with pytest.warns(FutureWarning, match="Passing `low==high` to `torch.testing.make_tensor`"):
        x = make_tensor(2, dtype=tracenn.float32, device="cpu", low=3, high=3)
    np.testing.assert_array_equal(_np(x), [3.0, 3.0])


def test_make_tensor_matches_torch_checks():
    torch = pytest.importorskip("torch")
    from tracenn.testing import make_tensor
    for kw in (dict(low=2, high=1), dict(low=300, high=400)):
        with pytest.raises(ValueError) as theirs:
            torch.testing.make_tensor(2, dtype=torch.uint8, device="cpu", **kw)
        with pytest.raises(ValueError) as ours:
            make_tensor(2, dtype=tracenn.uint8, device="cpu", **kw)
        assert str(ours.value) == str(theirs.value).replace("torch.", "tracenn.")


def test_assert_allclose_deprecated():
    from tracenn.testing import assert_allclose
    with pytest.warns(FutureWarning, match=r"`torch.testing.assert_allclose\(\)` is deprecated since 1.12"):
        assert_allclose(tracenn.tensor([1.0, 2.0]), [1.00005, 2.0])        # within float32's rtol 1e-4
    with pytest.warns(FutureWarning), pytest.raises(AssertionError, match="Tensor-likes are not close"):
        assert_allclose(tracenn.tensor([1.0, 2.0]), [1.001, 2.0])
    with pytest.warns(FutureWarning):
        assert_allclose(tracenn.tensor([float("nan")]), [float("nan")])   # equal_nan=True by default
        assert_allclose(tracenn.tensor([1.0]), tracenn.tensor([1.0], dtype=tracenn.float64))  # dtype not checked
    with pytest.warns(FutureWarning), pytest.raises(AssertionError, match="custom"):
        assert_allclose(tracenn.tensor([1.0]), [2.0], msg="custom")


# ---- nn.utils.convert_conv{2,3}d_weight_memory_format -------------------------------------------------

def test_convert_conv_weight_memory_format():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.ConvTranspose2d(4, 2, 2)),
                        nn.Conv3d(2, 2, 1))
    x = tracenn.randn(2, 3, 6, 6)
    before = net[2][0](net[1](net[0](x)))
    w = net[0].weight
    out = nn.utils.convert_conv2d_weight_memory_format(net, tracenn.channels_last)
    assert out is net and net[0].weight is w                    # the same Parameter, its data converted
    assert net[0].weight.is_contiguous(memory_format=tracenn.channels_last) and not net[0].weight.is_contiguous()
    assert net[2][0].weight.is_contiguous(memory_format=tracenn.channels_last)   # nested, transposed
    assert net[3].weight.is_contiguous()                         # 3-d convs untouched
    assert net[1].running_mean.is_contiguous()
    after = net[2][0](net[1](net[0](x)))
    np.testing.assert_array_equal(_np(after), _np(before))      # values unchanged
    compiled = tracenn.compile(lambda v: net[2][0](net[1](net[0](v))))(x)
    np.testing.assert_allclose(_np(compiled), _np(before), rtol=1e-5, atol=1e-6)
    nn.utils.convert_conv3d_weight_memory_format(net, tracenn.channels_last_3d)
    assert net[3].weight.is_contiguous(memory_format=tracenn.channels_last_3d)
    nn.utils.convert_conv2d_weight_memory_format(net, tracenn.contiguous_format)
    assert net[0].weight.is_contiguous()
    with pytest.raises(RuntimeError, match="required rank 4 tensor to use channels_last format"):
        nn.utils.convert_conv3d_weight_memory_format(net, tracenn.channels_last)
    with pytest.raises(TypeError, match="memory_format"):
        nn.utils.convert_conv2d_weight_memory_format(net, "channels_last")


def test_convert_conv_weight_memory_format_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(2, 2))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(2, 2))
    nn.utils.convert_conv2d_weight_memory_format(ours, tracenn.channels_last)
    torch.nn.utils.convert_conv2d_weight_memory_format(theirs, torch.channels_last)
    assert ours[0].weight.stride() == theirs[0].weight.stride()
    assert ours[1].weight.stride() == theirs[1].weight.stride()


# ---- nn.init's deprecated aliases -----------------------------------------------------------------------

_INIT_CASES = [("uniform", (), {"a": -2.0, "b": 2.0}), ("normal", (), {"std": 0.5}), ("constant", (0.3,), {}),
               ("eye", (), {}), ("dirac", (), {}), ("xavier_uniform", (), {}), ("xavier_normal", (), {"gain": 2.0}),
               ("kaiming_uniform", (), {"a": 0.1}), ("kaiming_normal", (), {"mode": "fan_out"}),
               ("orthogonal", (), {}), ("sparse", (0.5,), {})]


@pytest.mark.parametrize("name,args,kwargs", _INIT_CASES)
def test_init_deprecated_alias(name, args, kwargs):
    shape = (4, 4, 3) if name == "dirac" else (6, 4)
    a, b = tracenn.empty(*shape), tracenn.empty(*shape)
    tracenn.manual_seed(3)
    with pytest.warns(FutureWarning, match=rf"`nn.init.{name}` is now deprecated in favor of `nn.init.{name}_`"):
        out = getattr(nn.init, name)(a, *args, **kwargs)
    tracenn.manual_seed(3)
    getattr(nn.init, name + "_")(b, *args, **kwargs)
    assert out is a and getattr(nn.init, name).__name__ == name and name in nn.init.__all__
    np.testing.assert_array_equal(_np(a), _np(b))               # the underscore version's values


def test_init_deprecated_alias_warns_as_torch():
    torch = pytest.importorskip("torch")
    with pytest.warns(FutureWarning) as theirs:
        torch.nn.init.xavier_uniform(torch.empty(3, 3))
    with pytest.warns(FutureWarning) as ours:
        nn.init.xavier_uniform(tracenn.empty(3, 3))
    assert str(ours[0].message) == str(theirs[0].message)
    assert ours[0].filename == __file__                         # stacklevel: the caller's line


# ---- utils.checkpoint: selective checkpointing and the other public names ------------------------------

def _sac_policy(ctx, op, *args, **kwargs):
    return CheckpointPolicy.MUST_SAVE if getattr(op, "name", None) == "matmul" else CheckpointPolicy.PREFER_RECOMPUTE


def _sac_block():
    tracenn.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(0.3), nn.Linear(8, 4))


@pytest.mark.parametrize("policy", ["fn", "list", "bools"])
def test_selective_checkpoint_gradients_equal_plain(policy):
    import functools
    from tracenn.ops import OPS
    from tracenn.utils import checkpoint as cp
    pol = {"fn": _sac_policy, "list": [OPS["matmul"]], "bools": lambda ctx, op, *a, **k: True}[policy]
    ctx_fn = functools.partial(cp.create_selective_checkpoint_contexts, pol)
    x = tracenn.randn(3, 4)
    grads = []
    for use_cp in (False, True):
        block = _sac_block()
        tracenn.manual_seed(1)
        y = cp.checkpoint(block, x, use_reentrant=False, context_fn=ctx_fn) if use_cp else block(x)
        y.square().sum().backward()
        grads.append([_np(p.grad) for p in block.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    block = _sac_block()                         # compiled training step with a selective checkpoint

    def step(v):
        loss = cp.checkpoint(block, v, use_reentrant=False, context_fn=ctx_fn).square().sum()
        loss.backward()
        return loss
    block.eval()
    eager = step(x)
    g_eager = [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    compiled = tracenn.compile(step)(x)
    np.testing.assert_allclose(compiled.item(), eager.item(), rtol=1e-6)
    for p, g in zip(block.parameters(), g_eager):
        np.testing.assert_allclose(_np(p.grad), _np(g), rtol=1e-5, atol=1e-6)


def test_selective_checkpoint_validation():
    from tracenn.utils import checkpoint as cp
    fwd, rec = cp.create_selective_checkpoint_contexts(_sac_policy)
    assert fwd.policy_fn is _sac_policy and not fwd.is_recompute and rec.is_recompute
    with fwd, rec:
        pass
    with pytest.raises(ValueError, match="Expected op in `op_list` to be an OpOverload but got: mm of type"):
        cp.create_selective_checkpoint_contexts(["mm"])
    with pytest.raises(TypeError, match="policy_fn_or_list must be either a function or a list of ops."):
        cp.create_selective_checkpoint_contexts(3)
    ctx_fn = lambda: cp.create_selective_checkpoint_contexts(_sac_policy)  # noqa: E731
    x = tracenn.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match="Passing `context_fn` or `debug` is only supported when use_reentrant=False"):
        cp.checkpoint(tracenn.sin, x, use_reentrant=True, context_fn=ctx_fn)
    with pytest.raises(ValueError, match="debug=True is incompatible with non-default context_fn"):
        cp.checkpoint(tracenn.sin, x, use_reentrant=False, context_fn=ctx_fn, debug=True)
    with cp.set_checkpoint_debug_enabled(True):
        with pytest.raises(ValueError, match="debug=True is incompatible"):
            cp.checkpoint(tracenn.sin, x, use_reentrant=False, context_fn=ctx_fn)
    with cp.set_checkpoint_debug_enabled(False):         # the global setting wins over the argument
        cp.checkpoint(tracenn.sin, x, use_reentrant=False, context_fn=ctx_fn, debug=True)
    with cp.set_checkpoint_early_stop(False):
        assert cp._EARLY_STOP[0] is False
        y = cp.checkpoint(tracenn.sin, x, use_reentrant=False)
    assert cp._EARLY_STOP[0] is True
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), np.cos(_np(x)), rtol=1e-6)
    c = cp.SelectiveCheckpointContext(is_recompute=False, op_output=1)
    assert (c.is_recompute, c.op_output) == (False, 1)
    assert issubclass(cp.CheckpointError, RuntimeError)
    assert [p.value for p in cp.CheckpointPolicy] == list(range(6))


def test_checkpoint_helpers():
    from tracenn.utils import checkpoint as cp
    a, b = tracenn.randn(2, requires_grad=True), tracenn.randn(2)
    da, db, n = cp.detach_variable((a * 2, b, 3))
    assert da.requires_grad and da.is_leaf and not db.requires_grad and n == 3
    with pytest.raises(RuntimeError, match="Only tuple of tensors is supported. Got Unsupported input type: list"):
        cp.detach_variable([a])
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True. Gradients will be None"):
        cp.check_backward_validity([b, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cp.check_backward_validity([a, b])
    assert cp.get_device_states(a, [b]) == ([], [])
    cp.set_device_states([], [])
    assert cp.DefaultDeviceType.get_device_type() in ("cpu", "cuda")
    prev = cp.DefaultDeviceType._default_device_type
    cp.DefaultDeviceType.set_device_type("meta")
    assert cp.DefaultDeviceType.get_device_type() == "meta"
    cp.set_device_states([0], [None])                   # meta: nothing to restore (torch's)
    cp.DefaultDeviceType._default_device_type = prev


def test_checkpoint_names_match_torch():
    torch = pytest.importorskip("torch")
    import inspect
    from tracenn.utils import checkpoint as cp
    for name in ("create_selective_checkpoint_contexts", "set_checkpoint_early_stop", "set_checkpoint_debug_enabled",
                 "detach_variable", "check_backward_validity", "get_device_states", "set_device_states"):
        ours, theirs = inspect.signature(getattr(cp, name)), inspect.signature(getattr(torch.utils.checkpoint, name))
        assert list(ours.parameters) == list(theirs.parameters), name
    assert [(p.name, p.value) for p in cp.CheckpointPolicy] == [(p.name, p.value)
                                                                 for p in torch.utils.checkpoint.CheckpointPolicy]
    with pytest.raises(TypeError) as theirs:
        torch.utils.checkpoint.create_selective_checkpoint_contexts(3)
    with pytest.raises(TypeError) as ours:
        cp.create_selective_checkpoint_contexts(3)
    assert str(ours.value) == str(theirs.value)


# ---- utils.swap_tensors --------------------------------------------------------------------------------

def test_swap_tensors_contents_and_identity():
    a = tracenn.tensor([1.0, 2.0])
    b = nn.Parameter(tracenn.ones(2, 3))
    b.grad = tracenn.full((2, 3), 5.0)
    b.note = "b's attribute"
    ida, idb = id(a), id(b)
    tracenn.utils.swap_tensors(a, b)
    assert id(a) == ida and id(b) == idb
    assert type(a) is nn.Parameter and type(b) is tracenn.Tensor
    assert a.shape == (2, 3) and a.requires_grad and a.is_leaf and a.note == "b's attribute"
    np.testing.assert_array_equal(_np(a.grad), np.full((2, 3), 5.0))
    np.testing.assert_array_equal(_np(b), [1.0, 2.0])
    assert not b.requires_grad and b.grad is None and not hasattr(b, "note")
    tracenn.utils.swap_tensors(a, a)                     # itself: nothing changes
    assert a.shape == (2, 3)


def test_swap_tensors_module_parameter_compiled_and_optimizer():
    m = nn.Linear(2, 2)
    opt = tracenn.optim.SGD(m.parameters(), lr=0.5)
    x = tracenn.randn(3, 2)
    fwd = tracenn.compile(m)
    fwd(x)                                              # compiled once with the old weight
    new = nn.Parameter(tracenn.eye(2))
    w = m.weight
    tracenn.utils.swap_tensors(m.weight, new)
    assert m.weight is w and m.weight in list(opt.param_groups[0]["params"])   # same object, new content
    want = _np(x) @ np.eye(2).T + _np(m.bias)
    np.testing.assert_allclose(_np(m(x)), want, rtol=1e-6)
    np.testing.assert_allclose(_np(fwd(x)), want, rtol=1e-6)   # the compiled call reads the new weight
    m(x).sum().backward()
    opt.step()
    np.testing.assert_allclose(_np(m.weight), np.eye(2) - 0.5 * _np(x).sum(0)[None, :].repeat(2, 0), rtol=1e-6)


def test_swap_tensors_poisons_the_old_graph():
    m = nn.Linear(2, 2)
    y = m(tracenn.randn(3, 2)).sum()
    tracenn.utils.swap_tensors(m.weight, nn.Parameter(tracenn.ones(2, 2)))
    with pytest.raises(RuntimeError, match="Trying to execute AccumulateGrad node that was poisoned by swap_tensors"):
        y.backward()
    m(tracenn.ones(1, 2)).sum().backward()              # a graph recorded after the swap works
    np.testing.assert_array_equal(_np(m.weight.grad), np.ones((2, 2)))
    h = tracenn.randn(2, requires_grad=True)            # a non-leaf swapped after use: its graph still runs
    mid = h * 3
    out = (mid * mid).sum()
    tracenn.utils.swap_tensors(mid, tracenn.zeros(5))
    out.backward()
    np.testing.assert_allclose(_np(h.grad), 18 * _np(h), rtol=1e-6)


def test_swap_tensors_errors():
    c = tracenn.randn(2, requires_grad=True)
    d = c * 2
    d.retain_grad()                                     # held by a weak reference: refused, as torch
    with pytest.raises(RuntimeError, match="Cannot swap t1 because it has weakref associated with it"):
        tracenn.utils.swap_tensors(d, tracenn.zeros(2))
    import weakref
    e = tracenn.zeros(2)
    ref = weakref.ref(e)  # noqa: F841
    with pytest.raises(RuntimeError, match="Cannot swap t2 because it has weakref associated with it"):
        tracenn.utils.swap_tensors(tracenn.zeros(2), e)
    with pytest.raises(TypeError, match="expected t2 to be a Tensor, got int"):
        tracenn.utils.swap_tensors(tracenn.zeros(2), 3)


def test_swap_tensors_matches_torch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (tracenn, torch):
        a, b = lib.tensor([1.0, 2.0]), lib.nn.Parameter(lib.ones(3))
        lib.utils.swap_tensors(a, b)
        results.append((type(a).__name__, tuple(a.shape), a.requires_grad, type(b).__name__,
                        b.detach().numpy().tolist()))
        m = lib.nn.Linear(2, 2)
        y = m(lib.ones(1, 2)).sum()
        lib.utils.swap_tensors(m.weight, lib.nn.Parameter(lib.ones(2, 2)))
        with pytest.raises(RuntimeError) as err:
            y.backward()
        results.append(str(err.value))
    assert results[0] == results[2] and results[1] == results[3]


# ---- jit: freeze, optimize_for_inference, script_if_tracing, isinstance, fork/wait, Attribute, Error -----

def test_jit_freeze_and_optimize_for_inference():
    m = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    with pytest.warns(DeprecationWarning, match=r"`torch.jit.freeze` is deprecated. Please use `torch.compile`"):
        with pytest.raises(RuntimeError, match="Freezing is currently only implemented for modules in eval mode"):
            tracenn.jit.freeze(m)
    with pytest.warns(DeprecationWarning, match="torch.jit.freeze"):
        assert tracenn.jit.freeze(m.eval()) is m
    m.train()
    with pytest.warns(DeprecationWarning, match="`torch.jit.optimize_for_inference` is deprecated"):
        out = tracenn.jit.optimize_for_inference(m)
    assert out is m and not m.training                  # eval mode: dropout off, deterministic
    x = tracenn.randn(2, 3)
    np.testing.assert_array_equal(_np(out(x)), _np(out(x)))
    np.testing.assert_allclose(_np(tracenn.compile(out)(x)), _np(out(x)), rtol=1e-6)


def test_jit_script_if_tracing_fork_wait_attribute_error():
    def add_one(x):
        """doc"""
        return x + 1
    g = tracenn.jit.script_if_tracing(add_one)
    assert g(1) == 2 and g.__name__ == "add_one" and g.__doc__ == "doc"
    with pytest.warns(DeprecationWarning, match="`torch.jit.fork` is deprecated"):
        fut = tracenn.jit.fork(lambda a, b=1: a + b, 2, b=3)
    assert fut.done() and fut.wait() == 5 and fut.value() == 5
    with pytest.warns(DeprecationWarning, match="`torch.jit.wait` is deprecated"):
        assert tracenn.jit.wait(fut) == 5
    assert fut.then(lambda f: f.value() * 2).wait() == 10
    with pytest.warns(DeprecationWarning):
        t = tracenn.jit.fork(tracenn.matmul, tracenn.eye(2), tracenn.ones(2, 2))
    np.testing.assert_array_equal(_np(t.wait()), np.ones((2, 2)))
    a = tracenn.jit.Attribute(0.1, float)
    assert a.value == 0.1 and a.type is float and a == (0.1, float)
    assert issubclass(tracenn.jit.Error, Exception)


_ISINSTANCE_CASES = [
    ([1, 2], "List[int]"), ([1, "a"], "List[int]"), ({"a": [1]}, "Dict[str, List[int]]"), ({1: 2}, "Dict[str, int]"),
    ((1, "a"), "Tuple[int, str]"), ((1,), "Tuple[int, str]"), (None, "Optional[int]"), (3, "Optional[int]"),
    ("s", "Optional[int]"), (3, "int"), (3.0, "(int, float)"), ([[1.0]], "List[List[float]]"), (3, "List[int]"),
    ([1, 2], "list[int]"), (2, "int | None"),
]


def _jit_type(spec):
    from typing import Dict, List, Optional, Tuple
    return eval(spec, {"Dict": Dict, "List": List, "Optional": Optional, "Tuple": Tuple})


@pytest.mark.parametrize("obj,spec", _ISINSTANCE_CASES)
def test_jit_isinstance_known(obj, spec):
    want = {"[1, 2]List[int]": True, "[1, 'a']List[int]": False, "{'a': [1]}Dict[str, List[int]]": True,
            "{1: 2}Dict[str, int]": False, "(1, 'a')Tuple[int, str]": True, "(1,)Tuple[int, str]": False,
            "NoneOptional[int]": True, "3Optional[int]": True, "'s'Optional[int]": False, "3int": True,
            "3.0(int, float)": True, "[[1.0]]List[List[float]]": True, "3List[int]": False,
            "[1, 2]list[int]": True, "2int | None": True}[repr(obj) + spec]
    assert tracenn.jit.isinstance(obj, _jit_type(spec)) is want


def test_jit_isinstance_errors_and_warning():
    from typing import Dict, List
    with pytest.raises(RuntimeError, match=r"Attempted to use List without a contained type. Please add a "
                                           r"contained type, e.g. List\[int\]"):
        tracenn.jit.isinstance([1], List)
    with pytest.raises(RuntimeError, match=r"Attempted to use dict without contained types. .*dict\[int, int\]"):
        tracenn.jit.isinstance({}, dict)
    with pytest.raises(RuntimeError, match="The second argument to `torch.jit.isinstance` must be a type or a tuple"):
        tracenn.jit.isinstance([1], [int])
    with pytest.warns(UserWarning, match="The inner type of a container is lost"):
        assert tracenn.jit.isinstance([], List[str])
    assert tracenn.jit.isinstance({"w": tracenn.ones(1)}, Dict[str, tracenn.Tensor])


def test_jit_isinstance_matches_torch():
    torch = pytest.importorskip("torch")
    for obj, spec in _ISINSTANCE_CASES:
        assert tracenn.jit.isinstance(obj, _jit_type(spec)) == torch.jit.isinstance(obj, _jit_type(spec))
    from typing import List
    for bad in (List, [int], dict):
        with pytest.raises(RuntimeError) as theirs:
            torch.jit.isinstance([1], bad)
        with pytest.raises(RuntimeError) as ours:
            tracenn.jit.isinstance([1], bad)
        assert str(ours.value) == str(theirs.value)


# ---- autograd.set_multithreading_enabled ---------------------------------------------------------------

def test_set_multithreading_enabled():
    from tracenn.autograd._multithreading import _is_multithreading_enabled
    assert _is_multithreading_enabled()
    with tracenn.autograd.set_multithreading_enabled(False):
        assert not _is_multithreading_enabled()
        x = tracenn.tensor([2.0], requires_grad=True)
        (x * x).sum().backward()                         # backward unchanged
        assert x.grad.item() == 4.0
    assert _is_multithreading_enabled()
    tracenn.autograd.set_multithreading_enabled(False)   # as a function: takes effect at once
    assert not _is_multithreading_enabled()
    tracenn.autograd.set_multithreading_enabled(True)

    @tracenn.autograd.set_multithreading_enabled(True)
    def inside():
        return _is_multithreading_enabled()
    tracenn.autograd.set_multithreading_enabled(False)
    assert inside() and not _is_multithreading_enabled()   # the decorator restores the caller's setting
    tracenn.autograd.set_multithreading_enabled(True)
    import threading
    seen = []
    with tracenn.autograd.set_multithreading_enabled(False):
        t = threading.Thread(target=lambda: seen.append(_is_multithreading_enabled()))
        t.start()
        t.join()
    assert seen == [True]                                # thread-local, as torch's


def test_set_multithreading_enabled_matches_torch():
    torch = pytest.importorskip("torch")
    import inspect
    assert list(inspect.signature(tracenn.autograd.set_multithreading_enabled).parameters) == \
        list(inspect.signature(torch.autograd.set_multithreading_enabled).parameters)
    with torch.autograd.set_multithreading_enabled(False) as theirs, \
            tracenn.autograd.set_multithreading_enabled(False) as ours:
        assert theirs is None and ours is None


# ---- every new name has torch's signature -------------------------------------------------------------

_NEW_NAMES = ["amp.custom_fwd", "amp.custom_bwd", "amp.is_autocast_available", "cuda.amp.custom_fwd",
              "cuda.amp.custom_bwd", "func.linearize", "func.functionalize", "testing.make_tensor",
              "testing.assert_allclose", "nn.utils.convert_conv2d_weight_memory_format",
              "nn.utils.convert_conv3d_weight_memory_format", "utils.checkpoint.SelectiveCheckpointContext",
              "utils.swap_tensors", "jit.freeze", "jit.optimize_for_inference", "jit.script_if_tracing",
              "jit.isinstance", "jit.fork", "jit.wait", "autograd.set_multithreading_enabled"]


@pytest.mark.parametrize("path", _NEW_NAMES)
def test_new_names_have_torchs_signature(path):
    torch = pytest.importorskip("torch")
    import functools
    import inspect

    def params(root):
        obj = functools.reduce(getattr, path.split("."), root)
        return [(n, p.kind, p.default if p.default is inspect.Parameter.empty else "-")
                for n, p in inspect.signature(obj).parameters.items()]
    assert params(tracenn) == params(torch)
