"""tracenn.quasirandom.SobolEngine: the unscrambled sequence is torch's bit for bit; scrambled points keep
the Sobol net structure (the random bits come from tracenn's generator, so they are not torch's)."""
import numpy as np
import pytest

import tracenn
from tracenn.quasirandom import SobolEngine, _direction_numbers, _scramble


def test_known_points():
    # the first dimension is the van der Corput sequence in Gray-code order; the second uses x + 1
    e = SobolEngine(2)
    pts = e.draw(8)
    assert pts.dtype is tracenn.float32 and pts.shape == (8, 2)
    assert pts[:, 0].tolist() == [0.0, 0.5, 0.75, 0.25, 0.375, 0.875, 0.625, 0.125]
    assert pts[:, 1].tolist() == [0.0, 0.5, 0.25, 0.75, 0.375, 0.875, 0.125, 0.625]
    assert SobolEngine(5).draw(3).tolist() == [[0.0] * 5, [0.5] * 5, [0.75, 0.25, 0.25, 0.25, 0.75]]


def _one_point_per_interval(pts, m):
    cells = np.floor(np.asarray(pts, dtype=np.float64) * 2 ** m).astype(int)
    return all(sorted(cells[:, d]) == list(range(2 ** m)) for d in range(cells.shape[1]))


@pytest.mark.parametrize("scramble", [False, True])
def test_each_dimension_is_stratified(scramble):
    # any 2**m consecutive-from-0 Sobol points put one point in each interval [k/2**m, (k+1)/2**m)
    pts = SobolEngine(40, scramble=scramble, seed=11).draw_base2(6, dtype=tracenn.float64).numpy()
    assert _one_point_per_interval(pts, 6)
    assert ((pts >= 0) & (pts < 1)).all()


def test_two_dim_projection_is_a_net():
    # the first two dimensions form a (0, m, 2)-net: one point in every elementary box of area 2**-m
    pts = SobolEngine(2).draw(64, dtype=tracenn.float64).numpy()
    for a in range(7):
        cells = {(int(x * 2 ** a), int(y * 2 ** (6 - a))) for x, y in pts}
        assert len(cells) == 64


def test_draw_continues_the_sequence_and_reset_restarts():
    whole = SobolEngine(7).draw(50, dtype=tracenn.float64).numpy()
    e = SobolEngine(7)
    parts = [e.draw(n, dtype=tracenn.float64).numpy() for n in (1, 4, 0, 13, 32)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert e.num_generated == 50
    e.reset()
    np.testing.assert_array_equal(e.draw(3, dtype=tracenn.float64).numpy(), whole[:3])


@pytest.mark.parametrize("skip", [[1], [5], [2, 7], [0, 3]])
def test_fast_forward_skips_points(skip):
    whole = SobolEngine(4).draw(40, dtype=tracenn.float64).numpy()
    e = SobolEngine(4)
    for n in skip:
        e.fast_forward(n)
    assert e.num_generated == sum(skip)
    np.testing.assert_array_equal(e.draw(6, dtype=tracenn.float64).numpy(), whole[sum(skip):sum(skip) + 6])


def test_draw_base2_requires_power_of_two_total():
    e = SobolEngine(3)
    assert e.draw_base2(2).shape == (4, 3)
    assert e.draw_base2(2).shape == (4, 3)  # 8 in all
    with pytest.raises(ValueError, match="n=8\\+2\\*\\*1=10"):
        e.draw_base2(1)


def test_out_dtype_and_errors():
    e = SobolEngine(3)
    out = tracenn.empty(0, dtype=tracenn.float64)
    r = e.draw(4, out=out)
    assert r is out and out.shape == (4, 3)
    with pytest.raises(NotImplementedError, match="not implemented for 'Half'"):
        SobolEngine(3).draw(2, dtype=tracenn.float16)
    # the first point alone is a cast (torch's too), so any dtype works for it
    assert SobolEngine(3).draw(1, dtype=tracenn.float16).dtype is tracenn.float16
    with pytest.raises(ValueError, match=r"\[1, 21201\]"):
        SobolEngine(0)
    with pytest.raises(ValueError, match=r"\[1, 21201\]"):
        SobolEngine(21202)


def test_repr_and_state():
    assert repr(SobolEngine(3)) == "SobolEngine(dimension=3)"
    assert repr(SobolEngine(3, scramble=True, seed=4)) == "SobolEngine(dimension=3, scramble=True, seed=4)"
    e = SobolEngine(3)
    assert e.sobolstate.dtype is tracenn.int64 and e.sobolstate.shape == (3, 30)
    assert e.sobolstate[0].tolist() == [2 ** (29 - j) for j in range(30)]
    assert e.shift.tolist() == [0, 0, 0]


def test_scrambled_seed_reproduces_and_differs():
    a = SobolEngine(5, scramble=True, seed=2).draw(16).numpy()
    b = SobolEngine(5, scramble=True, seed=2).draw(16).numpy()
    c = SobolEngine(5, scramble=True, seed=3).draw(16).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, SobolEngine(5).draw(16).numpy())
    assert a[0].any()  # the first scrambled point is the random shift, not 0


