"""default_collate / default_convert: each element structure, checked against torch's own."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import tracenn
from tracenn.utils.data import collate, default_collate, default_collate_fn_map, default_convert

Point = collections.namedtuple("Point", ["x", "y"])


def _t(lib, v, **kw):
    return lib.tensor(v, **kw)


# Each case builds a batch with the library it is given (tracenn or torch).
CASES = {
    "tensors": lambda lib: [_t(lib, [1.0, 2.0]), _t(lib, [3.0, 4.0])],
    "int_tensors_0d": lambda lib: [_t(lib, 1), _t(lib, 2)],
    "ints": lambda lib: [1, 2, 3],
    "bools": lambda lib: [True, False],
    "floats": lambda lib: [0.5, 1.5],
    "strings": lambda lib: ["a", "b"],
    "bytes": lambda lib: [b"a", b"b"],
    "tuples": lambda lib: [(_t(lib, [1.0]), 0, "a"), (_t(lib, [2.0]), 1, "b")],
    "lists": lambda lib: [[1, 2.5], [3, 4.5]],
    "dicts": lambda lib: [{"x": _t(lib, [1, 2]), "y": 0.5}, {"x": _t(lib, [3, 4]), "y": 1.5}],
    "ordered_dicts": lambda lib: [collections.OrderedDict(b=1, a=2), collections.OrderedDict(b=3, a=4)],
    "namedtuples": lambda lib: [Point(1, 2.0), Point(3, 4.0)],
    "nested": lambda lib: [{"p": (Point(_t(lib, [1]), [0.5]), "s")}, {"p": (Point(_t(lib, [2]), [1.5]), "t")}],
    "numpy_arrays": lambda lib: [np.array([1, 2], dtype=np.int32), np.array([3, 4], dtype=np.int32)],
    "numpy_0d": lambda lib: [np.array(1.5), np.array(2.5)],
    "numpy_f32_images": lambda lib: [np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32)],
    "numpy_scalars": lambda lib: [np.float32(1), np.float32(2)],
    "numpy_mixed_scalars": lambda lib: [np.int32(1), np.float32(2.5)],
    "numpy_uint8_scalars": lambda lib: [np.uint8(1), np.uint8(200)],
    "numpy_float64_scalars": lambda lib: [np.float64(1), np.float64(2)],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_collate_matches_torch(case, torch, to_plain):
    from torch.utils.data import default_collate as torch_collate
    ours = default_collate(CASES[case](tracenn))
    theirs = torch_collate(CASES[case](torch))
    assert to_plain(ours) == to_plain(theirs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_convert_matches_torch(case, torch, to_plain):
    from torch.utils.data import default_convert as torch_convert
    for ours, theirs in zip(CASES[case](tracenn), CASES[case](torch)):
        assert to_plain(default_convert(ours)) == to_plain(torch_convert(theirs))


def test_collate_rules_without_torch(to_plain):
    assert to_plain(default_collate([1, 2])) == ("tensor", "int64", [2], [1, 2])
    assert to_plain(default_collate([1.0, 2.0])) == ("tensor", "float64", [2], [1.0, 2.0])
    assert to_plain(default_collate([True, False])) == ("tensor", "bool", [2], [True, False])
    assert default_collate(["a", "b"]) == ["a", "b"]
    out = default_collate([(tracenn.ones(2), 0), (tracenn.zeros(2), 1)])
    assert isinstance(out, list) and out[0].shape == (2, 2) and out[1].tolist() == [0, 1]  # tuples -> list
    nt = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert type(nt) is Point and nt.x.dtype is tracenn.int64 and nt.y.dtype is tracenn.float64
    od = default_collate([collections.OrderedDict(b=1, a=2)] * 2)
    assert type(od) is collections.OrderedDict and list(od) == ["b", "a"]
    assert default_collate([np.float32(1), np.float32(2)]).dtype is tracenn.float32
    assert default_collate([np.int32(1), np.float32(2)]).dtype is tracenn.float32  # torch's promotion
    assert default_collate([np.zeros((2, 3), np.uint8)] * 4).shape == (4, 2, 3)


def test_collate_errors():
    with pytest.raises(TypeError, match="batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
                                        "<class 'object'>"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])


def test_custom_collate_fn_map():
    fmap = dict(default_collate_fn_map)
    fmap[str] = lambda batch, *, collate_fn_map: "+".join(batch)
    assert collate([{"s": "a"}, {"s": "b"}], collate_fn_map=fmap) == {"s": "a+b"}


def test_parameters_collate_as_tensors():
    out = default_collate([tracenn.nn.Parameter(tracenn.ones(2)), tracenn.nn.Parameter(tracenn.zeros(2))])
    assert out.shape == (2, 2) and out.requires_grad
