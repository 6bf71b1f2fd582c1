"""Index tables and divisors that layers cache across calls (``nn.functional._conv._const``) are
concrete even when a compiled call makes them first: a later eager call reuses them. (A cached
table made while tracing was symbolic, and the eager call raised "a symbolic tensor ... kept
after it".)"""
import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn.nn.functional import _conv

LAYERS = {
    "upsample_bilinear": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), (1, 2, 3, 3)),
    "interpolate_bicubic_antialias": (lambda x: F.interpolate(x, size=(2, 3), mode="bicubic", antialias=True),
                                      (1, 2, 5, 7)),
    "avg_pool_no_pad_count": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (1, 2, 6, 6)),
    "adaptive_avg_pool": (lambda x: F.adaptive_avg_pool2d(x, (3, 4)), (1, 2, 7, 9)),
    "adaptive_max_pool": (lambda x: F.adaptive_max_pool2d(x, (3, 4)), (1, 2, 7, 9)),
    "grid_sample": (lambda x: F.grid_sample(x, tracenn.ones(1, 2, 2, 2) * 0.3, align_corners=False), (1, 2, 4, 4)),
    "affine_grid": (lambda x: F.affine_grid(x[0, :2, :2, :3], [2, 1, 4, 4], align_corners=False), (1, 2, 4, 4)),
    "unfold": (lambda x: F.unfold(x, 2, stride=2), (1, 2, 4, 4)),
    "fold": (lambda x: F.fold(x.reshape(1, 8, 4), (4, 4), 2, stride=2), (1, 2, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_table_first_made_while_compiling_serves_eager_calls(name):
    fn, shape = LAYERS[name]
    x = tracenn.tensor(np.random.RandomState(0).randn(*shape).astype(np.float32))
    _conv._CONSTS.clear()
    compiled = tracenn.compile(fn)(x)
    assert _conv._CONSTS, "the layer no longer caches a table: pick another row"
    eager = fn(x)  # reuses the tables the compiled call cached
    np.testing.assert_allclose(eager.numpy(), compiled.numpy(), rtol=1e-5, atol=1e-6)
    assert not any(getattr(t._value, "symbolic", False) for t in _conv._CONSTS.values())
