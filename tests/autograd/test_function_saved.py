"""``ctx.save_for_backward`` of a custom ``autograd.Function`` as torch 2.13 keeps it: a backward
without ``retain_graph`` frees what was saved (a second backward, or reading ``saved_tensors``
afterwards, raises), a saved tensor changed in place raises when the backward reads
``ctx.saved_tensors``, a saved output comes back made by the node, and ``mark_dirty`` returns the
input itself with the node as its history. The same inside ``tracenn.compile`` (a traced training
step raises while tracing, with eager's message and the user's line; a compiled forward whose
backward runs later behaves as eager)."""
import types
import warnings

import numpy as np
import pytest

import tracenn
from tracenn.errors import BackwardError, InplaceError, SavedTensorModifiedError

FREED = "Trying to backward through the graph a second time"
MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation"


def _fns(t):
    """The custom Functions of these tests, written against ``t`` (tracenn or torch)."""
    F = t.autograd.Function

    class Sq(F):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 2 * x * g

    class SaveNoRead(F):  # saves, but its backward never reads saved_tensors
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    class NoSave(F):
        @staticmethod
        def forward(ctx, x):
            ctx.scale = 2.0  # an attribute, not save_for_backward: never freed
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return ctx.scale * g

    class SaveNone(F):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(None)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    class Exp(F):  # saves its output
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            y, = ctx.saved_tensors
            return g * y

    class Mul(F):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * b, g * a

    class Two(F):  # saves a non-differentiable output
        @staticmethod
        def forward(ctx, x):
            a, b = x * 2, x * 3
            ctx.mark_non_differentiable(b)
            ctx.save_for_backward(a, b)
            return a, b

        @staticmethod
        def backward(ctx, ga, gb):
            a, b = ctx.saved_tensors
            return ga * 2

    class AddOne(F):  # in place, marked dirty, and saved
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            ctx.save_for_backward(x)
            return x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * 3

    class Twice(F):  # reads saved_tensors twice in one backward
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            x2, = ctx.saved_tensors
            return x * g + x2 * g

    class SqS(F):  # torch 2's setup_context style, saving an input and the output
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0], output)

        @staticmethod
        def backward(ctx, g):
            x, _ = ctx.saved_tensors
            return 2 * x * g

    return types.SimpleNamespace(**{c.__name__: c for c in (Sq, SaveNoRead, NoSave, SaveNone, Exp, Mul, Two,
                                                             AddOne, Twice, SqS)})


def _w(t, n=3):
    return t.tensor(np.linspace(0.5, 1.5, n, dtype=np.float32), requires_grad=True)


# ---- scenarios, each run on tracenn and (below) on torch --------------------------------------

def s_second_backward(t, f):
    loss = f.Sq.apply(_w(t) * 1).sum()
    loss.backward()
    loss.backward()


def s_second_backward_leaf_input(t, f):
    loss = f.Sq.apply(_w(t)).sum()
    loss.backward()
    loss.backward()


def s_retain_graph(t, f):
    w = _w(t)
    loss = f.Sq.apply(w * 1).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    return w.grad


def s_saved_not_read_second_backward(t, f):
    w = _w(t)
    loss = f.SaveNoRead.apply(w).sum()
    loss.backward()
    loss.backward()
    return w.grad


def s_nothing_saved_second_backward(t, f):
    w = _w(t)
    loss = f.NoSave.apply(w).sum()
    loss.backward()
    loss.backward()
    return w.grad


def s_none_saved_second_backward(t, f):
    w = _w(t)
    y = f.SaveNone.apply(w)
    y.sum().backward()
    y.sum().backward()
    return w.grad


def s_none_saved_read_after_backward(t, f):
    y = f.SaveNone.apply(_w(t))
    y.sum().backward()
    return y.grad_fn.saved_tensors


def s_autograd_grad_twice(t, f):
    w = _w(t)
    y = f.Sq.apply(w * 1).sum()
    t.autograd.grad(y, w)
    t.autograd.grad(y, w)


def s_input_changed(t, f):
    x = _w(t) * 1
    y = f.Sq.apply(x)
    x.add_(1)
    y.sum().backward()


def s_input_changed_not_read(t, f):
    w = _w(t)
    x = w * 1
    y = f.SaveNoRead.apply(x)
    x.add_(1)
    y.sum().backward()
    return w.grad


def s_leaf_changed(t, f):  # as an optimizer step between two backwards
    w = _w(t)
    loss = f.Sq.apply(w).sum()
    loss.backward(retain_graph=True)
    with t.no_grad():
        w.sub_(0.1 * w.grad)
    loss.backward()


