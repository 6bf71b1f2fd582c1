"""torch-level names and Tensor methods added to close the namespace gap: in-place spellings,
``*_copy``, ``as_strided``, DLPack, ``frombuffer``, explicit strides, tensor questions,
``index_reduce``/``put``/``nonzero_static``/``constant_pad_nd``/``histogramdd``, host callbacks
and autocast's state functions. NumPy references first; torch comparisons where installed."""
import array
import warnings

import numpy as np
import pytest

import tracenn


def _np(t):
    return np.asarray(t.detach().numpy())


# ---- in-place spellings ----------------------------------------------------------------------

@pytest.mark.parametrize("name,ref", [("abs_", np.abs), ("sqrt_", np.sqrt), ("exp_", np.exp), ("tanh_", np.tanh),
                                      ("sigmoid_", lambda a: 1 / (1 + np.exp(-a))), ("neg_", np.negative),
                                      ("arcsinh_", np.arcsinh), ("trunc_", np.trunc), ("zero_", np.zeros_like)])
def test_toplevel_inplace_is_the_method(name, ref):
    a = np.array([0.25, 1.5, 2.0], np.float32)
    x = tracenn.tensor(a)
    out = getattr(tracenn, name)(x)
    assert out is x
    np.testing.assert_allclose(_np(x), ref(a), rtol=1e-6)


def test_toplevel_inplace_arguments_and_errors():
    x = tracenn.tensor([-1.0, 2.0, 5.0])
    assert tracenn.clamp_(x, min=0, max=3) is x and x.tolist() == [0.0, 2.0, 3.0]
    assert tracenn.fill_(x, 7.0).tolist() == [7.0] * 3
    with pytest.raises(TypeError, match=r"abs_\(\): argument 'input' \(position 1\) must be Tensor, not float"):
        tracenn.abs_(1.0)
    leaf = tracenn.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        tracenn.exp_(leaf)


def test_every_generated_toplevel_inplace_exists():
    from tracenn._api.inplace import TOPLEVEL
    for n in TOPLEVEL:
        assert callable(getattr(tracenn, n)) and getattr(tracenn, n).__name__ == n


@pytest.mark.parametrize("alias,target,arg", [("arccos_", "acos_", None), ("arctan_", "atan_", None),
                                              ("arctan2_", "atan2_", "t"), ("greater_", "gt_", 0.3),
                                              ("greater_equal_", "ge_", 0.3), ("less_", "lt_", 0.3),
                                              ("less_equal_", "le_", 0.5), ("not_equal_", "ne_", 0.5)])
def test_tensor_inplace_aliases(alias, target, arg):
    a, b = tracenn.tensor([0.1, 0.5, 0.9]), tracenn.tensor([0.1, 0.5, 0.9])
    args = () if arg is None else ((tracenn.tensor([0.5, 0.2, 1.0]),) if arg == "t" else (arg,))
    assert getattr(a, alias)(*args) is a
    getattr(b, target)(*args)
    assert a.dtype == tracenn.float32 and a.tolist() == b.tolist()


def test_inplace_alias_gradient_and_view_write_through():
    x = tracenn.tensor([0.2, 0.4], requires_grad=True)
    y = x * 1.0
    y.arcsin_()
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 1 / np.sqrt(1 - np.array([0.2, 0.4]) ** 2), rtol=1e-6)
    base = tracenn.zeros(2, 2)
    tracenn.fill_(base[0], 3.0)
    assert base.tolist() == [[3.0, 3.0], [0.0, 0.0]]


def test_conj_physical_inplace():
    z = tracenn.tensor([1 + 2j])
    assert tracenn.conj_physical_(z) is z and z.tolist() == [1 - 2j]
    r = tracenn.tensor([1.0])
    assert r.conj_physical_() is r and r.tolist() == [1.0]


# ---- *_copy ----------------------------------------------------------------------------------

COPIES = [
    ("view_copy", ((3, 2),), lambda a: a.reshape(3, 2)),
    ("permute_copy", ((1, 0),), lambda a: a.T),
    ("transpose_copy", (0, 1), lambda a: a.T),
    ("t_copy", (), lambda a: a.T),
    ("expand_copy", ((2, 2, 3),), lambda a: np.broadcast_to(a, (2, 2, 3))),
    ("unsqueeze_copy", (1,), lambda a: a[:, None]),
    ("select_copy", (1, 2), lambda a: a[:, 2]),
    ("slice_copy", (1, 0, None, 2), lambda a: a[:, ::2]),
    ("narrow_copy", (1, 1, 2), lambda a: a[:, 1:3]),
    ("diagonal_copy", (), lambda a: np.diagonal(a)),
    ("alias_copy", (), lambda a: a),
    ("unfold_copy", (1, 2, 1), lambda a: np.stack([a[:, 0:2], a[:, 1:3]], 1)),
]


