"""Graph passes (tracenn/compiler/passes.py, tracenn/compiler/fold.py): each pass on hand-made and
traced graphs (the printed graph before and after pins what it does), compiled-with-passes vs eager
(outputs and gradients, train and eval), the checker after every pass, and user passes through
``tracenn.compile(..., passes=[...])``."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from helpers import assert_close, to_np
from tracenn import nn
from tracenn.compiler.check import GraphError, verify
from tracenn.compiler.fold import fold_batchnorm
from tracenn.compiler.graph import Graph, Value
from tracenn.compiler.passes import (DEFAULT_PASSES, FOLD_MAX_ELEMENTS, common_subexpressions,
                                     dead_code, fold_constants, fresh_name, insert_call, insert_node,
                                     run_passes)
from tracenn.errors import CompileError
from tracenn.utils._pytree import LEAF

F32 = np.dtype("float32")
PASSES = [dead_code, common_subexpressions, fold_constants, fold_batchnorm]


def code(graph) -> str:
    """The printed graph without the ``# module  file:line`` comments."""
    return "\n".join(line.split("   # ")[0].rstrip() for line in str(graph).splitlines())


def captured(fn, *args):
    """The graph ``fn(*args)`` traces to, before any pass."""
    cm = tracenn.compile(fn, passes=[], verify_passes=True)
    cm(*args)
    return cm.captured_graph


def ops(graph) -> list[str]:
    return [n.op.name for n in graph.nodes]


def hand_graph():
    """graph f(%x: f32[3]) -> f32[3]: two identical mul/sin chains and an unread exp."""
    g = Graph("f")
    x = Value("x", (3,), F32, "input")
    g.inputs = [x]
    a = insert_node(g, None, "mul", [x, 2.0], (F32,))
    b = insert_node(g, None, "mul", [x, 2.0], (F32,))
    insert_node(g, None, "exp", [x], (F32,))
    s = insert_node(g, None, "add", [insert_node(g, None, "sin", [a], (F32,)),
                                     insert_node(g, None, "sin", [b], (F32,))], (F32,))
    g.outputs, g.out_tree = [s], LEAF
    return g


# ---- the helpers passes are written with ---------------------------------------------------------

def test_hand_made_graph_prints_and_verifies():
    g = hand_graph()
    verify(g)
    assert code(g) == """\
graph f(%x: f32[3]) -> f32[3]
  %0: f32[3] = mul[dtype=f32] %x, 2.0
  %1: f32[3] = mul[dtype=f32] %x, 2.0
  %2: f32[3] = exp[dtype=f32] %x
  %3: f32[3] = sin[dtype=f32] %0
  %4: f32[3] = sin[dtype=f32] %1
  %5: f32[3] = add[dtype=f32] %3, %4
  return %5"""


def test_fresh_name():
    g = hand_graph()
    assert fresh_name(g) == "6"
    assert fresh_name(g) == "7"  # each call hands out a new name
    assert fresh_name(g, "c") == "c0"
    assert fresh_name(g.copy()) == "6"  # a copy is scanned afresh


def test_insert_node_types_by_the_shape_rule_and_places_before():
    g = hand_graph()
    add = g.nodes[-1]
    y = insert_node(g, add, "reshape", [g.inputs[0]], ((3, 1),))
    assert y.type == "f32[3,1]" and g.nodes[-2].outputs == [y]
    with pytest.raises(CompileError, match="matmul cannot take inputs"):
        insert_node(g, None, "matmul", [g.inputs[0], y.name], ())
    with pytest.raises(ValueError, match="not in this graph"):
        insert_node(g, hand_graph().nodes[0], "neg", [g.inputs[0]])


