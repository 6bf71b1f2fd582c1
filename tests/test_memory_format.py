"""Memory formats (tracenn/_api/formats.py): ``tracenn.channels_last`` / ``channels_last_3d`` give
torch's strides, ``is_contiguous`` answers and view rules, never other values; modules convert with
``to(memory_format=...)`` and keep working eagerly, compiled and through state_dict/save."""
import io
import pickle

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import to_np

_X = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)


def _cl(lib, shape=(2, 3, 4, 5)):
    x = lib.tensor(np.arange(float(np.prod(shape)), dtype=np.float32).reshape(shape))
    return x.contiguous(memory_format=lib.channels_last)


# name -> (f(lib) -> plain Python values, torch 2.13's answer). The torch test checks each answer.
CASES = {
    "contiguous-cl": (lambda L: (_cl(L).stride(), _cl(L).is_contiguous(),
                                 _cl(L).is_contiguous(memory_format=L.channels_last)), ((60, 1, 15, 3), False, True)),
    "3d": (lambda L: (L.zeros(2, 3, 4, 5, 6).contiguous(memory_format=L.channels_last_3d).stride(),
                      L.empty(2, 3, 4, 5, 6, memory_format=L.channels_last_3d).is_contiguous(
                          memory_format=L.channels_last_3d)), ((360, 1, 90, 18, 3), True)),
    "size-1 channel: both": (lambda L: (L.zeros(2, 1, 4, 5).is_contiguous(),
                                        L.zeros(2, 1, 4, 5).is_contiguous(memory_format=L.channels_last),
                                        L.zeros(2, 1, 4, 5).contiguous(memory_format=L.channels_last).stride()),
                             (True, True, (20, 20, 5, 1))),
    "N-C-1-1": (lambda L: (L.zeros(2, 3, 1, 1).contiguous(memory_format=L.channels_last).stride(),
                           L.zeros(2, 3, 1, 1).to(memory_format=L.channels_last).stride()),
                ((3, 1, 1, 1), (3, 1, 3, 3))),
    "size 0 or 1 in the strides": (lambda L: (L.empty(2, 0, 4, 5, memory_format=L.channels_last).stride(),
                                              L.zeros(2, 1, 4, 5).clone(memory_format=L.channels_last).stride(),
                                              L.empty(1, 3, 1, 2, 1, memory_format=L.channels_last_3d).stride()),
                                   ((0, 1, 0, 0), (20, 1, 5, 1), (6, 1, 6, 3, 3))),
    "empty batch": (lambda L: (L.empty(0, 3, 4, 5, memory_format=L.channels_last).stride(),
                               L.empty(0, 3, 4, 5, memory_format=L.channels_last).is_contiguous(),
                               L.empty(0, 3, 4, 5).is_contiguous(memory_format=L.channels_last)),
                    ((60, 1, 15, 3), True, False)),
    "not 4-d asks false": (lambda L: L.zeros(3, 4, 5).is_contiguous(memory_format=L.channels_last), False),
    "preserve asks plain": (lambda L: (_cl(L).is_contiguous(memory_format=L.preserve_format),
                                       L.zeros(3, 4).is_contiguous(memory_format=L.preserve_format)), (False, True)),
    "permute": (lambda L: (_cl(L).permute(0, 2, 3, 1).stride(), _cl(L).permute(0, 2, 3, 1).is_contiguous()),
                ((60, 15, 3, 1), True)),
    "slices": (lambda L: (_cl(L)[:, 1:].stride(), _cl(L)[:, 1:].storage_offset(), _cl(L)[:, :, 1].stride(),
                          _cl(L)[0].stride(), _cl(L)[:, 2].storage_offset(), _cl(L)[..., 1].stride(),
                          _cl(L).narrow(1, 1, 2).stride(), _cl(L).chunk(3, 1)[1].storage_offset()),
               ((60, 1, 15, 3), 1, (60, 1, 3), (1, 15, 3), 2, (60, 1, 15), (60, 1, 15, 3), 1)),
    "views": (lambda L: (_cl(L).view(2, 3, 4, 5).stride(), _cl(L).view(2, 3, 20).stride(),
                         _cl(L).view(2, 3, 20).is_contiguous(), _cl(L).view(2, 3, 2, 2, 5).stride(),
                         _cl(L).unsqueeze(0).stride(), _cl(L).flatten(2).stride(), _cl(L).transpose(1, 3).stride(),
                         _cl(L).mT.stride(), _cl(L).diagonal(0, 2, 3).stride(), _cl(L).select(1, 0).stride()),
              ((60, 1, 15, 3), (60, 1, 3), False, (60, 1, 30, 15, 3), (120, 60, 1, 15, 3), (60, 1, 3),
               (60, 3, 15, 1), (60, 1, 3, 15), (60, 1, 18), (60, 15, 3))),
    "reshape copies": (lambda L: (_cl(L).reshape(-1).stride(), _cl(L).flatten(1).stride(),
                                  _cl(L).reshape(6, 20).stride()), ((1,), (60, 1), (20, 1))),
    "detach and data": (lambda L: (_cl(L).detach().stride(), _cl(L).data.stride()), ((60, 1, 15, 3), (60, 1, 15, 3))),
    "clone": (lambda L: (_cl(L).clone().stride(), _cl(L).clone(memory_format=L.contiguous_format).stride(),
                         _cl(L)[:, 1:].clone().stride(), _cl(L)[:, :, 1:].clone().stride(),
                         _cl(L).clone(memory_format=L.legacy_contiguous_format).stride(),
                         L.zeros(2, 3).t().clone().stride(),
                         L.zeros(1, 3, 1, 1).expand(2, 3, 4, 5).clone().stride()),
              ((60, 1, 15, 3), (60, 20, 5, 1), (40, 1, 10, 2), (45, 1, 15, 3), (60, 20, 5, 1), (1, 3),
               (60, 20, 5, 1))),
    "contiguous": (lambda L: (_cl(L).contiguous().stride(), _cl(L).contiguous().is_contiguous(),
                              _cl(L).contiguous(memory_format=L.legacy_contiguous_format).stride()),
                   ((60, 20, 5, 1), True, (60, 20, 5, 1))),
    "to": (lambda L: (_cl(L).to(L.float64).stride(), _cl(L).double().stride(), _cl(L).half().stride(),
                      _cl(L).to(memory_format=L.contiguous_format).stride(),
                      _cl(L)[:, :, 1:].to(memory_format=L.channels_last).stride(),
                      _cl(L).permute(0, 2, 3, 1).to(memory_format=L.contiguous_format).stride(),
                      L.zeros(2, 3, 4, 5).to(L.float64, memory_format=L.channels_last).stride(),
                      L.zeros(2, 3, 4, 5).float(memory_format=L.channels_last).stride(),
                      L.zeros(2, 3, 4, 5).cpu(memory_format=L.channels_last).stride(),
                      L.zeros(2, 3).t().double().stride()),
           ((60, 1, 15, 3), (60, 1, 15, 3), (60, 1, 15, 3), (60, 20, 5, 1), (60, 1, 15, 3), (60, 15, 3, 1),
            (60, 1, 15, 3), (60, 1, 15, 3), (60, 1, 15, 3), (1, 3))),
    "like": (lambda L: (L.zeros_like(_cl(L)).stride(), L.empty_like(_cl(L)).stride(), L.ones_like(_cl(L)).stride(),
                        L.full_like(_cl(L), 2.0).stride(), L.zeros_like(L.zeros(2, 3, 4, 5),
                                                                         memory_format=L.channels_last).stride(),
                        L.zeros_like(_cl(L)[:, :, 1:]).stride(), L.zeros_like(L.zeros(2, 3, 4, 5)[:, :, 1:]).stride(),
                        L.zeros_like(L.zeros(2, 3, 4, 5).permute(0, 2, 3, 1)).stride(),
                        L.zeros_like(L.zeros(1, 3, 1, 1).expand(2, 3, 4, 5)).stride(),
                        L.empty_like(L.zeros(2, 3).t(), memory_format=L.preserve_format).stride()),
             ((60, 1, 15, 3), (60, 1, 15, 3), (60, 1, 15, 3), (60, 1, 15, 3), (60, 1, 15, 3), (45, 1, 15, 3),
              (45, 15, 5, 1), (60, 5, 1, 20), (60, 20, 5, 1), (1, 3))),
    "new_zeros is contiguous": (lambda L: _cl(L).new_zeros(2, 3, 4, 5).stride(), (60, 20, 5, 1)),
    "in-place keeps strides": (lambda L: (_cl(L).add_(1).stride(), _cl(L).copy_(L.ones(2, 3, 4, 5)).stride(),
                                          _cl(L).unsqueeze_(0).stride(),
                                          _cl(L).unsqueeze_(0)[0, :, 1].storage_offset()),
                               ((60, 1, 15, 3), (60, 1, 15, 3), (120, 60, 1, 15, 3), 1)),
    "data_ptr": (lambda L: (lambda y: y[:, 1].data_ptr() - y.data_ptr())(_cl(L)), 4),  # one float32 on
}


