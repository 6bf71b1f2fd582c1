"""Compiled vs eager for every op in the op table (``tests/ops/op_records.py``).

For each record, ``tracenn.compile`` a function that calls the op exactly as the eager table test
does (``rec.op(tracenn, *args, **kwargs)``, every tensor argument an input of the program, every
other argument fixed), and compare with the same call run eagerly:

- forward: the result's structure (tensor, tuple, named tuple), each output's dtype and shape,
  and its values at the record's tolerance (integer and bool results exactly);
- inputs after the call (an op that writes into an argument must write back as eager does);
- gradients, for differentiable records on their float64 samples: d(sum_i <out_i, w_i>)/d(input)
  for each float input, with fixed random weights ``w_i``.

Ops whose *output shape* depends on tensor values (``masked_select``, a boolean-mask index,
``repeat_interleave`` with a tensor of repeats) cannot be one XLA program: they must raise
:class:`~tracenn.errors.DataDependentError` naming the line, and run with ``fallback="eager"``.

The default run takes one sample (a float64 gradient sample where there is one: forward and
backward with one compile) of a representative subset of records (``DEFAULT``); ``-m slow`` runs
every sample of every record. Every graph is
checked by the graph checker after every pass (``verify_passes=True``).
"""
from __future__ import annotations

import pathlib
import warnings

import numpy as np
import pytest

import tracenn
from helpers import load_by_path, to_np
from tracenn.errors import DataDependentError

_OPS = pathlib.Path(__file__).resolve().parent.parent / "ops"




R = load_by_path("_tracenn_op_records", _OPS / "op_records.py")   # the same module object test_op_table uses
TOL = load_by_path("_tracenn_op_table", _OPS / "test_op_table.py").TOL  # (rtol, atol) per dtype, times rec.tol

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

# Records that fail compiled for a bug outside this file: {name: reason}, strict xfails that flip
# when fixed. BUGS applies to the representative sample, SLOW_BUGS to the others.
BUGS: dict[str, str] = {}
SLOW_BUGS: dict[str, str] = {}


def data_dependent(rec, s) -> bool:
    """Samples whose result *shape* depends on tensor values: no single program can compute them."""
    if rec.name == "masked_select":
        return True
    if rec.name == "repeat_interleave":
        return any(isinstance(a, np.ndarray) for a in s.args[1:])
    if rec.name in ("getitem[advanced]", "setitem"):
        idx = s.args[-1]
        idx = idx if isinstance(idx, tuple) else (idx,)
        return any(isinstance(i, np.ndarray) and i.dtype == bool for i in idx)
    return False


# ---- running one sample eagerly and compiled ----------------------------------------------------------

def _to_tracenn(a, grad_ids=(), path=()):
    """Sample arguments as tracenn values; float arrays at ``grad_ids`` paths require grad."""
    if isinstance(a, np.ndarray):
        t = tracenn.tensor(a)
        return t.requires_grad_() if path in grad_ids else t
    if isinstance(a, dict):
        return {k: _to_tracenn(v, grad_ids, path + (k,)) for k, v in a.items()}
    if isinstance(a, (list, tuple)):
        return type(a)(_to_tracenn(x, grad_ids, path + (i,)) for i, x in enumerate(a))
    return a


