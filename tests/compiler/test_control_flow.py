"""tracenn.cond and tracenn.while_loop: eager, compiled (one program for both branches / any trip
count), gradients, the printed blocks, and errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from tracenn.compiler.check import verify
from tracenn.errors import CompileError


def _np(t):
    return np.asarray(t.detach().numpy())


class Branchy(nn.Module):
    """cond on the input's sum: a Linear in one branch, a scale less the Linear's bias in the
    other; counts its traces."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self._traces = []  # (a list: an int the forward changes is guarded, so each call would trace)

    @property
    def traces(self):
        return len(self._traces)

    def forward(self, x):
        self._traces.append(1)
        return tracenn.cond(x.sum() > 0, lambda a: self.fc(a).relu(), lambda a: a * 2.0 - self.fc.bias, (x,))


def _ref(m, x):
    w, b = _np(m.fc.weight), _np(m.fc.bias)
    return np.maximum(x @ w.T + b, 0) if x.sum() > 0 else x * 2.0 - b


POS = np.array([[0.5, 1.0, -0.2], [0.3, 0.1, 0.9]], np.float32)
NEG = -POS


# ---- eager --------------------------------------------------------------------------------------

def test_eager_cond_runs_the_branch_its_predicate_picks():
    tracenn.manual_seed(0)
    m = Branchy()
    for x in (POS, NEG):
        np.testing.assert_allclose(_np(m(tracenn.tensor(x))), _ref(m, x), rtol=1e-6)
    t = tracenn.tensor([1.0, -2.0])
    assert tracenn.cond(True, lambda a: a + 1, lambda a: a - 1, (t,)).tolist() == [2.0, -1.0]
    assert tracenn.cond(tracenn.tensor([0]), lambda a: a + 1, lambda a: a - 1, [t]).tolist() == [0.0, -3.0]
    assert tracenn.cond(tracenn.tensor(1.0), lambda: t * 3, lambda: t).tolist() == [3.0, -6.0]


def test_eager_cond_is_on_the_tape():
    x = tracenn.tensor([1.0, 2.0], requires_grad=True)
    y = tracenn.cond(x.sum() > 0, lambda a: (a * a).sum(), lambda a: a.sum(), (x,))
    y.backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_nested_operands_and_outputs():
    x, y = tracenn.ones(2), tracenn.full((2,), 3.0)
    out = tracenn.cond(tracenn.tensor(False), lambda d: {"s": d["a"] + d["b"][0]},
                       lambda d: {"s": d["a"] * d["b"][0]}, ({"a": x, "b": [y]},))
    assert out["s"].tolist() == [3.0, 3.0]


@pytest.mark.parametrize("call, message", [
    (lambda x: tracenn.cond(tracenn.tensor([True, False]), lambda a: a, lambda a: a, (x,)),
     "Expected pred to be bool or single-element tensor, but got tensor([ True, False])."),
    (lambda x: tracenn.cond("a", lambda a: a, lambda a: a, (x,)), "Expected pred to be bool or tensor, but got a."),
    (lambda x: tracenn.cond(True, 1, lambda a: a, (x,)), "Expect both branches to be callable."),
    (lambda x: tracenn.cond(True, lambda a, k: a, lambda a, k: a, (x, 2)),
     "Expect operands to be a tuple of possibly nested dict/list/tuple that only consists of tensor leaves"),
    (lambda x: tracenn.cond(True, lambda a: a, lambda a: a, x),
     "Expect operands to be a tuple of possibly nested dict/list/tuple that only consists of tensor leaves"),
])
def test_eager_cond_errors_are_torchs(call, message):
    with pytest.raises(RuntimeError) as e:
        call(tracenn.ones(2))
    assert message in str(e.value)


def test_eager_cond_errors_match_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, tracenn):
        with pytest.raises(RuntimeError, match="Expect both branches to be callable"):
            lib.cond(lib.tensor(True), None, lambda a: a, (lib.ones(2),))
        with pytest.raises(RuntimeError, match="single-element tensor"):
            lib.cond(lib.tensor([True, True]), lambda a: a + 1, lambda a: a - 1, (lib.ones(2),))