def test_insert_call_traces_a_function_into_the_graph():
    g = hand_graph()
    out = g.outputs[0]
    y = insert_call(g, None, lambda t: t * tracenn.tensor([1.0, 2.0, 3.0]) + 1, out)
    g.outputs = [y]
    verify(g)
    assert code(g).splitlines()[1] == "  %c0: f32[3] = constant [1., 2., 3.]"
    assert ops(g)[-2:] == ["mul", "add"]
    with pytest.raises(CompileError, match="draws random numbers"):
        insert_call(g, None, lambda t: t + tracenn.rand(3), out)


# ---- each pass -------------------------------------------------------------------------------------

def test_dead_code():
    g = run_passes(hand_graph(), [dead_code], check=True)
    assert "exp" not in ops(g)
    assert len(g.nodes) == 5


def test_dead_code_drops_unread_constants():
    def f(x):
        _ = x * tracenn.tensor([1.0, 2.0, 3.0])  # made inside forward: a constant of the graph
        return x + 1

    g = captured(f, tracenn.randn(3))
    assert "constant" in str(g)
    g2 = run_passes(g, [dead_code], check=True)
    assert code(g2) == "graph f(%x: f32[3]) -> f32[3]\n  %1: f32[3] = add[dtype=f32] %x, 1\n  return %1"


def test_common_subexpressions_hand_made():
    g = run_passes(hand_graph(), [common_subexpressions], check=True)
    assert code(g) == """\
graph f(%x: f32[3]) -> f32[3]
  %0: f32[3] = mul[dtype=f32] %x, 2.0
  %2: f32[3] = exp[dtype=f32] %x
  %3: f32[3] = sin[dtype=f32] %0
  %5: f32[3] = add[dtype=f32] %3, %3
  return %5"""


def test_common_subexpressions_keeps_different_literals_and_keys_apart():
    def f(x):
        return x + 1, x + 1.0, x + 2, x.sum(0), x.sum(1), x + 1

    g = run_passes(captured(f, tracenn.randn(2, 2)), [common_subexpressions], check=True)
    assert ops(g) == ["add", "add", "add", "sum", "sum"]  # only the second `x + 1` merges
    assert g.outputs[0] is g.outputs[5]


def test_common_subexpressions_merges_a_shared_weight_transpose():
    m = nn.Linear(3, 3)
    g = captured(lambda x: m(m(x)), tracenn.randn(2, 3))
    assert ops(g).count("permute") == 2
    g2 = run_passes(g, [common_subexpressions], check=True)
    assert ops(g2).count("permute") == 1


def test_common_subexpressions_never_merges_random_draws():
    g = Graph("f")
    key = Value("rng.key", (2,), np.dtype("uint32"), "rng")
    counter = Value("rng.counter", (), np.dtype("int64"), "rng")
    g.rng, g.draws = [(key, counter)], [2]
    a = insert_node(g, None, "uniform", [key, counter, 0.0, 1.0], ((3,), F32))
    b = insert_node(g, None, "uniform", [key, counter, 0.0, 1.0], ((3,), F32))
    s = insert_node(g, None, "add", [a, b], (F32,))
    g.outputs, g.out_tree = [s], LEAF
    g2 = run_passes(g, [common_subexpressions, fold_constants], check=True)
    assert ops(g2) == ["uniform", "uniform", "add"]


def test_common_subexpressions_compiled_matches_eager_with_dropout():
    def f(x):
        return F.dropout(x, 0.5) + F.dropout(x, 0.5)  # same op, same input: two different masks

    x = tracenn.randn(64)
    tracenn.manual_seed(3)
    want = f(x)
    tracenn.manual_seed(3)
    got = tracenn.compile(f, verify_passes=True)(x)
    assert_close(got, want)


def test_fold_constants():
    def f(x):
        return x + tracenn.arange(3) * 2 + tracenn.zeros(300, 300)[0, :3]

    g = captured(f, tracenn.randn(3))
    g2 = run_passes(g, [fold_constants], check=True)
    text = code(g2)
    assert "  %c0: i64[3] = constant [0, 2, 4]" in text  # arange and mul folded: one constant
    assert "arange" not in text and "full[shape=(300,300)" in text  # 90000 elements stay an op
    assert 300 * 300 > FOLD_MAX_ELEMENTS