@pytest.mark.parametrize("name", list(CASES))
def test_strides_and_contiguity(name):
    fn, want = CASES[name]
    assert fn(tracenn) == want


@pytest.mark.parametrize("name", list(CASES))
def test_the_table_is_torchs(name):
    torch = pytest.importorskip("torch")
    fn, want = CASES[name]
    assert fn(torch) == want


def test_ops_do_not_carry_the_format():
    """A documented difference: torch's elementwise results follow a channels_last input; tracenn's
    are contiguous (the values are the same)."""
    y = _cl(tracenn)
    assert (y + 1).stride() == (60, 20, 5, 1) and tracenn.relu(y).is_contiguous()
    np.testing.assert_array_equal(to_np(y + 1), to_np(y) + 1)


def test_constants_repr_pickle_and_type():
    assert repr(tracenn.channels_last) == "tracenn.channels_last"
    assert repr(tracenn.channels_last_3d) == "tracenn.channels_last_3d"
    for f in (tracenn.channels_last, tracenn.channels_last_3d, tracenn.contiguous_format):
        assert isinstance(f, tracenn.memory_format)
        assert pickle.loads(pickle.dumps(f)) is f
    assert tracenn.channels_last is not tracenn.channels_last_3d


# (call, message) for torch's errors
ERRORS = [
    (lambda L: L.zeros(3, 4, 5).contiguous(memory_format=L.channels_last),
     "required rank 4 tensor to use channels_last"),
    (lambda L: L.zeros(3, 4, 5).to(memory_format=L.channels_last), "required rank 4 tensor to use channels_last"),
    (lambda L: L.zeros(3, 4, 5).clone(memory_format=L.channels_last), "required rank 4 tensor to use channels_last"),
    (lambda L: L.zeros_like(L.zeros(3, 4), memory_format=L.channels_last), "required rank 4 tensor"),
    (lambda L: L.empty(3, 4, memory_format=L.channels_last), "required rank 4 tensor to use channels_last format"),
    (lambda L: L.zeros(2, 3, 4, 5).contiguous(memory_format=L.channels_last_3d),
     "required rank 5 tensor to use channels_last_3d format"),
    (lambda L: _cl(L).contiguous(memory_format=L.preserve_format),
     "preserve memory format is unsupported by the contiguous operator"),
    (lambda L: L.empty(2, 3, memory_format=L.preserve_format), "unsupported memory format Preserve"),
    (lambda L: _cl(L).view(2, -1), "view size is not compatible with input tensor's size and stride"),
    (lambda L: _cl(L).view(6, 4, 5), "view size is not compatible"),
    (lambda L: L.nn.Conv3d(2, 2, 1).to(memory_format=L.channels_last), "required rank 4 tensor to use channels_last"),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors(i):
    call, msg = ERRORS[i]
    with pytest.raises(RuntimeError, match=msg):
        call(tracenn)


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors_are_torchs(i):
    torch = pytest.importorskip("torch")
    call, msg = ERRORS[i]
    with pytest.raises(RuntimeError, match=msg):
        call(torch)


def test_a_memory_format_of_the_wrong_type():
    x = tracenn.zeros(2, 3, 4, 5)
    for call in (lambda: x.is_contiguous(memory_format=3), lambda: x.clone(memory_format="channels_last"),
                 lambda: x.to(memory_format="channels_last"), lambda: tracenn.empty(2, memory_format=1)):
        with pytest.raises(TypeError, match="must be tracenn.memory_format"):
            call()


def test_values_never_change_and_same_tensor_when_nothing_to_do():
    x = tracenn.tensor(_X)
    y = x.contiguous(memory_format=tracenn.channels_last)
    for t in (y, y.clone(), y.to(tracenn.float64), y.contiguous(), y.permute(0, 2, 3, 1).permute(0, 3, 1, 2),
              tracenn.empty_like(y).copy_(y)):
        np.testing.assert_array_equal(to_np(t).astype(np.float32), _X)
    assert y.contiguous(memory_format=tracenn.channels_last) is y
    assert y.to(memory_format=tracenn.channels_last) is y and y.to(tracenn.float32) is y and y.float() is y
    assert x.to(memory_format=tracenn.contiguous_format) is x and x.contiguous() is x
    assert x.contiguous(memory_format=tracenn.preserve_format) is x  # (torch asks is_contiguous first)
    assert y.contiguous() is not y and y.clone() is not y
    z = tracenn.zeros(2, 3, 1, 1)  # already both: contiguous() returns it, to() copies (torch's to_will_alias)
    assert z.contiguous(memory_format=tracenn.channels_last) is z and z.to(memory_format=tracenn.channels_last) is not z


def test_gradients_flow_through_format_changes():
    x = tracenn.tensor(_X, requires_grad=True)
    w = tracenn.tensor(np.linspace(0.5, 2.0, _X.size, dtype=np.float32).reshape(_X.shape))
    y = x.contiguous(memory_format=tracenn.channels_last)
    ((y.to(tracenn.float64).clone() * w).sum() + y.permute(0, 2, 3, 1).sum()).backward()
    np.testing.assert_allclose(to_np(x.grad), to_np(w) + 1, rtol=1e-6)
    leaf = tracenn.tensor(_X).contiguous(memory_format=tracenn.channels_last).requires_grad_()
    assert leaf.is_leaf and leaf.stride() == (60, 1, 15, 3)
    (leaf * 2).sum().backward()
    np.testing.assert_array_equal(to_np(leaf.grad), np.full(_X.shape, 2.0, np.float32))


def _net(lib):
    n = lib.nn
    return n.Sequential(n.Conv2d(3, 4, 3), n.BatchNorm2d(4), n.ReLU(), n.Flatten(), n.Linear(4 * 2 * 3, 5))


def test_module_to_channels_last_keeps_parameters_and_converts_4d_ones():
    tracenn.manual_seed(0)
    m = _net(tracenn)
    w, lw = m[0].weight, m[4].weight
    assert m.to(memory_format=tracenn.channels_last) is m
    assert m[0].weight is w and m[4].weight is lw and isinstance(w, nn.Parameter) and w.is_leaf
    assert w.stride() == (27, 1, 9, 3) and lw.stride() == (24, 1) and m[1].running_mean.stride() == (1,)
    assert m.state_dict()["0.weight"].stride() == (27, 1, 9, 3)
    m3 = nn.Conv3d(2, 2, 1).to(memory_format=tracenn.channels_last_3d)
    assert m3.weight.stride() == (2, 1, 2, 2, 2)


def test_state_dict_round_trips_and_load_keeps_each_side_s_strides():
    tracenn.manual_seed(0)
    m = _net(tracenn).to(memory_format=tracenn.channels_last)
    plain = _net(tracenn)
    plain.load_state_dict(m.state_dict())
    assert plain[0].weight.stride() == (27, 9, 3, 1)
    np.testing.assert_array_equal(to_np(plain[0].weight), to_np(m[0].weight))
    tracenn.manual_seed(1)
    m.load_state_dict(_net(tracenn).state_dict())
    assert m[0].weight.stride() == (27, 1, 9, 3)


def test_eager_and_compiled_agree_on_a_channels_last_model():
    tracenn.manual_seed(0)
    m = _net(tracenn).to(memory_format=tracenn.channels_last)
    x = tracenn.tensor(_X).to(memory_format=tracenn.channels_last)
    want = m(x)
    want.sum().backward()
    grads = {k: to_np(p.grad) for k, p in m.named_parameters()}
    m.zero_grad(set_to_none=True)
    cm = tracenn.compile(m)
    got = cm(x)
    np.testing.assert_allclose(to_np(got), to_np(want), rtol=1e-5, atol=1e-6)
    got.sum().backward()
    for k, p in m.named_parameters():
        np.testing.assert_allclose(to_np(p.grad), grads[k], rtol=1e-4, atol=1e-5, err_msg=k)
    assert m[0].weight.stride() == (27, 1, 9, 3)
    np.testing.assert_allclose(to_np(cm(tracenn.tensor(_X))), to_np(want), rtol=1e-5, atol=1e-6)


def test_channels_last_inputs_do_not_recompile():
    traces = []

    def f(x):
        traces.append(1)
        return (x * 2).sum(dim=(2, 3))
    cf = tracenn.compile(f)
    x = tracenn.tensor(_X)
    for i in range(4):
        t = x.to(memory_format=tracenn.channels_last) if i % 2 else x
        np.testing.assert_allclose(to_np(cf(t)), _X.sum((2, 3)) * 2, rtol=1e-5)
    assert len(traces) == 1


def test_compiled_views_of_a_channels_last_input_alias_it_as_eager_ones_do():
    def f(x):
        return x[:, 1], x.permute(0, 2, 3, 1), x.reshape(2, -1)
    x = tracenn.tensor(_X).contiguous(memory_format=tracenn.channels_last)
    eager = f(x)
    got = tracenn.compile(f)(x)
    for a, b in zip(got, eager):
        np.testing.assert_array_equal(to_np(a), to_np(b))
        assert a.stride() == b.stride()
        assert (a._base is x) == (b._base is x)
    got[0].add_(1.0)  # a view: writes reach x; the reshape was a copy in eager too
    np.testing.assert_array_equal(to_np(x[:, 1]), _X[:, 1] + 1)
    assert got[2]._base is None


def test_save_in_torch_format_loads_in_torch_with_the_same_values():
    torch = pytest.importorskip("torch")
    y = tracenn.tensor(_X).contiguous(memory_format=tracenn.channels_last)
    buf = io.BytesIO()
    tracenn.save({"y": y, "v": y[:, 1:]}, buf, format="torch")
    buf.seek(0)
    got = torch.load(buf, weights_only=True)
    np.testing.assert_array_equal(got["y"].numpy(), _X)
    np.testing.assert_array_equal(got["v"].numpy(), _X[:, 1:])


def test_save_and_load_in_tracenn_format():
    y = tracenn.tensor(_X).contiguous(memory_format=tracenn.channels_last)
    buf = io.BytesIO()
    tracenn.save({"y": y}, buf)
    buf.seek(0)
    np.testing.assert_array_equal(to_np(tracenn.load(buf)["y"]), _X)


def test_deepcopy_keeps_a_tensor_s_format():
    import copy
    y = tracenn.tensor(_X).contiguous(memory_format=tracenn.channels_last)
    c = copy.deepcopy(y)
    assert c is not y and c.stride() == (60, 1, 15, 3)
    np.testing.assert_array_equal(to_np(c), _X)


def test_optimizer_step_keeps_the_parameters_format():
    tracenn.manual_seed(0)
    m = _net(tracenn).to(memory_format=tracenn.channels_last)
    opt = tracenn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    before = to_np(m[0].weight).copy()
    m(tracenn.tensor(_X)).sum().backward()
    opt.step()
    assert m[0].weight.stride() == (27, 1, 9, 3)
    assert not np.array_equal(to_np(m[0].weight), before)


def test_as_strided_of_a_channels_last_tensor_reads_its_storage_order():
    # (values from torch 2.13: as_strided reads memory, which channels_last orders (N, H, W, C))
    a = np.arange(120.0, dtype=np.float32).reshape(2, 3, 4, 5)
    x = tracenn.tensor(a).contiguous(memory_format=tracenn.channels_last)
    assert x.as_strided((2, 3), (1, 2)).tolist() == [[0.0, 40.0, 21.0], [20.0, 1.0, 41.0]]
    assert x[:, 1].as_strided((2, 2), (3, 1)).tolist() == [[20.0, 40.0], [21.0, 41.0]]


def test_random_like_functions_take_memory_format():
    x = tracenn.zeros(2, 3, 4, 5).contiguous(memory_format=tracenn.channels_last)
    assert tracenn.randn_like(x).stride() == (60, 1, 15, 3)
    assert tracenn.randint_like(x, 5).stride() == (60, 1, 15, 3)
    assert tracenn.rand_like(x, memory_format=tracenn.contiguous_format).stride() == (60, 20, 5, 1)
    assert tracenn.randn_like(tracenn.zeros(3, 4).t()).stride() == (1, 4)