def _tensors(obj, out):
    if isinstance(obj, tracenn.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _tensors(x, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _tensors(x, out)
    return out


def _rebuild(obj, it):
    if isinstance(obj, tracenn.Tensor):
        return next(it)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rebuild(x, it) for x in obj)
    if isinstance(obj, dict):
        return {k: _rebuild(v, it) for k, v in obj.items()}
    return obj


def grad_paths(s):
    """Paths of the float array arguments: top level, or inside a list (cat, stack)."""
    paths = []
    for i, a in enumerate(s.args):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            paths.append((0, i))
        elif isinstance(a, list):
            paths += [(0, i, j) for j, x in enumerate(a) if isinstance(x, np.ndarray) and x.dtype.kind == "f"]
    return paths


class Run:
    """One call of ``rec`` on ``s``: its result, the inputs after the call, and the gradients."""

    def __init__(self, rec, s, *, compiled, with_grad, fallback=None):
        paths = grad_paths(s) if with_grad else []
        template = _to_tracenn((s.args, s.kwargs), set(paths))
        inputs = _tensors(template, [])
        self.inputs = inputs

        def call(*xs):
            args, kwargs = _rebuild(template, iter(xs))
            return rec.op(tracenn, *args, **kwargs)

        self.fn = tracenn.compile(call, fallback=fallback, verify_passes=True) if compiled else call
        self.out = self.fn(*inputs)
        self.grads = None
        if paths:
            leaves = [_get(template, p) for p in paths]
            outs = _outputs(self.out)
            floats = [o for o in outs if o.dtype.is_floating_point]
            rng = np.random.default_rng(0)
            loss = sum((o * tracenn.tensor(rng.standard_normal(tuple(o.shape)).astype(to_np(o).dtype))).sum()
                       for o in floats)
            self.grads = tracenn.autograd.grad(loss, leaves, allow_unused=True)
            self.grad_paths = paths


def _get(template, path):
    x = template
    for p in path:
        x = x[p]
    return x


def _outputs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _dtype(t) -> str:
    return str(t.dtype).replace("tracenn.", "")


def assert_same(got, want, rec, what):
    """Compiled ``got`` against eager ``want``: structure, dtype, shape, values."""
    assert type(got) is type(want), f"{what}: compiled gives {type(got).__name__}, eager {type(want).__name__}"
    gs, ws = _outputs(got), _outputs(want)
    assert len(gs) == len(ws), f"{what}: {len(gs)} outputs, eager {len(ws)}"
    for i, (g, w) in enumerate(zip(gs, ws)):
        w_ = f"{what} output {i}"
        if not isinstance(w, tracenn.Tensor):
            assert g == w, f"{w_}: {g!r} != {w!r}"
            continue
        assert _dtype(g) == _dtype(w), f"{w_}: dtype {_dtype(g)}, eager {_dtype(w)}"
        assert tuple(g.shape) == tuple(w.shape), f"{w_}: shape {tuple(g.shape)}, eager {tuple(w.shape)}"
        a, e = to_np(g), to_np(w)
        if _dtype(w) not in TOL:
            np.testing.assert_array_equal(a, e, err_msg=w_)
        else:
            rtol, atol = TOL[_dtype(w)]
            np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=rtol * rec.tol,
                                       atol=atol * rec.tol, equal_nan=True, err_msg=w_)


def check_sample(rec, s):
    what = f"{rec.name}{s!r}"
    with_grad = rec.grad and s.is_grad_sample()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the op's own warnings, eager and compiled alike
            eager = Run(rec, s, compiled=False, with_grad=with_grad)
        if data_dependent(rec, s):
            check_data_dependent(rec, s, eager, what)
            return
        comp = Run(rec, s, compiled=True, with_grad=with_grad)
        assert_same(comp.out, eager.out, rec, f"{what} compiled vs eager")
        for i, (c, e) in enumerate(zip(comp.inputs, eager.inputs)):
            assert_same(c, e, rec, f"{what} input {i} after the call")
        if eager.grads is not None:
            for p, gc, ge in zip(eager.grad_paths, comp.grads, eager.grads):
                x = _get(s.args, p[1:])
                gc = tracenn.zeros(x.shape, dtype=tracenn.float64) if gc is None else gc
                ge = tracenn.zeros(x.shape, dtype=tracenn.float64) if ge is None else ge
                assert_same(gc, ge, rec, f"{what} d/d(arg {p[1:]}) compiled vs eager")
    except Exception as e:
        e.add_note(f"op table, compiled: {what}")
        raise