def test_fold_constants_never_folds_state_inputs_or_rng():
    m = nn.Linear(2, 2)

    def f(x):
        return m(x) + x * 2 + tracenn.rand(2) + m.weight.sum()

    g = captured(f, tracenn.randn(2))
    g2 = run_passes(g, [fold_constants], check=True)
    assert code(g2) == code(g)


def test_fold_constants_of_a_constant_tensor():
    def f(x):
        return x * tracenn.tensor([1.0, 4.0, 9.0]).sqrt()

    g = run_passes(captured(f, tracenn.randn(3)), [fold_constants, dead_code], check=True)
    assert ops(g) == ["mul"]
    assert "constant [1., 2., 3.]" in code(g)


def test_fold_constants_leaves_captured_tensors_alone():
    c = tracenn.tensor([1.0, 4.0, 9.0])  # read through the closure: state, read at every call

    def f(x):
        return x * c.sqrt()

    cm = tracenn.compile(f, verify_passes=True)
    x = tracenn.randn(3)
    cm(x)
    assert ops(cm.graph) == ["sqrt", "mul"]
    c.mul_(4)
    assert_close(cm(x), f(x))


def test_fold_constants_folded_output_compiles():
    def h(x):
        return x * 2, tracenn.ones(2) * 3

    x = tracenn.randn(2, requires_grad=True)
    cm = tracenn.compile(h, verify_passes=True)
    a, b = cm(x)
    assert ops(cm.graph) == ["mul"]
    assert to_np(b).tolist() == [3.0, 3.0]
    a.sum().backward()
    assert to_np(x.grad).tolist() == [2.0, 2.0]


class _TwoBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)
        self.b = nn.Identity()

    def forward(self, x):
        self.a(x)  # the result is discarded: only the hook sees it
        return x + self.b(tracenn.ones(2))  # the hook's only input is a constant


def test_hook_nodes_are_never_dropped_folded_or_merged():
    m = _TwoBranches()
    seen = []
    m.a.register_forward_hook(lambda mod, args, out: seen.append("a"))
    m.b.register_forward_pre_hook(lambda mod, args: seen.append("b"))
    cm = tracenn.compile(m, verify_passes=True)
    x = tracenn.randn(2)
    for _ in range(2):
        assert_close(cm(x), x + 1)
    assert sorted(seen) == ["a", "a", "b", "b"]  # (their order is the hook lowering's business)
    assert ops(cm.graph).count("hook") == 2


# ---- batch norm folding ------------------------------------------------------------------------------

def _randomise_bn(m):
    """Non-trivial running statistics and affine parameters on every batch norm of ``m``."""
    with tracenn.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                if mod.running_mean is not None:
                    mod.running_mean.copy_(tracenn.randn(*mod.running_mean.shape))
                    mod.running_var.copy_(tracenn.rand(*mod.running_var.shape) + 0.5)
                if mod.weight is not None:
                    mod.weight.copy_(tracenn.randn(*mod.weight.shape))
                    mod.bias.copy_(tracenn.randn(*mod.bias.shape))
    return m


BN_MODELS = {
    "conv2d+bn": (lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), (2, 3, 6, 6)),
    "conv1d_nobias+bn_noaffine": (lambda: nn.Sequential(nn.Conv1d(3, 4, 3, bias=False),
                                                        nn.BatchNorm1d(4, affine=False)), (2, 3, 7)),
    "grouped_conv+bn": pytest.param(lambda: nn.Sequential(nn.Conv2d(4, 6, 3, groups=2, padding=1), nn.BatchNorm2d(6)),
                        (2, 4, 5, 5), marks=pytest.mark.slow),
    "conv3d+bn": pytest.param(lambda: nn.Sequential(nn.Conv3d(2, 3, 2), nn.BatchNorm3d(3)), (1, 2, 4, 4, 4),
                              marks=pytest.mark.slow),
    "linear+bn+relu": (lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU()), (5, 4)),
}


