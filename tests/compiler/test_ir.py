"""The printed IR (tracenn/compiler/graph.py, grammar in docs/ir.md): golden text for a few models,
the module-level view, the rich renderings, and the module path and user line each node records.

Golden text names the source as ``test_ir.py:LINE``. The lines are computed from this file with
``inspect`` (``$name`` placeholders, filled by :func:`golden`), so editing the file above a model
does not break its golden text, and the text never depends on where the file lives.
"""
from __future__ import annotations

import inspect
import io
import string
from collections import namedtuple

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn import nn
from tracenn.compiler.check import verify
from tracenn.compiler.graph import Graph, Node, Value, format_node
from tracenn.utils._pytree import LEAF

FILE = "test_ir.py"


def line_of(fn, snippet: str) -> str:
    """``test_ir.py:N`` for the first line of ``fn``'s source that contains ``snippet``."""
    src, start = inspect.getsourcelines(fn)
    for i, text in enumerate(src):
        if snippet in text:
            return f"{FILE}:{start + i}"
    raise AssertionError(f"{snippet!r} is not in {fn.__qualname__}")


def golden(template: str, **where) -> str:
    """``template`` with ``$name`` replaced by ``where[name]`` (source locations)."""
    return string.Template(template).substitute(where)


def call(cm, *args, **kwargs):
    return cm(*args, **kwargs)  # the user's line of every node of a model without a user forward


CALL = line_of(call, "return cm(")


def compiled(model, *args, **kwargs):
    """Compile ``model`` with the checker on after every pass and call it once."""
    cm = tracenn.compile(model, verify_passes=True)
    call(cm, *args, **kwargs)
    verify(cm.captured_graph)
    verify(cm.graph)
    return cm


# ---- models --------------------------------------------------------------------------------------

def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


class Net(nn.Module):
    """Conv-BN-ReLU-pool-Dropout-Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 3 * 3, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.conv1(x)))
        x = F.max_pool2d(x, 2)
        x = self.drop(x)
        x = tracenn.flatten(x, 1)
        return self.fc(x)


@pytest.fixture(scope="module")
def cnn():
    """The CNN compiled in train mode (shared: several tests read its graph)."""
    return compiled(Net(), tracenn.randn(2, 1, 8, 8))


NET = dict(conv=line_of(Net.forward, "F.relu("), pool=line_of(Net.forward, "max_pool2d"),
           drop=line_of(Net.forward, "self.drop("), flat=line_of(Net.forward, "flatten"),
           fc=line_of(Net.forward, "self.fc("))

Pair = namedtuple("Pair", ["lo", "hi"])


def summarize(x, k=2):
    top = x[:, :k] * 0.5
    rest = x.t()[k:]
    return {"top": top, "rest": rest}, Pair(x.amin(1), x.amax(1)), (x.shape[1], "cols")


SUM = dict(top=line_of(summarize, "top ="), rest=line_of(summarize, "rest ="),
           ret=line_of(summarize, "return {"))


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin = nn.Linear(d, d)
        self.act = nn.Tanh()

    def forward(self, x):
        return x + self.act(self.lin(x))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 4)
        self.blocks = nn.Sequential(Block(4), Block(4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        h = self.blocks(self.embed(x))
        return self.head(h).sum(1)


ENC = dict(blocks=line_of(Encoder.forward, "h = self.blocks"), head=line_of(Encoder.forward, "self.head("),
           block=line_of(Block.forward, "return x +"))


# ---- golden text ---------------------------------------------------------------------------------

def test_mlp_train():
    cm = compiled(mlp(), tracenn.randn(2, 4))
    assert str(cm.captured_graph) == golden("""\
graph Sequential(%input: f32[2,4]) -> f32[2,2]    mode=train
  %0: f32[4,8] = permute[dims=(1,0)] %"0.weight"   # 0  $c
  %1: f32[2,8] = matmul %input, %0                 # 0  $c
  %2: f32[2,8] = add[dtype=f32] %1, %"0.bias"      # 0  $c
  %3: f32[2,8] = relu %2                           # 1  $c
  %4: f32[8,2] = permute[dims=(1,0)] %"2.weight"   # 2  $c
  %5: f32[2,2] = matmul %3, %4                     # 2  $c
  %6: f32[2,2] = add[dtype=f32] %5, %"2.bias"      # 2  $c
  return %6""", c=CALL)


def test_cnn_train_writes_and_rng(cnn):
    cm = cnn
    assert str(cm.captured_graph) == golden("""\
