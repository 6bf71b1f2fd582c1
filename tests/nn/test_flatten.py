"""Flatten and Unflatten: shapes, gradients, pinned reprs and torch's errors (run on both libraries)."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn


def _x(lib, *shape):
    return lib.tensor(np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape))


@pytest.mark.parametrize("args,shape,expected", [((), (2, 3, 4, 5), (2, 60)), ((0, 2), (2, 3, 4, 5), (24, 5)),
                                                 ((-3, -2), (2, 3, 4, 5), (2, 12, 5)), ((0,), (3,), (3,))])
def test_flatten_shapes(lib, args, shape, expected):
    m = lib.nn.Flatten(*args)
    assert tuple(m(_x(lib, *shape)).shape) == expected


@pytest.mark.parametrize("dim,sizes,shape,expected", [(1, (2, 5, 5), (2, 50), (2, 2, 5, 5)),
                                                      (-1, [4, -1], (3, 8), (3, 4, 2)),
                                                      (0, (1, 2), (2, 3), (1, 2, 3))])
def test_unflatten_shapes(lib, dim, sizes, shape, expected):
    m = lib.nn.Unflatten(dim, sizes)
    assert tuple(m(_x(lib, *shape)).shape) == expected


def test_flatten_round_trip_and_gradient():
    x = tracenn.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
    y = nn.Unflatten(1, (3, 4))(nn.Flatten()(x))
    assert y.tolist() == x.tolist()
    (y * 2).sum().backward()
    assert x.grad.tolist() == np.full((2, 3, 4), 2.0).tolist()


def test_flatten_of_a_1d_input_needs_start_dim_0(lib):
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)"):
        lib.nn.Flatten()(_x(lib, 3))


def test_reprs(lib):
    assert repr(lib.nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(lib.nn.Flatten(0, 2)) == "Flatten(start_dim=0, end_dim=2)"
    assert repr(lib.nn.Unflatten(1, (2, 5, 5))) == "Unflatten(dim=1, unflattened_size=(2, 5, 5))"
    assert repr(lib.nn.Unflatten(-1, [4, -1])) == "Unflatten(dim=-1, unflattened_size=[4, -1])"
    seq = lib.nn.Sequential(lib.nn.Flatten(), lib.nn.Unflatten(1, (2, 2)))
    assert repr(seq) == ("Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n"
                         "  (1): Unflatten(dim=1, unflattened_size=(2, 2))\n)")


def test_unflatten_errors_match_torch(lib):
    with pytest.raises(TypeError, match="unflattened_size must be tuple of ints, but found element of type float "
                                        "at pos 1"):
        lib.nn.Unflatten(1, (2, 2.5))
    with pytest.raises(TypeError, match="unflattened_size must be a tuple of ints, but found type int"):
        lib.nn.Unflatten(1, 4)