def s_constant_changed(t, f):
    b = t.tensor([1.0, 2.0, 3.0])
    y = f.Mul.apply(_w(t), b)
    b.add_(1)
    y.sum().backward()


def s_output_changed(t, f):
    y = f.Exp.apply(_w(t) * 1)
    y.add_(1)
    y.sum().backward()


def s_output_second_backward(t, f):
    y = f.Exp.apply(_w(t) * 1)
    y.sum().backward()
    y.sum().backward()


def s_non_differentiable_output_changed(t, f):
    a, b = f.Two.apply(_w(t) * 1)
    b.add_(1)
    a.sum().backward()


def s_setup_context_output_changed(t, f):
    y = f.SqS.apply(_w(t) * 1)
    y.add_(1)
    y.sum().backward()


def s_saved_tensors_twice(t, f):
    w = _w(t)
    f.Twice.apply(w * 1).sum().backward()
    return w.grad


def s_grad_fn_saved_tensors_after_backward(t, f):
    y = f.Sq.apply(_w(t) * 1)
    y.sum().backward()
    return y.grad_fn.saved_tensors


def s_grad_fn_saved_tensors_after_change(t, f):
    x = _w(t) * 1
    y = f.Sq.apply(x)
    x.add_(1)
    return y.grad_fn.saved_tensors


def s_retain_then_change(t, f):
    x = _w(t) * 1
    y = f.Sq.apply(x)
    y.sum().backward(retain_graph=True)
    x.add_(1)
    y.sum().backward()


def s_create_graph_through_saved_output(t, f):
    w = _w(t)
    g, = t.autograd.grad(f.Exp.apply(w).sum(), w, create_graph=True)
    g2, = t.autograd.grad(g.sum(), w)
    return g, g2


def s_mark_dirty(t, f):
    w = _w(t)
    x = w * 1
    y = f.AddOne.apply(x)
    (y + x).sum().backward()
    return y is x, x._version, type(x.grad_fn).__name__, y, w.grad


def s_mark_dirty_view(t, f):
    w = _w(t, 4)
    z = w * 1
    f.AddOne.apply(z[:2])
    z.sum().backward()
    return z, w.grad


def s_mark_dirty_then_changed(t, f):
    y = f.AddOne.apply(_w(t) * 1)
    y.mul_(2)
    y.sum().backward()


def s_mark_dirty_invalidates_earlier_saves(t, f):
    w = _w(t)
    x = w * 1
    m = x * w
    f.AddOne.apply(x)
    m.sum().backward()


def s_mark_dirty_leaf(t, f):
    f.AddOne.apply(_w(t))