def check_data_dependent(rec, s, eager, what):
    """The op cannot be one program: a DataDependentError that says where and what to do, and
    ``fallback="eager"`` runs it eagerly with the same result."""
    template = _to_tracenn((s.args, s.kwargs))
    inputs = _tensors(template, [])

    def call(*xs):
        args, kwargs = _rebuild(template, iter(xs))
        return rec.op(tracenn, *args, **kwargs)

    with pytest.raises(DataDependentError, match=r"tracenn.compile: .* at .*op_records\.py:\d+.*fallback=\"eager\""):
        tracenn.compile(call)(*inputs)
    with pytest.warns(UserWarning, match="fallback='eager'.*eagerly"):
        got = Run(rec, s, compiled=True, with_grad=eager.grads is not None, fallback="eager")
    assert_same(got.out, eager.out, rec, f"{what} fallback='eager' vs eager")
    if eager.grads is not None:
        for p, gc, ge in zip(eager.grad_paths, got.grads, eager.grads):
            assert_same(gc, ge, rec, f"{what} d/d(arg {p[1:]}) fallback vs eager")


# ---- the tests ---------------------------------------------------------------------------------------

def representative(rec):
    """The default run's sample: a float64 gradient sample where there is one, else the first."""
    fast = rec.fast or rec.samples[:1]
    if rec.grad:
        for s in fast:
            if s.is_grad_sample():
                return s
    return fast[0]


# The default run: one record per op family, and every record whose compiled form is special
# (several outputs, views and writes, indices, data-dependent shapes). ``-m slow`` adds the rest.
DEFAULT = {
    "exp", "log", "tanh", "sigmoid", "erfinv", "lgamma", "abs", "floor", "round[decimals]", "isnan", "nan_to_num",
    "add[alpha]", "mul", "div", "div[floor]", "pow", "remainder", "maximum[ties]", "atan2", "xlogy", "eq",
    "logical_and", "bitwise_and", "where", "clamp", "lerp", "addcdiv", "sum", "mean", "var", "prod", "amax", "max",
    "argmax", "any", "logsumexp", "softmax", "log_softmax", "cross_entropy", "norm", "cumsum", "cumprod[zeros]", "cummax", "median",
    "matmul", "einsum", "addmm", "conv2d", "reshape", "permute", "squeeze", "expand", "cat", "split", "unbind",
    "flip", "repeat_interleave", "tril", "narrow", "diagonal", "getitem[basic]", "getitem[advanced]", "setitem",
    "gather", "scatter_add", "scatter_reduce", "index_select", "index_add", "masked_fill", "masked_select", "take",
    "sort", "topk", "kthvalue",
}


def _params(slow=False):
    bugs = dict(BUGS, **SLOW_BUGS) if slow else BUGS
    out = []
    for r in R.RECORDS:
        marks = [pytest.mark.xfail(reason=bugs[r.name], strict=True)] if r.name in bugs else []
        if not slow and r.name not in DEFAULT:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(r, id=r.name, marks=marks))
    return out


@pytest.mark.parametrize("rec", _params())
def test_compiled_matches_eager(rec):
    """The record's representative sample (the default run covers the records in DEFAULT)."""
    check_sample(rec, representative(rec))


@pytest.mark.slow
@pytest.mark.parametrize("rec", _params(slow=True))
def test_compiled_matches_eager_every_sample(rec):
    """Every other sample of the record."""
    rep = representative(rec)
    rest = [s for s in rec.samples if s is not rep]
    if not rest:
        pytest.skip("the record has one sample")
    for s in rest:
        check_sample(rec, s)


def test_every_record_is_compiled():
    """The table drives this file: a record name is a test id, so the ids must be unique."""
    names = [r.name for r in R.RECORDS]
    assert len(names) == len(set(names))
    assert set(BUGS) | set(SLOW_BUGS) | DEFAULT <= set(names), \
        f"names of records that are gone: {(set(BUGS) | set(SLOW_BUGS) | DEFAULT) - set(names)}"


def test_data_dependent_samples_exist():
    """The data-dependent path is exercised in the default run (masked_select's first sample)."""
    rec = next(r for r in R.RECORDS if r.name == "masked_select")
    assert data_dependent(rec, representative(rec))