@pytest.mark.parametrize("name,args,ref", COPIES, ids=[c[0] for c in COPIES])
def test_copy_functions_values_and_no_aliasing(name, args, ref):
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    x = tracenn.tensor(a)
    y = getattr(tracenn, name)(x, *args)
    np.testing.assert_array_equal(_np(y), ref(a))
    assert y._base is None and y.is_contiguous()
    y.add_(100.0)  # changing the copy leaves the input alone
    np.testing.assert_array_equal(_np(x), a)
    assert y.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("name,args", [(c[0], c[1]) for c in COPIES if c[0] != "alias_copy"])
def test_copy_functions_gradients_match_their_views(name, args):
    a = tracenn.arange(6.0).reshape(2, 3).requires_grad_()
    w = tracenn.randn(getattr(tracenn, name)(a, *args).shape)
    (getattr(tracenn, name)(a, *args) * w).sum().backward()
    ga = a.grad.clone()
    a.grad = None
    view = {"view_copy": a.reshape, "permute_copy": a.permute, "transpose_copy": a.transpose, "t_copy": a.t,
            "expand_copy": a.expand, "unsqueeze_copy": a.unsqueeze, "select_copy": a.select,
            "narrow_copy": a.narrow, "diagonal_copy": a.diagonal, "unfold_copy": a.unfold,
            "slice_copy": lambda d, s, e, st: a[:, s:e:st]}[name]
    (view(*args) * w).sum().backward()
    np.testing.assert_allclose(_np(ga), _np(a.grad))


def test_copy_split_family_and_unsafe_views():
    x = tracenn.arange(6.0).reshape(2, 3)
    for name in ("unbind_copy", "split_copy", "split_with_sizes_copy"):
        args = {"unbind_copy": (), "split_copy": (1,), "split_with_sizes_copy": ([1, 1],)}[name]
        parts = getattr(tracenn, name)(x, *args)
        assert isinstance(parts, tuple) and len(parts) == 2 and all(p._base is None for p in parts)
    parts = tracenn.unsafe_split(x, 1)
    assert isinstance(parts, tuple) and parts[0].data_ptr() == x.data_ptr()  # views, as torch's
    parts[1].fill_(0.0)
    assert x.tolist() == [[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]]
    assert [p.shape[1] for p in x.unsafe_split_with_sizes([1, 2], 1)] == [1, 2]
    assert len(tracenn.unsafe_chunk(x, 2, 1)) == 2 and len(tracenn.split_with_sizes(x, [1, 1])) == 2
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum exactly to 2"):
        tracenn.split_with_sizes(x, [1, 2])


def test_detach_copy_view_as_real_copy_and_view_copy_dtype():
    a = tracenn.ones(2, requires_grad=True)
    d = tracenn.detach_copy(a)
    assert not d.requires_grad and d._base is None
    z = tracenn.tensor([1 + 2j, 3 - 1j])
    r = tracenn.view_as_real_copy(z)
    assert r.tolist() == [[1.0, 2.0], [3.0, -1.0]] and r._base is None
    assert tracenn.view_as_complex_copy(r).tolist() == z.tolist()
    bits = tracenn.view_copy(tracenn.tensor([1.0]), tracenn.int32)
    assert bits.dtype == tracenn.int32 and bits.item() == 1065353216


def test_copy_functions_compile():
    def f(x):
        return tracenn.permute_copy(x, (1, 0)) * 2 + tracenn.select_copy(x, 0, 1)[:, None]

    x = tracenn.randn(3, 3)
    np.testing.assert_allclose(_np(tracenn.compile(f)(x)), _np(f(x)), rtol=1e-6)


# ---- as_strided ------------------------------------------------------------------------------

def test_as_strided_values_and_storage_offset():
    x = tracenn.arange(6.0)
    np.testing.assert_array_equal(_np(x.as_strided((3, 2), (1, 1))), [[0, 1], [1, 2], [2, 3]])
    np.testing.assert_array_equal(_np(x[2:].as_strided((2, 2), (1, 1))), [[2, 3], [3, 4]])  # the view's offset
    np.testing.assert_array_equal(_np(x.view(2, 3).t().as_strided((3,), (1,))), [0, 1, 2])  # the storage's order
    z = tracenn.arange(6.0).view(2, 3).clone()
    z.t_()  # (a root with its own layout: still read in storage order)
    np.testing.assert_array_equal(_np(z.as_strided((2,), (3,), 1)), [1, 4])
    np.testing.assert_array_equal(_np(tracenn.as_strided(x, (2,), (2,), 1)), [1, 3])
    with pytest.raises(RuntimeError, match="out of bounds for storage of size 24"):
        tracenn.as_strided(x, (10,), (1,))
    with pytest.raises(RuntimeError, match="Negative strides are not supported"):
        x.as_strided((2,), (-1,))


def test_as_strided_is_read_only_and_copy_is_writable():
    x = tracenn.arange(4.0)
    y = x.as_strided((2,), (2,))
    with pytest.raises(RuntimeError, match="as_strided result.*as_strided_scatter"):
        y.add_(1.0)
    with pytest.raises(RuntimeError, match="as_strided result"):
        y[0] = 5.0
    c = tracenn.as_strided_copy(x, (2,), (2,))
    c.add_(1.0)
    assert c.tolist() == [1.0, 3.0] and x.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(RuntimeError, match="as_strided_"):
        x.as_strided_((2,), (1,))