graph Net(%x: f32[2,1,8,8]) -> f32[2,10]    mode=train
  %0: f32[2,4,6,6] = conv[stride=(1,1), padding=((0,0),(0,0)), dilation=(1,1), groups=1] %x, %conv1.weight   # conv1  $conv
  %1: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %conv1.bias          # conv1  $conv
  %2: f32[2,4,6,6] = add[dtype=f32] %0, %1                         # conv1  $conv
  %3: i64[] = add[dtype=i64] %bn.num_batches_tracked, 1            # bn  $conv
  %4: f32[4] = mean[dims=(0,2,3), keepdim=False] %2                # bn  $conv
  %5: f32[4] = var[dims=(0,2,3), correction=0, keepdim=False] %2   # bn  $conv
  %6: f32[4] = stop_gradient %4                                    # bn  $conv
  %7: f32[4] = lerp[dtype=f32] %bn.running_mean, %6, 0.1           # bn  $conv
  %8: f32[4] = mul[dtype=f32] %5, 1.0140845                        # bn  $conv
  %9: f32[4] = stop_gradient %8                                    # bn  $conv
  %10: f32[4] = lerp[dtype=f32] %bn.running_var, %9, 0.1           # bn  $conv
  %11: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %4                  # bn  $conv
  %12: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %5                  # bn  $conv
  %13: f32[2,4,6,6] = sub[dtype=f32] %2, %11                       # bn  $conv
  %14: f32[1,4,1,1] = add[dtype=f32] %12, 1e-05                    # bn  $conv
  %15: f32[1,4,1,1] = rsqrt[dtype=f32] %14                         # bn  $conv
  %16: f32[2,4,6,6] = mul[dtype=f32] %13, %15                      # bn  $conv
  %17: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %bn.weight          # bn  $conv
  %18: f32[2,4,6,6] = mul[dtype=f32] %16, %17                      # bn  $conv
  %19: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %bn.bias            # bn  $conv
  %20: f32[2,4,6,6] = add[dtype=f32] %18, %19                      # bn  $conv
  %21: f32[2,4,6,6] = relu %20                                     # $conv
  %22: f32[2,4,3,3] = reduce_window[kind='max', window=(2,2), strides=(2,2), padding=((0,0),(0,0)), dilation=(1,1)] %21   # $pool
  %23: f32[2,4,3,3] = uniform[shape=(2,4,3,3), dtype=f32] %rng.key, %rng.counter, 0.0, 1.0   # drop  $drop
  %24: bool[2,4,3,3] = ge[dtype=f32] %23, 0.5                      # drop  $drop
  %25: f32[2,4,3,3] = mul[dtype=f32] %22, 2.0                      # drop  $drop
  %26: f32[2,4,3,3] = where[dtype=f32] %24, %25, 0.0               # drop  $drop
  %27: f32[2,36] = reshape[shape=(2,36)] %26                       # $flat
  %28: f32[36,10] = permute[dims=(1,0)] %fc.weight                 # fc  $fc
  %29: f32[2,10] = matmul %27, %28                                 # fc  $fc
  %30: f32[2,10] = add[dtype=f32] %29, %fc.bias                    # fc  $fc
  bn.running_mean <- %7
  bn.running_var <- %10
  bn.num_batches_tracked <- %3
  rng.counter += 1
  return %30""", **NET)


def test_cnn_eval():
    model = Net().eval()
    cm = compiled(model, tracenn.randn(2, 1, 8, 8))
    assert str(cm.captured_graph) == golden("""\