def test_eager_while_loop():
    i, x = tracenn.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * 2), (tracenn.tensor(0), tracenn.ones(2)))
    assert i.item() == 3 and x.tolist() == [8.0, 8.0]
    # Python numbers may be carried eagerly, as in torch
    n, x = tracenn.while_loop(lambda n, a: n < 2, lambda n, a: (n + 1, a + 1), (0, tracenn.zeros(1)))
    assert n == 2 and x.tolist() == [2.0]
    # no iteration: the carried inputs, as a tuple
    out = tracenn.while_loop(lambda a: a.sum() > 10, lambda a: (a * 2,), [tracenn.ones(2)])
    assert isinstance(out, tuple) and out[0].tolist() == [1.0, 1.0]
    # the body's structure is the result's
    out = tracenn.while_loop(lambda d: d["a"].sum() < 10, lambda d: {"a": d["a"] * 2}, ({"a": tracenn.ones(2)},))
    assert out["a"].tolist() == [8.0, 8.0]


def test_eager_while_loop_gradient():
    x = tracenn.tensor([1.0, 3.0], requires_grad=True)
    _, y = tracenn.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * a), (tracenn.tensor(0), x))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * np.array([1.0, 3.0]) ** 7)


def test_while_loop_matches_torch():
    torch = pytest.importorskip("torch")
    x0 = np.array([0.5, -1.5, 2.0], np.float32)
    outs = []
    for lib in (torch, tracenn):
        x = lib.tensor(x0, requires_grad=True)
        i, y = lib.while_loop(lambda i, a: i < 4, lambda i, a: (i + 1, a.sin() * 1.5), (lib.tensor(0), x))
        y.sum().backward()
        outs.append((int(i), y.detach().numpy(), x.grad.numpy()))
    assert outs[0][0] == outs[1][0]
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-6)
    np.testing.assert_allclose(outs[1][2], outs[0][2], rtol=1e-5)


@pytest.mark.parametrize("cond_fn, body_fn, message", [
    (lambda a: a.sum() < 10, lambda a: (a.double(),),
     "Expected body_fn_output and carried_inputs to have same metadata but found: pair[0] differ"),
    (lambda a: a.sum() < 10, lambda a: (a * 2, a), "body_fn returned 2 tensor(s) but carried_inputs has 1"),
    (lambda a: a.sum(), lambda a: (a * 2,), "Expected cond_fn to return a scalar bool tensor or a bool"),
    (lambda a: a < 10, lambda a: (a * 2,), "Expected cond_fn to return a scalar bool tensor or a bool"),
])
def test_eager_while_loop_errors(cond_fn, body_fn, message):
    with pytest.raises(RuntimeError) as e:
        tracenn.while_loop(cond_fn, body_fn, (tracenn.ones(2),))
    assert message in str(e.value)


# ---- compiled -----------------------------------------------------------------------------------

def test_compiled_cond_is_one_program_for_both_branches():
    tracenn.manual_seed(0)
    m = Branchy()
    cm = tracenn.compile(m, verify_passes=True)
    for x in (POS, NEG, POS, NEG):
        np.testing.assert_allclose(_np(cm(tracenn.tensor(x))), _ref(m, x), rtol=1e-6, atol=1e-7)
    assert m.traces == 1
    verify(cm.graph)
    assert [n.op.name for n in cm.graph.nodes].count("cond") == 1


@pytest.mark.parametrize("x0", [POS, NEG], ids=["true", "false"])
def test_compiled_cond_gradients_equal_eager(x0):
    tracenn.manual_seed(0)
    m = Branchy()
    cm = tracenn.compile(m)
    grads = []
    for f in (m, cm):
        x = tracenn.tensor(x0, requires_grad=True)
        (f(x) * tracenn.arange(6.0).reshape(2, 3)).sum().backward()
        grads.append((_np(x.grad), m.fc.weight.grad))
        m.zero_grad(set_to_none=True)
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-6)
    if x0 is POS:
        np.testing.assert_allclose(_np(grads[1][1]), _np(grads[0][1]), rtol=1e-6)
    else:  # the branch not taken: eager (a plain `if`) leaves no gradient; compiled, zeros as torch.cond
        assert grads[0][1] is None and not np.any(_np(grads[1][1]))