@pytest.mark.parametrize("make, shape", list(BN_MODELS.values()), ids=list(BN_MODELS))
def test_fold_batchnorm_eval_matches_eager(make, shape):
    m = _randomise_bn(make()).eval()
    x = tracenn.randn(*shape, requires_grad=True)
    cm = tracenn.compile(m, verify_passes=True)
    y = cm(x)
    big = [n.op.name for n in cm.graph.nodes if n.outputs[0].shape == y.shape]  # activation-sized
    assert big[:2] == ["matmul" if isinstance(m[0], nn.Linear) else "conv", "add"], cm.graph
    assert "sub" not in big and "mul" not in big  # the normalisation is gone
    w = tracenn.randn(*y.shape)
    (y * w).sum().backward()
    got = {k: to_np(p.grad) for k, p in m.named_parameters()}
    gx = to_np(x.grad)
    m.zero_grad()
    x.grad = None
    want = m(x)
    assert_close(y, want, rtol=1e-5, atol=1e-5)
    (want * w).sum().backward()
    assert_close(gx, x.grad, rtol=1e-5, atol=1e-5)
    for k, p in m.named_parameters():
        assert_close(got[k], p.grad, rtol=1e-4, atol=1e-5)


def test_fold_batchnorm_printed():
    m = _randomise_bn(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))).eval()

    def f(x):
        return m(x)

    g = run_passes(captured(f, tracenn.randn(2, 3, 6, 6)), [fold_batchnorm], check=True)
    assert code(g) == """\
graph f(%x: f32[2,3,6,6]) -> f32[2,8,4,4]    mode=eval
  %4: f32[1,8,1,1] = reshape[shape=(1,8,1,1)] %m.1.running_var
  %6: f32[1,8,1,1] = add[dtype=f32] %4, 1e-05
  %7: f32[1,8,1,1] = rsqrt[dtype=f32] %6
  %13: f32[8] = sub[dtype=f32] %m.0.bias, %m.1.running_mean
  %14: f32[8] = reshape[shape=(8,)] %7
  %15: f32[8] = mul[dtype=f32] %13, %14
  %16: f32[8] = mul[dtype=f32] %14, %m.1.weight
  %17: f32[8] = mul[dtype=f32] %15, %m.1.weight
  %18: f32[8] = add[dtype=f32] %17, %m.1.bias
  %19: f32[8,1,1,1] = reshape[shape=(8,1,1,1)] %16
  %20: f32[8,3,3,3] = mul[dtype=f32] %m.0.weight, %19
  %21: f32[2,8,4,4] = conv[stride=(1,1), padding=((0,0),(0,0)), dilation=(1,1), groups=1] %x, %20
  %22: f32[1,8,1,1] = reshape[shape=(1,8,1,1)] %18
  %23: f32[2,8,4,4] = add[dtype=f32] %21, %22
  return %23"""


def test_fold_batchnorm_leaves_train_mode_alone():
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).train()
    g = captured(m, tracenn.randn(2, 3, 6, 6))
    assert str(run_passes(g, [fold_batchnorm], check=True)) == str(g)


def test_fold_batchnorm_leaves_shared_intermediates_alone():
    m = _randomise_bn(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))).eval()

    def f(x):
        c = m[0](x)
        return m[1](c), c  # the conv output has a second reader

    g = captured(f, tracenn.randn(1, 3, 5, 5))
    assert str(run_passes(g, [fold_batchnorm], check=True)) == str(g)


def test_fold_batchnorm_stays_right_when_parameters_change():
    m = _randomise_bn(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))).eval()
    cm = tracenn.compile(m, verify_passes=True)
    x = tracenn.randn(2, 3, 6, 6)
    with tracenn.no_grad():
        assert_close(cm(x), m(x), rtol=1e-5, atol=1e-5)
        _randomise_bn(m)
        m[0].weight.mul_(2)
        assert_close(cm(x), m(x), rtol=1e-5, atol=1e-5)
    assert "1 cached program(s)" in cm.explain()  # the same program, new parameter values