graph Net(%x: f32[2,1,8,8]) -> f32[2,10]    mode=eval
  %0: f32[2,4,6,6] = conv[stride=(1,1), padding=((0,0),(0,0)), dilation=(1,1), groups=1] %x, %conv1.weight   # conv1  $conv
  %1: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %conv1.bias        # conv1  $conv
  %2: f32[2,4,6,6] = add[dtype=f32] %0, %1                       # conv1  $conv
  %3: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %bn.running_mean   # bn  $conv
  %4: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %bn.running_var    # bn  $conv
  %5: f32[2,4,6,6] = sub[dtype=f32] %2, %3                       # bn  $conv
  %6: f32[1,4,1,1] = add[dtype=f32] %4, 1e-05                    # bn  $conv
  %7: f32[1,4,1,1] = rsqrt[dtype=f32] %6                         # bn  $conv
  %8: f32[2,4,6,6] = mul[dtype=f32] %5, %7                       # bn  $conv
  %9: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %bn.weight         # bn  $conv
  %10: f32[2,4,6,6] = mul[dtype=f32] %8, %9                      # bn  $conv
  %11: f32[1,4,1,1] = reshape[shape=(1,4,1,1)] %bn.bias          # bn  $conv
  %12: f32[2,4,6,6] = add[dtype=f32] %10, %11                    # bn  $conv
  %13: f32[2,4,6,6] = relu %12                                   # $conv
  %14: f32[2,4,3,3] = reduce_window[kind='max', window=(2,2), strides=(2,2), padding=((0,0),(0,0)), dilation=(1,1)] %13   # $pool
  %15: f32[2,36] = reshape[shape=(2,36)] %14                     # $flat
  %16: f32[36,10] = permute[dims=(1,0)] %fc.weight               # fc  $fc
  %17: f32[2,10] = matmul %15, %16                               # fc  $fc
  %18: f32[2,10] = add[dtype=f32] %17, %fc.bias                  # fc  $fc
  return %18""", **NET)
    # eval mode: no buffer writes and no randomness, in the graph that runs too
    assert not cm.graph.writes and not cm.graph.rng
    assert "<-" not in str(cm.graph) and "rng" not in str(cm.graph)


def test_cnn_module_view(cnn):
    cm = cnn
    assert cm.captured_graph.module_view() == golden("""\
graph Net(%x: f32[2,1,8,8]) -> f32[2,10]    mode=train
  %2: f32[2,4,6,6] = call_module conv1(%x)                            # Conv2d  $conv
  %3: i64[], %7: f32[4], %10: f32[4], %20: f32[2,4,6,6] = call_module bn(%2)   # BatchNorm2d  $conv
  %21: f32[2,4,6,6] = relu %20                                        # $conv
  %22: f32[2,4,3,3] = reduce_window[kind='max', window=(2,2), strides=(2,2), padding=((0,0),(0,0)), dilation=(1,1)] %21   # $pool
  %26: f32[2,4,3,3] = call_module drop(%rng.key, %rng.counter, %22)   # Dropout  $drop
  %27: f32[2,36] = reshape[shape=(2,36)] %26                          # $flat
  %30: f32[2,10] = call_module fc(%27)                                # Linear  $fc
  bn.running_mean <- %7
  bn.running_var <- %10
  bn.num_batches_tracked <- %3
  rng.counter += 1
  return %30""", **NET)


def test_function_with_structured_and_non_tensor_outputs():
    cm = compiled(summarize, tracenn.randn(3, 5))
    assert str(cm.captured_graph) == golden("""\
graph summarize(%x: f32[3,5]) -> ({'top': f32[3,2], 'rest': f32[3,3]}, Pair(lo=f32[3], hi=f32[3]), (5, 'cols'))
  %0: f32[3,2] = slice[spec=[:,:2]] %x             # $top
  %1: f32[3,2] = mul[dtype=f32] %0, 0.5            # $top
  %2: f32[5,3] = permute[dims=(1,0)] %x            # $rest
  %3: f32[3,3] = slice[spec=[2:]] %2               # $rest
  %4: f32[3] = amin[dims=(1,), keepdim=False] %x   # $ret
  %5: f32[3] = amax[dims=(1,), keepdim=False] %x   # $ret
  return ({'top': %1, 'rest': %3}, Pair(lo=%4, hi=%5), (5, 'cols'))""", **SUM)
    out = call(cm, tracenn.randn(3, 5))
    assert isinstance(out[1], Pair) and out[2] == (5, "cols") and list(out[0]) == ["top", "rest"]


def test_nested_module_view():
    cm = compiled(Encoder(), tracenn.randn(2, 3))
    g = cm.captured_graph
    assert g.module_view() == golden("""\