def test_scramble_identity_matrix_keeps_state():
    v = _direction_numbers(6)
    np.testing.assert_array_equal(_scramble(v, np.zeros((6, 30, 30), dtype=np.int64)), v)
    # one bit below the diagonal adds the most significant bit into the next one
    ltm = np.zeros((6, 30, 30), dtype=np.int64)
    ltm[:, 1, 0] = 1
    assert _scramble(v, ltm)[0, 0] == v[0, 0] | (1 << 28)


# ---- torch as the oracle ----

def test_direction_numbers_match_torch_all_dimensions():
    torch = pytest.importorskip("torch")
    state = torch.zeros(SobolEngine.MAXDIM, 30, dtype=torch.long)
    torch._sobol_engine_initialize_state_(state, SobolEngine.MAXDIM)
    np.testing.assert_array_equal(_direction_numbers(SobolEngine.MAXDIM), state.numpy())


def test_scramble_kernel_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    v = _direction_numbers(64)
    ltm = np.tril(rng.integers(0, 2, (64, 30, 30)))
    st = torch.tensor(v.copy())
    torch._sobol_engine_scramble_(st, torch.tensor(ltm), 64)
    np.testing.assert_array_equal(_scramble(v, ltm), st.numpy())


@pytest.mark.parametrize("dim", [1, 3, 40, 1111, 21201])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sequence_matches_torch(dim, dtype):
    torch = pytest.importorskip("torch")
    a, b = torch.quasirandom.SobolEngine(dim), SobolEngine(dim)
    tdt, ndt = getattr(torch, dtype), getattr(tracenn, dtype)
    steps = [("draw", 1), ("draw", 7), ("ff", 5), ("draw", 16), ("ff", 0), ("draw", 33), ("reset", 0),
             ("ff", 3), ("draw", 4), ("reset", 0), ("draw_base2", 3), ("draw_base2", 3)]
    for op, n in steps:
        if op == "ff":
            a.fast_forward(n), b.fast_forward(n)
        elif op == "reset":
            a.reset(), b.reset()
        else:
            x, y = getattr(a, op)(n, dtype=tdt).numpy(), getattr(b, op)(n, dtype=ndt).numpy()
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        assert a.num_generated == b.num_generated
        np.testing.assert_array_equal(a.quasi.numpy(), b.quasi.numpy())


def test_scrambled_first_point_has_default_dtype_precision_as_torch():
    torch = pytest.importorskip("torch")
    # torch divides the shift by 2**30 in float32 at construction, so a float64 first point is rounded
    e = SobolEngine(3, scramble=True, seed=3)
    want = torch.tensor(e.shift.numpy()) / 2 ** 30
    np.testing.assert_array_equal(e.draw(1, dtype=tracenn.float64).numpy()[0], want.double().numpy())