def test_as_strided_gradient_sums_overlaps():
    x = tracenn.arange(5.0, requires_grad=True)
    x.as_strided((3, 2), (1, 1)).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 2.0, 1.0, 0.0]
    b = tracenn.arange(6.0, requires_grad=True)
    b.view(2, 3).t().as_strided((2,), (4,)).sum().backward()  # reads the storage of b through a view
    assert b.grad.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_as_strided_scatter():
    x = tracenn.arange(6.0)
    out = tracenn.as_strided_scatter(x, tracenn.tensor([10.0, 20.0]), (2,), (2,), 1)
    assert out.tolist() == [0.0, 10.0, 2.0, 20.0, 4.0, 5.0] and x.tolist() == list(range(6))
    t = x.view(2, 3).t()
    np.testing.assert_array_equal(_np(t.as_strided_scatter(tracenn.tensor([10.0, 20.0]), (2,), (1,))),
                                  [[10, 3], [20, 4], [2, 5]])
    with pytest.raises(RuntimeError, match="src to have a size equal"):
        tracenn.as_strided_scatter(x, tracenn.ones(3), (2,), (1,))


def test_as_strided_compiles():
    def f(x):
        return x.as_strided((3, 2), (1, 1)).sum(1)

    x = tracenn.randn(4)
    np.testing.assert_allclose(_np(tracenn.compile(f)(x)), _np(f(x)), rtol=1e-6)


def test_empty_strided_and_permuted():
    t = tracenn.empty_strided((2, 3), (1, 2))
    assert t.shape == (2, 3) and t.stride() == (1, 2) and not t.is_contiguous()
    assert tracenn.empty_strided((2, 3), (3, 1)).is_contiguous()
    assert tracenn.empty_strided((2, 3), (0, 1), dtype=tracenn.int64).stride() == (0, 1)
    p = tracenn.empty_permuted((2, 3, 4), (0, 2, 1))
    assert p.shape == (2, 3, 4) and p.stride() == (12, 1, 3)
    assert tracenn.ones(2).new_empty_strided((2, 2), (1, 2)).stride() == (1, 2)
    with pytest.raises(RuntimeError, match="gaps between elements"):
        tracenn.empty_strided((2, 3), (4, 1))
    with pytest.raises(RuntimeError, match="physical_layout"):
        tracenn.empty_permuted((2, 3), (0, 0))


# ---- DLPack and buffers ----------------------------------------------------------------------

def test_dlpack_round_trips_with_numpy_and_jax():
    import jax
    import jax.numpy as jnp
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    t = tracenn.from_dlpack(a)
    assert t.dtype == tracenn.int32 and t.tolist() == a.tolist()
    a[0, 0] = 99  # a copy: later NumPy writes do not reach the tensor
    assert t[0, 0].item() == 0
    for _ in range(20):  # (JAX aliases some buffers, by their alignment: try several)
        b = np.arange(6, dtype=np.int32)
        t2 = tracenn.from_dlpack(b)
        b[0] = 99
        assert t2[0].item() == 0
    np.testing.assert_array_equal(np.from_dlpack(t), [[0, 1, 2], [3, 4, 5]])
    j = jnp.arange(4.0, dtype=jnp.float32)
    assert tracenn.from_dlpack(j).tolist() == [0.0, 1.0, 2.0, 3.0]
    back = jax.dlpack.from_dlpack(tracenn.tensor([1.0, 2.0]).t())
    assert back.tolist() == [1.0, 2.0]
    cap = tracenn.to_dlpack(tracenn.tensor([[1, 2]]))
    assert type(cap).__name__ == "PyCapsule"
    assert tracenn.from_dlpack(cap).tolist() == [[1, 2]]
    with pytest.raises(RuntimeError, match="consumed only once"):
        tracenn.from_dlpack(cap)
    import tracenn.utils.dlpack as dl
    assert dl.from_dlpack is tracenn.from_dlpack and dl.to_dlpack is tracenn.to_dlpack
    v = tracenn.arange(6.0).reshape(2, 3)[:, 1]  # a view exports its current values
    np.testing.assert_array_equal(np.from_dlpack(v), [1.0, 4.0])


def test_dlpack_errors():
    with pytest.raises(BufferError, match="require gradient"):
        tracenn.ones(1, requires_grad=True).__dlpack__()
    with pytest.raises(TypeError, match="__dlpack__"):
        tracenn.from_dlpack([1, 2])


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    assert tracenn.from_dlpack(torch.arange(3)).tolist() == [0, 1, 2]
    assert tracenn.from_dlpack(torch.utils.dlpack.to_dlpack(torch.ones(2))).tolist() == [1.0, 1.0]
    assert torch.from_dlpack(tracenn.arange(3.0)).tolist() == [0.0, 1.0, 2.0]