graph Encoder(%x: f32[2,3]) -> f32[2]    mode=train
  %2: f32[2,4] = call_module embed(%x)              # Linear  $blocks
  %12: f32[2,4] = call_module blocks(%2)            # Sequential  $block
  %15: f32[2,2] = call_module head(%12)             # Linear  $head
  %16: f32[2] = sum[dims=(1,), keepdim=False] %15   # $head
  return %16""", **ENC)
    assert g.module_view(2) == golden("""\
graph Encoder(%x: f32[2,3]) -> f32[2]    mode=train
  %2: f32[2,4] = call_module embed(%x)              # Linear  $blocks
  %7: f32[2,4] = call_module blocks.0(%2)           # Block  $block
  %12: f32[2,4] = call_module blocks.1(%7)          # Block  $block
  %15: f32[2,2] = call_module head(%12)             # Linear  $head
  %16: f32[2] = sum[dims=(1,), keepdim=False] %15   # $head
  return %16""", **ENC)
    # depth 3: a block's own node (the residual add) gets a line between its children's
    assert g.module_view(3) == golden("""\
graph Encoder(%x: f32[2,3]) -> f32[2]    mode=train
  %2: f32[2,4] = call_module embed(%x)              # Linear  $blocks
  %5: f32[2,4] = call_module blocks.0.lin(%2)       # Linear  $block
  %6: f32[2,4] = call_module blocks.0.act(%5)       # Tanh  $block
  %7: f32[2,4] = call_module blocks.0(%2, %6)       # Block  $block
  %10: f32[2,4] = call_module blocks.1.lin(%7)      # Linear  $block
  %11: f32[2,4] = call_module blocks.1.act(%10)     # Tanh  $block
  %12: f32[2,4] = call_module blocks.1(%7, %11)     # Block  $block
  %15: f32[2,2] = call_module head(%12)             # Linear  $head
  %16: f32[2] = sum[dims=(1,), keepdim=False] %15   # $head
  return %16""", **ENC)
    # a module's own parameters are not listed as call_module inputs; a shared one would be
    assert "embed.weight" not in g.module_view() and "%x" in g.module_view()


# ---- a hand-made graph: every line kind, fixed sources -------------------------------------------

F32 = np.dtype("float32")


def hand_graph() -> Graph:
    """graph Net(%x: f32[2,4]) -> (f32[2,3], f32[3]): a parameter named like a Sequential's, a
    constant, a buffer write, one random draw and a dict output."""
    from tracenn.ops import OPS
    g = Graph("Net", "train")
    x = Value("x", (2, 4), F32, "input")
    w = Value("0.weight", (3, 4), F32, "param")
    rm = Value("1.running_mean", (3,), F32, "buffer")
    key = Value("rng.key", (2,), np.uint32, "rng")
    counter = Value("rng.counter", (), np.int64, "rng")
    c = Value("c0", (3,), F32, "const")
    g.inputs, g.state = [x], {"0.weight": w, "1.running_mean": rm}
    g.consts, g.const_values = {"c0": np.array([1.0, 2.0, 3.0], F32)}, {"c0": c}
    g.rng, g.draws = [(key, counter)], [1]

    def node(op, key_, ins, shape, module="0", source="/home/me/project/net.py:12"):
        n = Node(OPS[op], key_, ins, (), module, source)
        n.outputs = [Value(str(len(g.nodes)), shape, F32, "op", n)]
        g.nodes.append(n)
        return n.outputs[0]

    t = node("permute", ((1, 0),), [w], (4, 3))
    y = node("matmul", (), [x, t], (2, 3))
    y = node("add", (F32,), [y, c], (2, 3))
    m = node("mean", ((0,), False, None), [y], (3,), "1", "/elsewhere/net.py:13")
    r = node("lerp", (F32,), [rm, m, 0.1], (3,), "1", "/elsewhere/net.py:13")
    u = node("uniform", ((2, 3), F32), [key, counter, 0.0, 1.0], (2, 3), "2", "/x/net.py:14")
    y = node("mul", (F32,), [y, u], (2, 3), "", "/x/net.py:15")
    g.writes = {"1.running_mean": r}
    g.outputs, g.out_tree = [y, r], {"y": LEAF, "mean": LEAF}
    return g


HAND = """\
graph Net(%x: f32[2,4]) -> {'y': f32[2,3], 'mean': f32[3]}    mode=train
  %c0: f32[3] = constant [1., 2., 3.]
  %0: f32[4,3] = permute[dims=(1,0)] %"0.weight"            # 0  net.py:12
  %1: f32[2,3] = matmul %x, %0                              # 0  net.py:12
  %2: f32[2,3] = add[dtype=f32] %1, %c0                     # 0  net.py:12
  %3: f32[3] = mean[dims=(0,), keepdim=False] %2            # 1  net.py:13
  %4: f32[3] = lerp[dtype=f32] %"1.running_mean", %3, 0.1   # 1  net.py:13
  %5: f32[2,3] = uniform[shape=(2,3), dtype=f32] %rng.key, %rng.counter, 0.0, 1.0   # 2  net.py:14
  %6: f32[2,3] = mul[dtype=f32] %2, %5                      # net.py:15
  1.running_mean <- %4
  rng.counter += 1
  return {'y': %6, 'mean': %4}"""

TABULAR = """\
graph Net(%x: f32[2,4]) -> {'y': f32[2,3], 'mean': f32[3]}    mode=train
┏━━━━━━┳━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━┓
┃ name ┃ type     ┃ op      ┃ attributes               ┃ inputs                           ┃ module ┃ source    ┃
┡━━━━━━╇━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━┩
│ %0   │ f32[4,3] │ permute │ dims=(1,0)               │ %"0.weight"                      │ 0      │ net.py:12 │
│ %1   │ f32[2,3] │ matmul  │                          │ %x, %0                           │ 0      │ net.py:12 │
│ %2   │ f32[2,3] │ add     │ dtype=f32                │ %1, %c0                          │ 0      │ net.py:12 │
│ %3   │ f32[3]   │ mean    │ dims=(0,), keepdim=False │ %2                               │ 1      │ net.py:13 │
│ %4   │ f32[3]   │ lerp    │ dtype=f32                │ %"1.running_mean", %3, 0.1       │ 1      │ net.py:13 │
│ %5   │ f32[2,3] │ uniform │ shape=(2,3), dtype=f32   │ %rng.key, %rng.counter, 0.0, 1.0 │ 2      │ net.py:14 │
│ %6   │ f32[2,3] │ mul     │ dtype=f32                │ %2, %5                           │        │ net.py:15 │
└──────┴──────────┴─────────┴──────────────────────────┴──────────────────────────────────┴────────┴───────────┘
1.running_mean <- %4
rng.counter += 1
return {'y': %6, 'mean': %4}"""


def test_hand_made_graph_prints_every_line_kind():
    g = hand_graph()
    verify(g)
    assert str(g) == HAND


def test_print_is_the_text_form():
    s = io.StringIO()
    hand_graph().print(file=s)
    assert s.getvalue() == HAND + "\n"


def test_print_tabular():
    s = io.StringIO()
    hand_graph().print_tabular(file=s, width=120)
    text = "\n".join(line.rstrip() for line in s.getvalue().rstrip().splitlines())
    assert text == TABULAR


def test_tabular_rows_match_the_text_form():
    g = hand_graph()
    rows = g.tabular()
    assert rows[0] == ("%0", "f32[4,3]", "permute", "dims=(1,0)", '%"0.weight"', "0", "net.py:12")
    assert rows[4] == ("%4", "f32[3]", "lerp", "dtype=f32", '%"1.running_mean", %3, 0.1', "1", "net.py:13")
    assert rows[6][5:] == ("", "net.py:15")
    assert len(rows) == len(g.nodes)


def test_hand_made_module_view():
    assert hand_graph().module_view() == """\