def test_fold_batchnorm_torch_parity(torch):
    m = _randomise_bn(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())).eval()
    tm = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                             torch.nn.ReLU()).eval()
    tm.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})
    x = tracenn.randn(2, 3, 6, 6)
    with tracenn.no_grad():
        assert_close(tracenn.compile(m, verify_passes=True)(x), tm(torch.tensor(to_np(x))),
                     rtol=1e-4, atol=1e-5)


# ---- the pipeline: compiled with the default passes vs eager ---------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 3 * 3, 5)
        self.bn1 = nn.BatchNorm1d(5)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x))).flatten(1)
        z = self.bn1(self.fc(y))
        scale = tracenn.tensor([0.5])  # made in forward: a constant of the graph (an attribute is an input)
        return z * (scale * 2) + z * (scale * 2), z.tanh()


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_default_passes_match_eager(mode):
    m = _randomise_bn(Net())
    m.train(mode == "train")
    x = tracenn.randn(4, 1, 3, 3, requires_grad=True)
    cm = tracenn.compile(m, verify_passes=True)
    state0 = {k: to_np(v) for k, v in m.state_dict().items()}
    a, b = cm(x)
    (a.sum() + (b * b).sum()).backward()
    got = {k: to_np(p.grad) for k, p in m.named_parameters()}
    got_x = to_np(x.grad)
    state1 = {k: to_np(v) for k, v in m.state_dict().items()}
    with tracenn.no_grad():  # back to the state before the compiled call, then run eagerly
        for k, v in m.state_dict().items():
            v.copy_(tracenn.tensor(state0[k]))
    m.zero_grad()
    x.grad = None
    ea, eb = m(x)
    (ea.sum() + (eb * eb).sum()).backward()
    assert_close(a, ea, rtol=1e-5, atol=1e-5)
    assert_close(b, eb, rtol=1e-5, atol=1e-5)
    assert_close(got_x, x.grad, rtol=1e-4, atol=1e-5)
    for k, p in m.named_parameters():  # (a bias before a train-mode batch norm: grad 0 + rounding)
        assert_close(got[k], p.grad, rtol=1e-4, atol=1e-4)
    for k, v in m.state_dict().items():  # running statistics written back as eager
        assert_close(state1[k], v, rtol=1e-5, atol=1e-6)
    assert len(cm.graph.nodes) < len(cm.captured_graph.nodes)  # the passes did something
    if mode == "eval":
        assert ops(cm.graph).count("sub") <= 2  # both batch norms folded


# ---- the checker and run_passes ----------------------------------------------------------------------

def _broken(how):
    def broken(graph):
        g = graph.copy()
        if how == "order":
            g.nodes = g.nodes[::-1]
        elif how == "type":
            n = g.nodes[0]
            o = n.outputs[0]
            n.outputs = [Value(o.name, (7,), o.dtype, node=n)]
            g.replace_uses(o, n.outputs[0])
        elif how == "name":
            n = g.nodes[1]
            o = n.outputs[0]
            n.outputs = [Value(g.nodes[0].outputs[0].name, o.shape, o.dtype, node=n)]
            g.replace_uses(o, n.outputs[0])
        return g
    return broken


@pytest.mark.parametrize("how, match", [
    ("order", r"%\w+ is used before it is defined after pass 'broken'"),
    ("type", r"%0 is typed f32\[7\] but mul's shape rule gives f32\[3\] after pass 'broken'"),
    ("name", r"value name %0 is defined twice after pass 'broken'"),
])
def test_checker_catches_a_broken_pass(how, match):
    with pytest.raises(GraphError, match=match):
        run_passes(hand_graph(), [_broken(how)], check=True)
    run_passes(hand_graph(), [_broken(how)])  # unchecked: no error (the tests run with check on)