def test_frombuffer():
    b = bytearray(b"\x01\x00\x00\x00\x02\x00\x00\x00")
    assert tracenn.frombuffer(b, dtype=tracenn.int32).tolist() == [1, 2]
    assert tracenn.frombuffer(b, dtype=tracenn.int8, count=2, offset=4).tolist() == [2, 0]
    assert tracenn.frombuffer(array.array("d", [1.5, 2.5]), dtype=tracenn.float64).tolist() == [1.5, 2.5]
    with pytest.raises(ValueError, match="must not be 0"):
        tracenn.frombuffer(b"", dtype=tracenn.int32)
    with pytest.raises(ValueError, match="must not be greater than actual buffer length"):
        tracenn.frombuffer(b, dtype=tracenn.int32, count=3)
    with pytest.raises(TypeError, match="buffer protocol"):
        tracenn.frombuffer([1, 2], dtype=tracenn.int32)
    assert tracenn.frombuffer(b, dtype=tracenn.float32, requires_grad=True).requires_grad


# ---- questions about tensors -----------------------------------------------------------------

def test_predicates_and_names():
    x = tracenn.ones(2)
    assert not tracenn.is_conj(x) and not tracenn.is_neg(x) and not x.is_neg()
    assert tracenn.resolve_conj(x) is x and tracenn.resolve_neg(x) is x and x.resolve_neg() is x
    assert tracenn.is_signed(x) and not tracenn.is_signed(tracenn.zeros(1, dtype=tracenn.uint8))
    assert tracenn.get_device(x) == -1
    assert tracenn.typename(x) == "torch.FloatTensor" and tracenn.typename(1) == "int"
    assert tracenn.typename(np.ones(1)) == "numpy.ndarray"
    assert tracenn.typename(tracenn.nn.Linear(1, 1)) == "tracenn.nn.modules.linear.Linear"
    assert x.layout is tracenn.strided and repr(tracenn.strided) == "tracenn.strided"
    assert tracenn.ones(2, 3).t().dim_order() == (1, 0) and x.const_data_ptr() == x.data_ptr()
    for name in ("is_conj", "is_neg", "get_device", "is_inference", "resolve_conj"):
        with pytest.raises(TypeError, match=rf"{name}\(\): argument 'input' \(position 1\) must be Tensor"):
            getattr(tracenn, name)(1)


def test_is_inference():
    normal = tracenn.ones(2)
    with tracenn.inference_mode():
        made = tracenn.ones(2)
        view_of_normal = normal[0]
        normal.add_(1)
        computed = normal * 2
    assert made.is_inference() and tracenn.is_inference(computed) and made[0].is_inference()
    assert not normal.is_inference() and not view_of_normal.is_inference()
    assert not tracenn.ones(1).is_inference()


def test_warn_always_and_flush_denormal():
    assert tracenn.is_warn_always_enabled() is False
    tracenn.set_warn_always(True)
    try:
        assert tracenn.is_warn_always_enabled() is True
    finally:
        tracenn.set_warn_always(False)
    assert tracenn.set_flush_denormal(True) is True
    assert tracenn.set_flush_denormal(False) is False  # XLA:CPU always flushes: cannot turn it off
    assert (tracenn.tensor([1e-40]) * 1.5).item() == 0.0


def test_apply_and_map():
    assert tracenn.tensor([1, 2]).apply_(lambda v: v * 1.7).tolist() == [1, 3]
    y = tracenn.tensor([1.0, 2.0])
    assert y.map_(tracenn.tensor([10.0]), lambda a, b: a + b) is y and y.tolist() == [11.0, 12.0]
    ones, twos = tracenn.tensor([1.0, 1.0]), tracenn.tensor([2.0, 2.0])
    z = tracenn.tensor([1.0, 2.0]).map2_(ones, twos, lambda a, b, c: a + b * c)
    assert z.tolist() == [3.0, 4.0]
    base = tracenn.zeros(2, 2)
    base[0].apply_(lambda v: 5)
    assert base.tolist() == [[5.0, 5.0], [0.0, 0.0]]
    with pytest.raises(RuntimeError, match=r"Can't call apply_\(\) on Variable that requires grad"):
        tracenn.ones(1, requires_grad=True).apply_(lambda v: v)
    with pytest.raises(RuntimeError, match="Python function on each value|reading a Tensor.s value"):
        tracenn.func.vmap(lambda t: t.clone().apply_(lambda v: v))(tracenn.ones(2, 2))


# ---- indexed ops -----------------------------------------------------------------------------

def _index_reduce_np(x, idx, src, reduce, include_self):
    out = x.copy()
    rows = {}
    for i, j in enumerate(idx):
        rows.setdefault(j, []).append(src[i])
    for j, vals in rows.items():
        vals = np.stack(vals + ([x[j]] if include_self else []))
        out[j] = {"prod": np.prod, "amax": np.max, "amin": np.min, "mean": np.mean}[reduce](vals, 0)
    return out


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_against_numpy(reduce, include_self):
    rng = np.random.default_rng(0)
    x, src = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
    idx = np.array([0, 2, 0, 3, 2])
    got = tracenn.index_reduce(tracenn.tensor(x), 0, tracenn.tensor(idx), tracenn.tensor(src), reduce,
                               include_self=include_self)
    np.testing.assert_allclose(_np(got), _index_reduce_np(x, idx, src, reduce, include_self), rtol=1e-5)
    t = tracenn.tensor(x)
    assert t.index_reduce_(0, tracenn.tensor(idx), tracenn.tensor(src), reduce, include_self=include_self) is t
    np.testing.assert_allclose(_np(t), _np(got))
    # along dim 1
    got1 = tracenn.tensor(x.T).index_reduce(1, tracenn.tensor(idx), tracenn.tensor(src.T), reduce,
                                            include_self=include_self)
    np.testing.assert_allclose(_np(got1), _index_reduce_np(x, idx, src, reduce, include_self).T, rtol=1e-5)