graph Net(%x: f32[2,4]) -> {'y': f32[2,3], 'mean': f32[3]}    mode=train
  %c0: f32[3] = constant [1., 2., 3.]
  %2: f32[2,3] = call_module 0(%x, %c0)                  # net.py:12
  %4: f32[3] = call_module 1(%2)                         # net.py:13
  %5: f32[2,3] = call_module 2(%rng.key, %rng.counter)   # net.py:14
  %6: f32[2,3] = mul[dtype=f32] %2, %5                   # net.py:15
  1.running_mean <- %4
  rng.counter += 1
  return {'y': %6, 'mean': %4}"""


def test_format_node_and_repr_have_no_alignment():
    g = hand_graph()
    assert format_node(g.nodes[1]) == "%1: f32[2,3] = matmul %x, %0   # 0  net.py:12"
    assert repr(g.nodes[6]) == "%6: f32[2,3] = mul[dtype=f32] %2, %5   # net.py:15"
    assert repr(g) == "<Graph Net: 7 nodes>"


def test_comments_share_one_column_except_long_lines(cnn):
    cm = cnn
    lines = [ln for ln in str(cm.captured_graph).splitlines() if "   # " in ln]
    short = [ln for ln in lines if len(ln.split("   # ")[0].rstrip()) <= 74]
    assert len({ln.index("   # ") for ln in short}) == 1
    for ln in lines:
        if ln not in short:  # longer than the column: three spaces, no padding
            assert ln.split("   # ")[0] == ln.split("   # ")[0].rstrip()


# ---- what each node records: module path and the user's line -------------------------------------

def test_module_paths_of_a_sequential_inside_a_model():
    class Features(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))
            self.classifier = nn.Linear(2, 3)

        def forward(self, x):
            return self.classifier(self.features(x).mean((2, 3)))

    cm = compiled(Features(), tracenn.randn(1, 1, 6, 6))
    g = cm.captured_graph
    by_module = {}
    for n in g.nodes:
        by_module.setdefault(n.module, []).append(n.op.name)
    assert list(by_module) == ["features.0", "features.1", "features.2", "", "classifier"]
    assert by_module["features.0"][0] == "conv" and by_module["features.1"] == ["relu"]
    assert by_module[""] == ["mean"]
    # the module of every parameter a node reads is the node's module (or its parent)
    for n in g.nodes:
        for v in n.inputs:
            if isinstance(v, Value) and v.kind == "param":
                assert v.name.startswith(n.module + ".")
    assert g.modules["features.0"] == "Conv2d" and g.modules["features"] == "Sequential"
    assert "# features.0  " in str(g) and "# classifier  " in str(g)


def test_module_paths_of_a_transformer_encoder():
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.TransformerEncoder(layer, 2)

        def forward(self, x):
            return self.encoder(x)

    cm = compiled(Model(), tracenn.randn(1, 3, 4))
    g = cm.captured_graph
    paths = {n.module for n in g.nodes}
    for i in (0, 1):
        for child in ("self_attn", "linear1", "linear2", "norm1", "norm2"):
            assert f"encoder.layers.{i}.{child}" in paths
    assert g.modules["encoder.layers.1.self_attn"] == "MultiheadAttention"
    # the attention's in-projection is read by nodes of that attention module
    readers = {n.module for n in g.nodes for v in n.inputs
               if isinstance(v, Value) and v.name == "encoder.layers.1.self_attn.in_proj_weight"}
    assert readers == {"encoder.layers.1.self_attn"}
    # the layer's own nodes (the residual adds) carry the layer's path
    assert "encoder.layers.1" in paths
    assert "encoder.layers.1.self_attn(" in g.module_view(4)


def test_user_lines_of_a_user_forward(cnn):
    cm = cnn
    g = cm.captured_graph
    here = inspect.getsourcefile(Net)
    for n in g.nodes:
        path, _, line = n.source.rpartition(":")
        assert path == here  # library code (Conv2d.forward, F.batch_norm) is skipped
        assert f"{FILE}:{line}" in NET.values()
    assert {n.source.rpartition(":")[2] for n in g.nodes if n.module == "drop"} == {NET["drop"].split(":")[1]}
    assert [n.op.name for n in g.nodes if f"{FILE}:{n.source.rpartition(':')[2]}" == NET["pool"]] == \
        ["reduce_window"]


def test_user_line_of_a_library_only_model_is_the_call():
    cm = compiled(mlp(), tracenn.randn(2, 4))
    assert {f"{FILE}:{n.source.rpartition(':')[2]}" for n in cm.captured_graph.nodes} == {CALL}


# ---- the spelling of names, attributes and literals ----------------------------------------------

def test_state_names_that_are_not_paths_are_quoted():
    cm = compiled(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), tracenn.randn(3, 2))
    text = str(cm.captured_graph)
    assert '%"0.weight"' in text and '%"1.running_mean"' in text and "%0.weight" not in text
    assert "\n  1.running_mean <- %" in text  # write targets are state_dict keys, not values
    assert "%input" in text


def test_names_with_subscripts_are_paths():
    g = hand_graph()
    buf = Value("opt.state[0.weight].momentum_buffer", (3, 4), F32, "capture")
    odd = Value("my-layer.weight", (3, 4), F32, "capture")
    g.state.update({buf.name: buf, odd.name: odd})
    g.writes[buf.name] = g.nodes[0].outputs[0]
    g.outputs, g.out_tree = [buf, odd], (LEAF, LEAF)
    text = str(g)
    assert text.endswith('  opt.state[0.weight].momentum_buffer <- %0\n  rng.counter += 1\n'
                         '  return (%opt.state[0.weight].momentum_buffer, %"my-layer.weight")')


def test_index_specs_and_view_chains_print_as_python():
    def f(x):
        a = x[:, 0]
        b = x[1:, None, ::2]
        c = x[..., -1]
        y = x.clone()
        y.t()[1:, 0].add_(1.0)
        return a, b, c, y

    text = str(compiled(f, tracenn.randn(3, 4)).captured_graph)
    assert "slice[spec=[:,0]] %x" in text
    assert "slice[spec=[1:,None,::2]] %x" in text
    assert "slice[spec=[:,3]] %x" in text
    assert "view_scatter[chain=.permute(1,0)[1:,0]]" in text
    assert "('s'," not in text


def test_tensor_index_specs_name_the_index_input():
    g = hand_graph()
    from tracenn.ops import OPS
    idx = Value("idx", (2,), np.int64, "input")
    g.inputs.append(idx)
    x = g.inputs[0]
    n = Node(OPS["index"], (((("s", None, None, None), ("t", 0))),), [x, idx], (), "", "")
    n.outputs = [Value("7", (2, 2), F32, "op", n)]
    put = Node(OPS["index_put"], (((("t", 0),)), True), [x, 1.0, idx], (), "", "")
    put.outputs = [Value("8", (2, 4), F32, "op", put)]
    g.nodes += [n, put]
    verify(g)
    assert "%7: f32[2,2] = index[spec=[:,%idx]] %x, %idx\n" in str(g)
    assert "%8: f32[2,4] = index_put[spec=[%idx], accumulate=True] %x, 1.0, %idx\n" in str(g)


def test_list_index_inside_forward():
    def f(x):
        y = x.clone()
        y[[0, 2]] = 1.0
        return x[[0, 2]], y

    text = str(compiled(f, tracenn.randn(3, 4)).captured_graph)
    assert "index[spec=[%c1]] %x, %c1" in text and "index_put[spec=[%c0], accumulate=False]" in text


def test_none_attributes_are_left_out():
    g = compiled(lambda x: (x.sum(), x.mean(0)), tracenn.randn(3, 4)).captured_graph
    assert "sum[keepdim=False] %x" in str(g)
    assert "mean[dims=(0,), keepdim=False] %x" in str(g)
    assert "None" not in str(g)


def test_float_literals_print_at_the_ops_precision():
    def f(x):
        return x * (1 / 3), x.double() * (1 / 3), x.to(tracenn.bfloat16) * (1 / 3), x.half() * 0.1, x * 2

    text = str(compiled(f, tracenn.randn(2)).captured_graph)
    assert "mul[dtype=f32] %x, 0.33333334" in text
    assert "mul[dtype=f64] %1, 0.3333333333333333 " in text  # f64: Python's repr
    assert "mul[dtype=bf16] %3, 0.334 " in text
    assert "mul[dtype=f16] %5, 0.1 " in text
    assert "mul[dtype=f32] %x, 2 " in text  # an int stays an int


def test_constants_and_captured_tensors():
    table = tracenn.arange(10.0)

    def f(x):
        return x + table + tracenn.tensor(5.0) + tracenn.tensor([1.0, 2.0]).sum()

    g = compiled(f, tracenn.randn(10)).captured_graph
    text = str(g)
    assert "%table" in text and g.state["table"].kind == "capture"  # closed over: state, by name
    assert "  %c0: f32[] = constant 5.0\n" in text
    assert "  %c1: f32[2] = constant [1., 2.]\n" in text


def test_constant_previews_only_small_arrays():
    g = hand_graph()
    g.consts["c0"] = np.zeros(7, F32)
    g.const_values["c0"] = Value("c0", (7,), F32, "const")
    assert "  %c0: f32[7] = constant\n" in str(g)


def test_second_generator_has_its_own_rng_names():
    gen = tracenn.Generator().manual_seed(3)

    def f(x):
        return x + tracenn.rand(3) + tracenn.rand(3, generator=gen) + tracenn.rand(3, generator=gen)

    text = str(compiled(f, tracenn.randn(3)).captured_graph)
    assert "%rng.key, %rng.counter" in text and "%rng1.key, %rng1.counter" in text
    assert "add[dtype=i64] %rng1.counter, 1" in text  # the second draw: counter + 1
    assert text.endswith("  rng.counter += 1\n  rng1.counter += 2\n  return %6")


def test_header_mode():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    assert str(compiled(m, tracenn.randn(1, 2)).graph).splitlines()[0].endswith("    mode=train")
    m[1].eval()
    assert str(compiled(m, tracenn.randn(1, 2)).graph).splitlines()[0].endswith("    mode=mixed")
    m.eval()
    assert str(compiled(m, tracenn.randn(1, 2)).graph).splitlines()[0].endswith("    mode=eval")
    assert "mode=" not in str(compiled(lambda x: x + 1, tracenn.randn(1)).graph)


def test_input_names():
    def f(x, pair, *rest, scale=None, **kw):
        return x + pair[0] + pair[1] + rest[0] + kw["bias"]

    g = compiled(f, tracenn.randn(2), (tracenn.randn(2), tracenn.randn(2)), tracenn.randn(2),
                 bias=tracenn.randn(2)).captured_graph
    assert [v.name for v in g.inputs] == ["x", "pair.0", "pair.1", "rest0", "bias"]
    assert str(g).startswith("graph f(%x: f32[2], %pair.0: f32[2], %pair.1: f32[2], %rest0: f32[2], "
                             "%bias: f32[2]) -> f32[2]\n")


# ---- how to get the graphs -----------------------------------------------------------------------

def test_graph_and_captured_graph():
    cm = tracenn.compile(mlp())
    assert cm.graph is None and cm.captured_graph is None
    call(cm, tracenn.randn(2, 4))
    assert isinstance(cm.graph, Graph) and isinstance(cm.captured_graph, Graph)
    assert cm.graph is not cm.captured_graph


@pytest.mark.parametrize("level", [1, 2, 3])
def test_tracenn_debug_levels(level, monkeypatch, capsys):
    monkeypatch.setenv("TRACENN_DEBUG", str(level))
    cm = tracenn.compile(mlp())
    call(cm, tracenn.randn(2, 4))
    out = capsys.readouterr().out
    assert ("[tracenn] captured graph:\n" + str(cm.captured_graph)) in out
    assert ("[tracenn] graph after passes:\n" + str(cm.graph) in out) == (level >= 2)
    assert ("[tracenn] StableHLO:\nmodule @" in out) == (level >= 3)
    call(cm, tracenn.randn(2, 4))  # no compile, no print
    assert capsys.readouterr().out == ""


def test_int_tensor_and_bool_index_entries_print_as_python():
    """A 0-d int tensor mixed with index arrays prints as its value's name; a 0-d bool as True/False."""
    def f(x, i):
        return x[[0, 1], i, 1:], x[1, True, [0, 2]], x[False, 0]

    text = str(compiled(f, tracenn.randn(3, 4, 5), tracenn.tensor(1)).captured_graph)
    assert "f32[2,4] = index[spec=[%c0,%i,1:]] %x, %c0, %i" in text
    assert "%c1: i64[2] = constant [0, 2]\n  %c2: i64[1] = constant [0]\n  %c3: i64[0] = constant []" in text
    assert "f32[2,5] = index[spec=[1,True,%c1]] %x, %c2, %c1" in text
    assert "f32[0,4,5] = index[spec=[False,0]] %x, %c3" in text
    assert "'d'" not in text and "'b'" not in text


def test_lower_finds_the_program_a_no_grad_call_uses():
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    cm = tracenn.compile(m)
    x = tracenn.randn(3, 4)
    cm(x)
    assert "stablehlo" in cm.lower(x).as_text() or "func.func" in cm.lower(x).as_text()
    with tracenn.no_grad():
        cm(x)
    assert len(cm._entries) == 2  # (the grad call's and the no_grad one's, which lower() compiled)