def s_mark_dirty_not_returned(t, f):
    class NotReturned(t.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return 2 * g
    NotReturned.apply(_w(t) * 1)


def s_mark_dirty_without_grad(t, f):
    x = t.tensor([1.0, 2.0])
    y = f.AddOne.apply(x)
    return y is x, x._version, y


def s_save_a_number(t, f):
    class SaveInt(t.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(3)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g
    SaveInt.apply(_w(t))


def s_saved_tensors_in_forward(t, f):
    class Peek(t.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.seen = ctx.saved_tensors
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g
    return Peek.apply(_w(t)).grad_fn.seen


def s_checkpoint_twice(t, f):
    t.manual_seed(0)
    lin = t.nn.Linear(3, 2)
    loss = t.utils.checkpoint.checkpoint(lin, _w(t).reshape(1, 3) * 1, use_reentrant=False).sum()
    loss.backward()
    loss.backward()


SCENARIOS = {k[2:]: v for k, v in dict(globals()).items() if k.startswith("s_")}


def _outcome(t, fn):
    """("ok", values as numpy) or ("raise", error category, message up to torch's hint)."""
    try:
        got = fn(t, _fns(t))
    except Exception as e:  # noqa: BLE001
        msg = str(e).replace("tracenn.", "torch.").split(" Hint:")[0]
        kind = "TypeError" if isinstance(e, TypeError) else "RuntimeError" if isinstance(e, RuntimeError) \
            else type(e).__name__
        return ("raise", kind, msg)

    def conv(v):
        if isinstance(v, (tuple, list)):
            return tuple(conv(x) for x in v)
        if hasattr(v, "detach"):
            return np.asarray(v.detach().numpy()).round(5).tolist()
        return v
    return ("ok", conv(got))


# ---- against torch --------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    import torch.utils.checkpoint  # noqa: F401
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _outcome(tracenn, SCENARIOS[name]) == _outcome(torch, SCENARIOS[name])


# ---- known values (no torch) ------------------------------------------------------------------

def _raises(name, error, match):
    with pytest.raises(error, match=match) as got:
        SCENARIOS[name](tracenn, _fns(tracenn))
    return str(got.value)


def test_a_second_backward_raises_unless_retain_graph():
    for name in ("second_backward", "second_backward_leaf_input", "autograd_grad_twice", "output_second_backward",
                 "grad_fn_saved_tensors_after_backward", "none_saved_read_after_backward", "checkpoint_twice"):
        _raises(name, BackwardError, FREED)
    w = SCENARIOS["retain_graph"](tracenn, _fns(tracenn))
    np.testing.assert_allclose(w.numpy(), 4 * np.linspace(0.5, 1.5, 3), rtol=1e-6)  # two backwards of x**2
    # What a backward never reads does not stop a second backward (torch frees it, raising only on a read).
    for name in ("nothing_saved_second_backward", "saved_not_read_second_backward", "none_saved_second_backward"):
        SCENARIOS[name](tracenn, _fns(tracenn))
    w = SCENARIOS["nothing_saved_second_backward"](tracenn, _fns(tracenn))
    np.testing.assert_allclose(w.numpy(), [4.0, 4.0, 4.0])


def test_a_saved_tensor_changed_in_place_raises_when_backward_reads_it():
    msg = _raises("input_changed", SavedTensorModifiedError,
                  MODIFIED + r": \[tracenn.FloatTensor \[3\]\], which is output 0 of Add, is at version 1; "
                  r"expected version 0 instead")
    assert "SqBackward saved it (ctx.saved_tensors[0])" in msg
    _raises("leaf_changed", SavedTensorModifiedError, r"\[3\]\] is at version 1; expected version 0")
    _raises("constant_changed", SavedTensorModifiedError, r"\[3\]\] is at version 1; expected version 0")
    _raises("retain_then_change", SavedTensorModifiedError, "output 0 of Add, is at version 1")
    _raises("grad_fn_saved_tensors_after_change", SavedTensorModifiedError, "output 0 of Add, is at version 1")
    w = SCENARIOS["input_changed_not_read"](tracenn, _fns(tracenn))  # never read: no error, as torch
    np.testing.assert_allclose(w.numpy(), [2.0, 2.0, 2.0])


def test_saved_outputs_are_checked_and_named_by_the_node():
    _raises("output_changed", SavedTensorModifiedError, "which is output 0 of Exp, is at version 1; expected version 0")
    _raises("setup_context_output_changed", SavedTensorModifiedError, "which is output 0 of SqS, is at version 1")
    msg = _raises("non_differentiable_output_changed", SavedTensorModifiedError, r"\[3\]\] is at version 1")
    assert "which is" not in msg  # (no grad_fn to name)
    f = _fns(tracenn)
    w = _w(tracenn)
    y = f.Exp.apply(w)
    s, = y.grad_fn.saved_tensors
    assert s is not y and type(s.grad_fn).__name__ == "ExpBackward" and s.requires_grad
    x = w * 1
    y = f.Sq.apply(x)
    assert y.grad_fn.saved_tensors[0] is x and y.grad_fn.saved_tensors[0] is x  # read twice: the input itself
    g, g2 = SCENARIOS["create_graph_through_saved_output"](tracenn, f)
    np.testing.assert_allclose(g2.numpy(), np.exp(np.linspace(0.5, 1.5, 3)), rtol=1e-6)  # through the node


def test_save_for_backward_arguments_and_reads():
    _raises("save_a_number", TypeError, "save_for_backward can only save variables, but argument 0 is of type int")
    assert SCENARIOS["saved_tensors_in_forward"](tracenn, _fns(tracenn)) == ()
    w = SCENARIOS["saved_tensors_twice"](tracenn, _fns(tracenn))
    np.testing.assert_allclose(w.numpy(), 2 * np.linspace(0.5, 1.5, 3), rtol=1e-6)


def test_grad_fn_reads_the_ctx_attributes():
    y = _fns(tracenn).NoSave.apply(_w(tracenn))
    assert y.grad_fn.scale == 2.0 and y.grad_fn.needs_input_grad == (True,)
    with pytest.raises(AttributeError, match="'NoSaveBackward' object has no attribute 'nope'"):
        y.grad_fn.nope


def test_mark_dirty_returns_the_input_made_by_the_node():
    same, version, name, y, g = SCENARIOS["mark_dirty"](tracenn, _fns(tracenn))
    assert same and version == 2 and name == "AddOneBackward"
    np.testing.assert_allclose(g.numpy(), [6.0, 6.0, 6.0])  # y and x are one tensor: 3 + 3
    z, g = SCENARIOS["mark_dirty_view"](tracenn, _fns(tracenn))
    np.testing.assert_allclose(g.numpy(), [3.0, 3.0, 1.0, 1.0])
    np.testing.assert_allclose(z.detach().numpy(), np.linspace(0.5, 1.5, 4) + [1, 1, 0, 0], rtol=1e-6)
    _raises("mark_dirty_then_changed", SavedTensorModifiedError,
            "output 0 of AddOne, is at version 3; expected version 2")
    _raises("mark_dirty_invalidates_earlier_saves", SavedTensorModifiedError,
            "output 0 of AddOne, is at version 2; expected version 0")
    _raises("mark_dirty_leaf", InplaceError,
            "a leaf Variable that requires grad has been used in an in-place operation")
    _raises("mark_dirty_not_returned", InplaceError, "Some elements marked as dirty during the forward method were not")
    assert SCENARIOS["mark_dirty_without_grad"](tracenn, _fns(tracenn))[:2] == (True, 2)


# ---- compiled -----------------------------------------------------------------------------------

def _step(kind):
    """A training step over a fresh Linear for ``kind`` (one of the compiled cases)."""
    tracenn.manual_seed(0)
    lin = tracenn.nn.Linear(3, 3)
    f = _fns(tracenn)

    def step(x):
        h = lin(x)
        if kind == "twice":
            loss = f.Sq.apply(h).sum()
            loss.backward()
            loss.backward()
        elif kind == "retain":
            loss = f.Sq.apply(h).sum()
            loss.backward(retain_graph=True)
            loss.backward()
        elif kind == "changed":
            loss = f.Sq.apply(h).sum()
            h.add_(1)
            loss.backward()
        elif kind == "output_changed":
            y = f.Exp.apply(h)
            y.add_(1)
            loss = y.sum()
            loss.backward()
        elif kind == "dirty":
            y = f.AddOne.apply(h)
            loss = (y * h).sum()
            loss.backward()
        elif kind == "dirty_changed":
            y = f.AddOne.apply(h)
            y.mul_(2)
            loss = y.sum()
            loss.backward()
        elif kind == "not_read":
            loss = f.SaveNoRead.apply(h).sum()
            h.add_(1)
            loss.backward()
        elif kind == "not_read_twice":
            u = h.detach().requires_grad_()
            loss = f.SaveNoRead.apply(u).sum()
            loss.backward()
            loss.backward()  # (what it saved is never read: the second backward runs, as in torch)
            return loss, u.grad
        return loss, lin.weight.grad
    return step


def _x():
    return tracenn.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) / 10)


@pytest.mark.parametrize("kind,error,match", [
    ("twice", BackwardError, FREED),
    ("changed", SavedTensorModifiedError, MODIFIED + r".*output 0 of Add, is at version 1; expected version 0"),
    ("output_changed", SavedTensorModifiedError, "output 0 of Exp, is at version 1; expected version 0"),
    ("dirty_changed", SavedTensorModifiedError, "output 0 of AddOne, is at version 3; expected version 2"),
])
def test_a_compiled_step_raises_as_eagerly(kind, error, match):
    with pytest.raises(error, match=match) as eager:
        _step(kind)(_x())
    cf = tracenn.compile(_step(kind))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no eager fallback)
        with pytest.raises(error, match=match) as compiled:
            cf(_x())
    assert str(compiled.value) == str(eager.value)
    assert any(__file__ in n for n in getattr(compiled.value, "__notes__", ()))  # the user's line


@pytest.mark.parametrize("kind", ["retain", "dirty", "not_read", "not_read_twice"])
def test_a_valid_compiled_step_equals_eager(kind):
    loss, g = _step(kind)(_x())
    cf = tracenn.compile(_step(kind))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_c, g_c = cf(_x())
    np.testing.assert_allclose(loss_c.item(), loss.item(), rtol=1e-5)
    np.testing.assert_allclose(g_c.numpy(), g.numpy(), rtol=1e-5)


def test_a_compiled_forward_then_eager_backwards_raise_as_eagerly():
    f = _fns(tracenn)

    @tracenn.compile
    def fwd(w):
        return f.Sq.apply(w * 1).sum()
    w = _w(tracenn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a custom Function whose backward runs later runs eagerly)
        loss = fwd(w)
        loss.backward(retain_graph=True)
        loss.backward()
        np.testing.assert_allclose(w.grad.numpy(), 4 * np.linspace(0.5, 1.5, 3), rtol=1e-6)
        with pytest.raises(BackwardError, match=FREED):
            loss.backward()