def test_index_reduce_gradient_and_errors():
    x = tracenn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    s = tracenn.tensor([4.0, 5.0], requires_grad=True)
    tracenn.index_reduce(x, 0, tracenn.tensor([0, 0]), s, "prod").sum().backward()
    assert x.grad.tolist() == [20.0, 1.0, 1.0] and s.grad.tolist() == [5.0, 4.0]
    with pytest.raises(RuntimeError, match="Expected reduce to be one of prod, mean, amax or amin but got sum"):
        x.index_reduce(0, tracenn.tensor([0]), s[:1], "sum")
    with pytest.raises(RuntimeError, match="same scalar type"):
        tracenn.ones(2).index_reduce(0, tracenn.tensor([0]), tracenn.ones(1, dtype=tracenn.float64), "amax")


def test_put():
    t = tracenn.zeros(2, 3)
    assert t.put(tracenn.tensor([0, 5, 0]), tracenn.tensor([1.0, 2.0, 3.0]), accumulate=True).tolist() == \
        [[4.0, 0.0, 0.0], [0.0, 0.0, 2.0]]
    assert tracenn.put(t, tracenn.tensor([-1]), tracenn.tensor([9.0])).tolist() == [[0.0] * 3, [0.0, 0.0, 9.0]]
    assert t.put_(tracenn.tensor([[1], [2]]), tracenn.tensor([7.0, 8.0])) is t
    assert t.tolist() == [[0.0, 7.0, 8.0], [0.0] * 3]
    with pytest.raises(IndexError, match="tried to access index 6 on a tensor of 6 elements"):
        t.put(tracenn.tensor([6]), tracenn.tensor([1.0]))
    x = tracenn.ones(4, requires_grad=True)
    v = tracenn.tensor([2.0, 3.0], requires_grad=True)
    (x.put(tracenn.tensor([1, 3]), v) * tracenn.arange(4.0)).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 2.0, 0.0] and v.grad.tolist() == [1.0, 3.0]


def test_nonzero_static_eager_and_compiled():
    a = tracenn.tensor([[0, 1], [1, 0]])
    assert tracenn.nonzero_static(a, size=3).tolist() == [[0, 1], [1, 0], [-1, -1]]
    assert tracenn.nonzero_static(tracenn.tensor([0, 1, 1, 1]), size=2, fill_value=-5).tolist() == [[1], [2]]
    assert a.nonzero_static(size=0).shape == (0, 2)
    assert tracenn.nonzero_static(tracenn.tensor(5), size=2).shape == (2, 0)
    assert tracenn.nonzero_static(tracenn.tensor([True, False, True]), size=3).tolist() == [[0], [2], [-1]]
    rng = np.random.default_rng(1)
    m = (rng.random((3, 4, 5)) > 0.6).astype(np.float32)
    want = np.argwhere(m)
    got = tracenn.nonzero_static(tracenn.tensor(m), size=len(want) + 2)
    np.testing.assert_array_equal(_np(got)[:len(want)], want)
    assert (_np(got)[len(want):] == -1).all()
    f = tracenn.compile(lambda x: tracenn.nonzero_static(x, size=4))
    np.testing.assert_array_equal(_np(f(tracenn.tensor(m))), _np(tracenn.nonzero_static(tracenn.tensor(m), size=4)))


def test_constant_pad_nd():
    x = tracenn.ones(2, 2, requires_grad=True)
    y = tracenn.constant_pad_nd(x, (1, 0, 0, 1), 7.0)
    np.testing.assert_array_equal(_np(y), np.pad(np.ones((2, 2)), ((0, 1), (1, 0)), constant_values=7))
    (y * tracenn.arange(9.0).reshape(3, 3)).sum().backward()
    assert x.grad.tolist() == [[1.0, 2.0], [4.0, 5.0]]
    assert tracenn.constant_pad_nd(tracenn.ones(2, 2), (-1, 1)).tolist() == [[1.0, 0.0], [1.0, 0.0]]
    with pytest.raises(RuntimeError, match="Length of pad must be even"):
        tracenn.constant_pad_nd(x, (1, 2, 3))
    with pytest.raises(RuntimeError, match="no more than twice"):
        tracenn.constant_pad_nd(tracenn.ones(2), (1, 1, 1, 1))