def test_compiled_cond_reads_closures_and_nests():
    w = tracenn.tensor([2.0, 3.0])

    def f(x, k):
        def outer_true(a):
            return tracenn.cond(a.mean() > 1, lambda b: b * w, lambda b: b + w, (a,))
        return tracenn.cond(k > 0, outer_true, lambda a: a - w, (x,))

    cf = tracenn.compile(f, verify_passes=True)
    for xs, k in (([3.0, 1.0], 1), ([0.5, 0.5], 1), ([1.0, 1.0], -1)):
        x, kt = tracenn.tensor(xs), tracenn.tensor(k)
        np.testing.assert_allclose(_np(cf(x, kt)), _np(f(x, kt)))
    text = str(cf.graph)
    assert text.count("= cond[blocks=(true,false)]") == 2 and "\n        true(%b: f32[2], %w: f32[2]):\n" in text


def test_compiled_cond_tuple_outputs_and_no_grad():
    def f(x):
        return tracenn.cond(x[0] > 0, lambda a: (a.exp(), a.sum()), lambda a: (a.cos(), a.amax()), (x,))

    cf = tracenn.compile(f)
    for xs in ([1.0, 2.0], [-1.0, 2.0]):
        with tracenn.no_grad():
            got = cf(tracenn.tensor(xs))
        want = f(tracenn.tensor(xs))
        assert isinstance(got, tuple) and len(got) == 2
        for a, b in zip(got, want):
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6)