def test_checker_through_compile():
    cm = tracenn.compile(lambda x: (x * 2).sin(), passes=[_broken("order")], verify_passes=True)
    with pytest.raises(GraphError, match="after pass 'broken'"):
        cm(tracenn.randn(3))


def test_a_pass_must_return_a_graph():
    def forgetful(graph):
        graph.copy()

    with pytest.raises(TypeError, match="graph pass 'forgetful' returned NoneType, expected a Graph"):
        run_passes(hand_graph(), [forgetful])


def _snapshot(g):
    return (str(g), [(n, list(n.inputs), list(n.outputs), n.key) for n in g.nodes], list(g.outputs),
            dict(g.writes), dict(g.consts), dict(g.const_values), [(v.name, v.shape, v.dtype) for v in g.leaves()])


def _same(a, b):
    assert a[0] == b[0]
    assert len(a[1]) == len(b[1])
    for (n1, i1, o1, k1), (n2, i2, o2, k2) in zip(a[1], b[1]):
        assert n1 is n2 and k1 == k2
        assert all(x is y for x, y in zip(i1, i2)) and all(x is y for x, y in zip(o1, o2))
    assert all(x is y for x, y in zip(a[2], b[2])) and a[3] == b[3]
    assert a[4].keys() == b[4].keys() and a[5] == b[5] and a[6] == b[6]


@pytest.mark.parametrize("p", PASSES, ids=lambda p: p.__name__)
def test_passes_do_not_mutate_their_input(p):
    m = _randomise_bn(Net()).eval()
    for g in (hand_graph(), captured(m, tracenn.randn(2, 1, 3, 3))):
        before = _snapshot(g)
        out = p(g)
        assert out is not g
        _same(before, _snapshot(g))


def test_passes_are_idempotent_on_the_pipeline_result():
    m = _randomise_bn(Net()).eval()
    g = run_passes(captured(m, tracenn.randn(2, 1, 3, 3)), check=True)
    assert code(run_passes(g, check=True)) == code(g)


# ---- user passes -------------------------------------------------------------------------------------

def relu_to_gelu(graph):
    g = graph.copy()
    for node in list(g.nodes):
        if node.op.name == "relu":
            y = insert_call(g, node, F.gelu, node.inputs[0])
            g.replace_uses(node.outputs[0], y)
            g.nodes.remove(node)
    return g


def relu_to_sigmoid(graph):  # one primitive for another, with insert_node
    g = graph.copy()
    for node in list(g.nodes):
        if node.op.name == "relu":
            x = node.inputs[0]
            y = insert_node(g, node, "sigmoid", [x], (x.dtype,))
            g.replace_uses(node.outputs[0], y)
            g.nodes.remove(node)
    return g


@pytest.mark.parametrize("user_pass, act", [(relu_to_gelu, F.gelu), (relu_to_sigmoid, tracenn.sigmoid)])
def test_user_pass_through_compile(user_pass, act):
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = tracenn.randn(5, 4, requires_grad=True)
    cm = tracenn.compile(m, passes=[*DEFAULT_PASSES, user_pass], verify_passes=True)
    y = cm(x)
    assert "relu" in ops(cm.captured_graph) and "relu" not in ops(cm.graph)
    want = m[2](act(m[0](x)))
    assert_close(y, want, rtol=1e-5, atol=1e-6)
    y.sum().backward()
    gx = to_np(x.grad)
    x.grad = None
    want.sum().backward()
    assert_close(gx, x.grad, rtol=1e-5, atol=1e-6)
    relu_line = [n for n in cm.captured_graph.nodes if n.op.name == "relu"][0]
    assert all(n.module == "1" and n.source == relu_line.source
               for n in cm.graph.nodes if n.op.name in ("sigmoid", "erf"))


def test_no_passes_runs_the_captured_graph():
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    cm = tracenn.compile(m, passes=[])
    cm(tracenn.randn(2, 4))
    assert cm.graph is cm.captured_graph or str(cm.graph) == str(cm.captured_graph)