def test_histogramdd_against_numpy():
    rng = np.random.default_rng(2)
    pts = rng.standard_normal((50, 2)).astype(np.float64)
    w = rng.random(50)
    h, edges = tracenn.histogramdd(tracenn.tensor(pts), bins=[3, 4], weight=tracenn.tensor(w))
    nh, nedges = np.histogramdd(pts, bins=[3, 4], weights=w)
    np.testing.assert_allclose(_np(h), nh, rtol=1e-12)
    for e, ne in zip(edges, nedges):
        np.testing.assert_allclose(_np(e), ne, rtol=1e-12)
    dh, _ = tracenn.histogramdd(tracenn.tensor(pts), bins=3, range=[-1.0, 1.0, -2.0, 2.0], density=True)
    ndh, _ = np.histogramdd(pts, bins=3, range=[(-1, 1), (-2, 2)], density=True)
    np.testing.assert_allclose(_np(dh), ndh, rtol=1e-12)
    r = tracenn.histogramdd(tracenn.tensor([[0.0, 1.0], [1.0, 0.0]]),
                            bins=[tracenn.tensor([0.0, 1.0, 2.0]), tracenn.tensor([0.0, 0.5, 1.0])])
    assert r.hist.tolist() == [[0.0, 1.0], [1.0, 0.0]] and isinstance(r.bin_edges, tuple)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        tracenn.histogramdd(tracenn.ones(3), bins=2)