def test_compiled_cond_in_a_whole_training_step_equals_eager():
    # (Plain SGD: a parameter only the branch not taken reads has a zero gradient in the program,
    # as torch.cond gives it, and None eagerly, where cond is a Python `if`; SGD without momentum
    # or weight decay steps both alike. docs/compile.md says so.)
    def run(compiled):
        tracenn.manual_seed(0)
        m = Branchy()
        opt = tracenn.optim.SGD(m.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = ((m(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        f = tracenn.compile(step) if compiled else step
        losses = [f(tracenn.tensor(x), tracenn.ones(2, 3)).item() for x in (POS, NEG, POS, POS)]
        return losses, _np(m.fc.weight), m.traces

    (le, we, _), (lc, wc, traces) = run(False), run(True)
    np.testing.assert_allclose(lc, le, rtol=1e-6)
    np.testing.assert_allclose(wc, we, rtol=1e-6)
    assert traces == 2  # the first step (no .grad yet), then one program for both branches


def test_compiled_cond_printed_form():
    def f(x, w):
        return tracenn.cond(x.sum() > 0, lambda a: a * w, lambda a: a.neg(), (x,))

    cf = tracenn.compile(f)
    with tracenn.no_grad():
        cf(tracenn.ones(3), tracenn.ones(3))
    lines = [line.split("#")[0].rstrip() for line in str(cf.graph).splitlines()]
    assert lines == [
        "graph f(%x: f32[3], %w: f32[3]) -> f32[3]",
        "  %0: f32[] = sum[keepdim=False] %x",
        "  %1: bool[] = gt[dtype=f32] %0, 0",
        "  %4: f32[3] = cond[blocks=(true,false)] %1, %x, %w",
        "    true(%a: f32[3], %w: f32[3]):",
        "      %2: f32[3] = mul[dtype=f32] %a, %w",
        "      return %2",
        "    false(%a: f32[3], %w: f32[3]):",
        "      %3: f32[3] = neg %a",
        "      return %3",
        "  return %4",
    ]


def test_compiled_cond_branch_mismatch_errors():
    def shapes(x):
        return tracenn.cond(x.sum() > 0, lambda a: a * 2, lambda a: a[:1], (x,))

    def dtypes(x):
        return tracenn.cond(x.sum() > 0, lambda a: a * 2, lambda a: a.double(), (x,))

    def structures(x):
        return tracenn.cond(x.sum() > 0, lambda a: (a, a), lambda a: a, (x,))

    for fn, words in ((shapes, "expected same shape but got f32[2] and f32[1]"),
                      (dtypes, "expected same dtype but got f32[2] and f64[2]"),
                      (structures, "the branches return different structures: true_fn returns (f32[2], f32[2]) "
                                   "and false_fn returns f32[2]")):
        with pytest.raises(CompileError) as e:
            tracenn.compile(fn)(tracenn.ones(2))
        assert words in str(e.value) and "test_control_flow.py" in str(e.value)


def test_a_branch_that_changes_state_runs_eagerly():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(3)

        def forward(self, x):
            return tracenn.cond(x.sum() > 0, lambda a: self.bn(a), lambda a: a, (x,))

    tracenn.manual_seed(0)
    m, ref = Net(), Net()
    cm = tracenn.compile(m)
    x = tracenn.tensor(POS)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        y = cm(x)
    assert any("tracenn.cond's true_fn changes a tensor from outside it in place" in str(i.message) for i in w)
    np.testing.assert_allclose(_np(y), _np(ref(x)), rtol=1e-6)
    np.testing.assert_allclose(_np(m.bn.running_mean), _np(ref.bn.running_mean), rtol=1e-6)


def test_a_branch_that_draws_random_numbers_runs_eagerly():
    def f(x):
        return tracenn.cond(x.sum() > 0, lambda a: a + tracenn.rand(2), lambda a: a, (x,))

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tracenn.manual_seed(3)
        got = tracenn.compile(f)(tracenn.ones(2))
    assert any("draws random numbers" in str(i.message) for i in w)
    tracenn.manual_seed(3)
    np.testing.assert_array_equal(_np(got), _np(f(tracenn.ones(2))))


def test_compiled_while_loop_is_one_program_for_any_trip_count():
    traces = []

    def f(n, x):
        traces.append(1)
        return tracenn.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a * 2 + 1), (tracenn.tensor(0), x))

    cf = tracenn.compile(f, verify_passes=True)
    for n in (0, 1, 5):
        with tracenn.no_grad():
            i, a = cf(tracenn.tensor(n), tracenn.ones(2))
        ei, ea = f(tracenn.tensor(n), tracenn.ones(2))
        assert int(i) == int(ei) == n
        np.testing.assert_array_equal(_np(a), _np(ea))
    assert len(traces) == 4  # three compiled calls traced once, and three eager ones
    node = [n for n in cf.graph.nodes if n.op.name == "while_loop"]
    assert len(node) == 1 and "    body(%i: i64[], %a: f32[2], %n: i64[]):" in str(cf.graph)


def test_compiled_while_loop_reads_parameters():
    tracenn.manual_seed(0)
    lin = nn.Linear(2, 2)

    def f(x):
        return tracenn.while_loop(lambda a: a.abs().sum() < 100, lambda a: (lin(a) * 3,), (x,))[0]

    with tracenn.no_grad():
        got = tracenn.compile(f)(tracenn.ones(2))
        want = f(tracenn.ones(2))
    np.testing.assert_allclose(_np(got), _np(want), rtol=1e-5)


def test_compiled_while_loop_that_needs_a_gradient_runs_eagerly():
    def f(x):
        return tracenn.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * a), (tracenn.tensor(0), x))[1]

    x = tracenn.tensor([1.0, 1.5], requires_grad=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        y = tracenn.compile(f)(x)
    assert any("no reverse-mode derivative" in str(i.message) for i in w)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * np.array([1.0, 1.5]) ** 7, rtol=1e-6)


def test_compiled_while_loop_errors():
    def ints(x):
        return tracenn.while_loop(lambda n, a: n < 2, lambda n, a: (n + 1, a + 1), (0, x))

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        n, _ = tracenn.compile(ints)(tracenn.zeros(1))
    assert n == 2 and any("carries a Python number" in str(i.message) for i in w)

    def wrong(x):
        return tracenn.while_loop(lambda a: a.sum() < 10, lambda a: (a.double(),), (x,))

    with pytest.raises(RuntimeError, match="pair\\[0\\] differ: body_fn returned f64\\[2\\] for carried f32\\[2\\]"):
        with tracenn.no_grad():
            tracenn.compile(wrong)(tracenn.ones(2))


def test_compiled_cond_check_mode_agrees():
    tracenn.manual_seed(0)
    m = Branchy()
    cm = tracenn.compile(m, check=True)
    for x in (POS, NEG):
        np.testing.assert_allclose(_np(cm(tracenn.tensor(x))), _ref(m, x), rtol=1e-6, atol=1e-7)


def test_data_dependent_error_suggests_cond():
    def f(x):
        return x * 2 if x.sum() > 0 else x

    with pytest.raises(tracenn.errors.DataDependentError, match=r"tracenn\.cond\(pred, true_fn, false_fn"):
        tracenn.compile(f)(tracenn.ones(2))


def test_printing_a_graph_with_blocks_every_way():
    import io
    tracenn.manual_seed(0)
    m = Branchy()
    cm = tracenn.compile(m)
    with tracenn.no_grad():
        cm(tracenn.tensor(POS))
    buf = io.StringIO()
    cm.graph.print(file=buf)
    assert "    true(%a: f32[2,3], %fc.weight: f32[3,3], %fc.bias: f32[3]):" in buf.getvalue()
    assert "cond[blocks=(true,false)]" in cm.graph.module_view()
    buf = io.StringIO()
    cm.graph.print_tabular(file=buf)
    assert "cond" in buf.getvalue()


def _per_row(r):
    return tracenn.cond(r.sum() > 0, lambda a: a * 2, lambda a: a.sin(), (r,))


ROWS = np.array([[1.0, 2.0], [-3.0, 1.0], [0.5, -2.0]], np.float32)
ROWS_REF = np.where(ROWS.sum(1, keepdims=True) > 0, ROWS * 2, np.sin(ROWS))


def test_vmap_of_cond_selects_per_example():
    np.testing.assert_allclose(_np(tracenn.vmap(_per_row)(tracenn.tensor(ROWS))), ROWS_REF, rtol=1e-6)
    with tracenn.no_grad():
        got = tracenn.compile(tracenn.vmap(_per_row))(tracenn.tensor(ROWS))
    np.testing.assert_allclose(_np(got), ROWS_REF, rtol=1e-6)
    g = tracenn.func.grad(lambda r: _per_row(r).sum())  # (grad's tensors carry values: one branch runs)
    np.testing.assert_allclose(_np(g(tracenn.tensor(ROWS[1]))), np.cos(ROWS[1]), rtol=1e-6)


def test_vmap_of_cond_matches_torch():
    torch = pytest.importorskip("torch")
    want = torch.vmap(lambda r: torch.cond(r.sum() > 0, lambda a: a * 2, lambda a: a.sin(), (r,)))(
        torch.tensor(ROWS))
    np.testing.assert_allclose(_np(tracenn.vmap(_per_row)(tracenn.tensor(ROWS))), want.numpy(), rtol=1e-6)


def test_vmap_of_cond_with_mismatched_branches_is_an_error():
    f = tracenn.vmap(lambda r: tracenn.cond(r.sum() > 0, lambda a: a * 2, lambda a: a[:1], (r,)))
    with pytest.raises(RuntimeError, match=r"true_fn returned \(f32\[2\]\) and false_fn \(f32\[1\]\)"):
        f(tracenn.tensor(ROWS))


W_GLOBAL = tracenn.tensor([1.0, 2.0], requires_grad=True)


def test_branches_may_read_trainable_globals():
    """A lambda inside the compiled function reads a global parameter: tracenn.compile finds it
    (names of nested functions are searched too), so it trains instead of being refused."""
    def f(x):
        return tracenn.cond(x.sum() > 0, lambda a: a, lambda a: a * W_GLOBAL, (x,))

    cf = tracenn.compile(f)
    for xs, want_x, want_w in (([1.0, 1.0], [1.0, 1.0], [0.0, 0.0]), ([-1.0, -1.0], [1.0, 2.0], [-1.0, -1.0])):
        x = tracenn.tensor(xs, requires_grad=True)
        cf(x).sum().backward()
        assert x.grad.tolist() == want_x and W_GLOBAL.grad.tolist() == want_w
        W_GLOBAL.grad = None
    assert "%w" not in str(cf.graph) and "%W_GLOBAL" in str(cf.graph)