def test_against_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    T, X = torch.tensor(a), tracenn.tensor(a)
    for name, args in [("permute_copy", ((1, 0),)), ("slice_copy", (1, 1, 3)), ("diagonal_copy", (1,)),
                       ("expand_copy", ((2, 3, 4),)), ("narrow_copy", (0, 1, 2))]:
        np.testing.assert_array_equal(getattr(tracenn, name)(X, *args).numpy(), getattr(torch, name)(T, *args).numpy())
    np.testing.assert_array_equal(X.as_strided((2, 2), (1, 3), 2).numpy(), T.as_strided((2, 2), (1, 3), 2).numpy())
    np.testing.assert_array_equal(tracenn.as_strided_scatter(X, tracenn.ones(2), (2,), (5,), 1).numpy(),
                                  torch.as_strided_scatter(T, torch.ones(2), (2,), (5,), 1).numpy())
    pts = np.random.default_rng(4).random((20, 3))
    th = torch.histogramdd(torch.tensor(pts), bins=[2, 3, 2])
    h = tracenn.histogramdd(tracenn.tensor(pts), bins=[2, 3, 2])
    np.testing.assert_array_equal(h.hist.numpy(), th.hist.numpy())
    idx = torch.tensor([0, 2, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = T.index_reduce(0, idx, T[:3] * 2, "mean", include_self=True)
    got = X.index_reduce(0, tracenn.tensor([0, 2, 0]), X[:3] * 2, "mean", include_self=True)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    e = torch.empty_strided((2, 3, 4), (1, 8, 2))
    assert tracenn.empty_strided((2, 3, 4), (1, 8, 2)).stride() == e.stride()


# ---- autocast's state functions --------------------------------------------------------------

def test_autocast_queries_follow_regions():
    assert not tracenn.is_autocast_enabled("cpu")
    with tracenn.autocast("cpu", dtype=tracenn.float16):
        assert tracenn.is_autocast_enabled("cpu") and not tracenn.is_autocast_enabled("cuda")
        assert tracenn.get_autocast_dtype("cpu") == tracenn.float16
        assert tracenn.get_autocast_dtype("cuda") == tracenn.float16
    assert tracenn.get_autocast_dtype("cpu") == tracenn.bfloat16 and not tracenn.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        tracenn.get_autocast_dtype("foo")


def test_set_autocast_enabled_and_dtype_drive_the_casts():
    a, b = tracenn.randn(2, 2), tracenn.randn(2, 2)
    tracenn.set_autocast_enabled("cpu", True)
    try:
        assert tracenn.is_autocast_enabled("cpu") and (a @ b).dtype == tracenn.bfloat16
        tracenn.set_autocast_dtype("cpu", tracenn.float16)
        assert (a @ b).dtype == tracenn.float16
        f = tracenn.compile(lambda x, y: x @ y)
        assert f(a, b).dtype == tracenn.float16
    finally:
        tracenn.set_autocast_dtype("cpu", tracenn.bfloat16)
        tracenn.set_autocast_enabled("cpu", False)
    assert (a @ b).dtype == tracenn.float32 and not tracenn.is_autocast_enabled()
    with tracenn.autocast("cpu"):  # a region's default dtype is the one set for the device
        assert (a @ b).dtype == tracenn.bfloat16
    with pytest.raises(RuntimeError, match="floating dtype"):
        tracenn.set_autocast_dtype("cpu", tracenn.int32)


def test_autocast_deprecated_spellings_warn():
    with pytest.warns(DeprecationWarning, match=r"get_autocast_cpu_dtype\(\) is deprecated"):
        assert tracenn.get_autocast_cpu_dtype() == tracenn.bfloat16
    with pytest.warns(DeprecationWarning):
        assert tracenn.get_autocast_gpu_dtype() == tracenn.float16
    with pytest.warns(DeprecationWarning):
        assert tracenn.is_autocast_cpu_enabled() is False
    with pytest.warns(DeprecationWarning):
        tracenn.set_autocast_cpu_dtype(tracenn.float16)
    try:
        assert tracenn.get_autocast_dtype("cpu") == tracenn.float16
    finally:
        tracenn.set_autocast_dtype("cpu", tracenn.bfloat16)
    assert tracenn.is_autocast_cache_enabled() and tracenn.clear_autocast_cache() is None
    assert tracenn.autocast_increment_nesting() == 1 and tracenn.autocast_decrement_nesting() == 0


def test_indexed_ops_compile_like_eager():
    idx = tracenn.tensor([0, 2, 0])

    def f(x, s):
        a = x.index_reduce(0, idx, s, "amax", include_self=False)
        b = x.put(tracenn.tensor([1, -1]), s[0, :2], accumulate=True)
        c = tracenn.constant_pad_nd(x, (1, 1), -1.0)
        h = tracenn.histogramdd(x.reshape(-1, 2), bins=2, range=[-3.0, 3.0, -3.0, 3.0]).hist
        return a, b, c, h

    x, s = tracenn.randn(3, 2), tracenn.randn(3, 2)
    for got, want in zip(tracenn.compile(f)(x, s), f(x, s)):
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6)


def test_index_reduce_amax_mean_gradients_match_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float64)
    s = np.random.default_rng(6).standard_normal((3, 3)).astype(np.float64)
    for reduce in ("amax", "mean"):
        X, S = tracenn.tensor(a, requires_grad=True), tracenn.tensor(s, requires_grad=True)
        TX, TS = torch.tensor(a, requires_grad=True), torch.tensor(s, requires_grad=True)
        w = np.arange(12.0).reshape(4, 3)
        (X.index_reduce(0, tracenn.tensor([1, 3, 1]), S, reduce) * tracenn.tensor(w)).sum().backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (TX.index_reduce(0, torch.tensor([1, 3, 1]), TS, reduce) * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(_np(X.grad), TX.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(_np(S.grad), TS.grad.numpy(), rtol=1e-12)


def test_random_fills_distributions_and_errors():
    tracenn.manual_seed(0)
    n = 200_000
    g = tracenn.zeros(n).geometric_(0.3)
    assert g.min().item() >= 1 and abs(g.mean().item() - 1 / 0.3) < 0.05
    gi = tracenn.zeros(10, dtype=tracenn.int64).geometric_(0.5)
    assert gi.dtype == tracenn.int64 and gi.min().item() >= 1
    ln = tracenn.zeros(n, dtype=tracenn.float64).log_normal_(1.0, 0.5)
    assert abs(ln.log().mean().item() - 1.0) < 0.01 and abs(ln.log().std().item() - 0.5) < 0.01
    c = tracenn.zeros(n).cauchy_(2.0, 3.0)
    assert abs(c.median().item() - 2.0) < 0.1  # quartiles of Cauchy(2, 3): 2 -+ 3
    q = np.quantile(_np(c), [0.25, 0.75])
    np.testing.assert_allclose(q, [-1.0, 5.0], atol=0.15)
    gen = tracenn.Generator().manual_seed(7)
    a = tracenn.zeros(4).cauchy_(generator=gen)
    b = tracenn.zeros(4).cauchy_(generator=tracenn.Generator().manual_seed(7))
    assert a.tolist() == b.tolist()
    with pytest.raises(RuntimeError, match=r"geometric_ expects p to be in \(0, 1\), but got p=1.5"):
        tracenn.zeros(2).geometric_(1.5)
    with pytest.raises(RuntimeError, match="log_normal_ expects std > 0.0"):
        tracenn.zeros(2).log_normal_(1.0, 0.0)
    with pytest.raises(RuntimeError, match="cauchy_ expects sigma > 0.0"):
        tracenn.zeros(2).cauchy_(0.0, -1.0)
    with pytest.raises(RuntimeError, match="dtype must be a floating point"):
        tracenn.zeros(2, dtype=tracenn.int64).cauchy_()


def test_range_newaxis_and_return_types():
    with pytest.warns(UserWarning, match="torch.range is deprecated"):
        r = tracenn.range(0, 1, 0.25)
    assert r.dtype == tracenn.float32 and r.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.warns(UserWarning):
        assert tracenn.range(1, 3, dtype=tracenn.int64).tolist() == [1, 2, 3]
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent"):
        tracenn.range(3, 1)
    assert tracenn.newaxis is None and tracenn.ones(2)[tracenn.newaxis].shape == (1, 2)
    out = tracenn.ones(2, 3).max(1)
    assert isinstance(out, tracenn.return_types.max) and type(out).__module__ == "tracenn.return_types"
    import tracenn.return_types as rt
    assert rt.histogramdd is type(tracenn.histogramdd(tracenn.ones(2, 2), bins=1))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        rt.nope


def test_from_file(tmp_path):
    p = tmp_path / "data.bin"
    np.arange(4, dtype=np.float32).tofile(p)
    assert tracenn.from_file(str(p), size=4, dtype=tracenn.float32).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert tracenn.from_file(str(p), size=2).tolist() == [0.0, 1.0] and tracenn.from_file(str(p)).shape == (0,)
    with pytest.raises(RuntimeError, match="size <16> is smaller than the required mapping size <32>"):
        tracenn.from_file(str(p), size=8)
    with pytest.raises(RuntimeError, match="shared=True"):
        tracenn.from_file(str(p), shared=True, size=1)


def test_set_default_tensor_type():
    try:
        with pytest.warns(UserWarning, match="set_default_tensor_type\\(\\) is deprecated"):
            tracenn.set_default_tensor_type("torch.DoubleTensor")
        assert tracenn.get_default_dtype() == tracenn.float64 and tracenn.ones(1).dtype == tracenn.float64
        with pytest.warns(UserWarning):
            tracenn.set_default_tensor_type(tracenn.FloatTensor)
        assert tracenn.get_default_dtype() == tracenn.float32
        with pytest.warns(UserWarning), pytest.raises(TypeError, match="only floating-point types"):
            tracenn.set_default_tensor_type(tracenn.LongTensor)
    finally:
        tracenn.set_default_dtype(tracenn.float32)


def test_small_tensor_attributes():
    x = tracenn.ones(2, 3)
    assert x.is_set_to(x) and x.is_set_to(x.view(2, 3)) and not x.is_set_to(x[:1]) and not x.is_set_to(x.clone())
    assert not x.is_shared() and not x.is_xla and not x.is_meta and x.output_nr == 0
    assert x.record_stream(None) is None and x.to_dense() is x
    v, i = tracenn.randn(3, requires_grad=True).sort()
    assert (v.output_nr, i.output_nr) == (0, 1)
    with pytest.raises(TypeError, match="complex32.*complex64"):
        x.chalf()


def test_segment_reduce_against_numpy_gradient_and_compiled():
    d = np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32)
    lengths = tracenn.tensor([2, 0, 3])
    want = {"sum": [3.0, 0.0, 12.0], "mean": [1.5, np.nan, 4.0], "max": [2.0, -np.inf, 5.0],
            "min": [1.0, np.inf, 3.0], "prod": [2.0, 1.0, 60.0]}
    for reduce, ref in want.items():
        np.testing.assert_array_equal(_np(tracenn.segment_reduce(tracenn.tensor(d), reduce, lengths=lengths)), ref)
    np.testing.assert_allclose(_np(tracenn.segment_reduce(tracenn.tensor(d), "mean", lengths=lengths, initial=10.0)),
                               [6.5, 10.0, 22.0 / 3], rtol=1e-6)  # (torch's: (initial + sum) / count)
    d2 = np.arange(10.0).reshape(2, 5)
    got = tracenn.segment_reduce(tracenn.tensor(d2), "max", offsets=tracenn.tensor([0, 2, 2, 5]), axis=1)
    np.testing.assert_array_equal(_np(got), [[1.0, -np.inf, 4.0], [6.0, -np.inf, 9.0]])
    x = tracenn.tensor(d, requires_grad=True)
    tracenn.segment_reduce(x, "sum", lengths=lengths).mul(tracenn.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 3.0, 3.0, 3.0]
    f = tracenn.compile(lambda t: tracenn.segment_reduce(t, "sum", lengths=tracenn.tensor([2, 0, 3])))
    np.testing.assert_array_equal(_np(f(tracenn.tensor(d))), want["sum"])
    g = tracenn.compile(lambda t, n: tracenn.segment_reduce(t, "sum", lengths=n))
    # lengths from an input: the output's length is theirs; each entry's segment is computed in the program
    np.testing.assert_array_equal(_np(g(tracenn.tensor(d), lengths)), want["sum"])
    with pytest.raises(RuntimeError, match="sum to data.size"):
        tracenn.segment_reduce(tracenn.tensor(d), "sum", lengths=tracenn.tensor([2, 2]))
    with pytest.raises(RuntimeError, match="got foo"):
        tracenn.segment_reduce(tracenn.tensor(d), "foo", lengths=lengths)


def test_segment_reduce_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    d = rng.standard_normal((7, 3)).astype(np.float32)
    L = [3, 0, 4]
    for reduce in ("sum", "mean", "max", "min", "prod"):
        for initial in (None, 0.5):
            want = torch.segment_reduce(torch.tensor(d), reduce, lengths=torch.tensor(L), initial=initial)
            got = tracenn.segment_reduce(tracenn.tensor(d), reduce, lengths=tracenn.tensor(L), initial=initial)
            np.testing.assert_allclose(_np(got), want.numpy(), rtol=1e-5)


def test_as_strided_scatter_gradients_and_compiled():
    x = tracenn.arange(6.0, requires_grad=True)
    s = tracenn.tensor([10.0, 20.0], requires_grad=True)
    w = tracenn.arange(1.0, 7.0)
    (tracenn.as_strided_scatter(x, s, (2,), (2,), 1) * w).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 3.0, 0.0, 5.0, 6.0] and s.grad.tolist() == [2.0, 4.0]
    f = tracenn.compile(lambda a, b: tracenn.as_strided_scatter(a, b, (2, 2), (3, 1)) * 2)
    a, b = tracenn.randn(2, 3), tracenn.randn(2, 2)
    np.testing.assert_allclose(_np(f(a, b)), _np(tracenn.as_strided_scatter(a, b, (2, 2), (3, 1)) * 2))
