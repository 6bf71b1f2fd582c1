"""docs/ir.md's examples, run, and the text they print compared with the doc's.

Every fenced block of the doc preceded by a line ``<!-- golden: NAME -->`` is one of:

- source, when NAME ends in ``.py``: the blocks with that name, joined by two blank lines, are
  written to a file of that name and imported (the printed graphs name it: ``net.py:15``);
- a snippet run in an example's namespace (``verify-snippet``);
- what an example prints (any other NAME), compared line by line with what the code prints now.
  A doc line ``...`` stands for any number of lines (a shortened graph); trailing spaces (rich's
  padding) are ignored. A block inside a list item may be indented: the marker's indent is removed.

The printed IR is user interface: when one of these fails, either the change to the printed form
is a mistake, or the doc must show the new text (and say why, if it is more than renumbering).
"""
from __future__ import annotations

import contextlib
import difflib
import importlib.util
import io
import re
from pathlib import Path

import pytest

import tracenn
from tracenn.compiler.check import GraphError

DOC = Path(__file__).resolve().parents[2] / "docs" / "ir.md"
_MARKED = re.compile(r"^(?P<ind> *)<!-- golden: (?P<name>\S+) -->\n(?P=ind)```\w*\n(?P<body>.*?)^(?P=ind)```",
                     re.M | re.S)


def _doc_blocks() -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for m in _MARKED.finditer(DOC.read_text(encoding="utf-8")):
        ind = len(m["ind"])
        body = "".join(line[ind:] if line[:ind].strip() == "" else line for line in m["body"].splitlines(True))
        got.setdefault(m["name"], []).append(body)
    return got


BLOCKS = _doc_blocks()


def block(name: str) -> str:
    assert len(BLOCKS.get(name, ())) == 1, f"docs/ir.md should have one block marked <!-- golden: {name} -->"
    return BLOCKS[name][0]


def source(name: str) -> str:
    assert name in BLOCKS, f"docs/ir.md has no source block marked <!-- golden: {name} -->"
    return "\n\n".join(BLOCKS[name])


def load(folder: Path, name: str, text: str | None = None):
    """Write the doc's ``name`` (or ``text``) to ``folder/name`` and import it; returns the module
    and what importing it printed."""
    path = folder / name
    path.write_text(source(name) if text is None else text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"_ir_doc_{folder.name}_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        spec.loader.exec_module(mod)
    return mod, out.getvalue()


def _pattern(want: str) -> re.Pattern:
    parts = ["(?:[^\n]*\n)*?" if line.strip() == "..." else re.escape(line) + "\n"
             for line in want.rstrip("\n").split("\n")]
    return re.compile("".join(parts))


def assert_prints(name: str, got: str, want: str | None = None) -> None:
    """``got`` is what docs/ir.md's block ``name`` (or ``want``) shows."""
    want = block(name) if want is None else want
    got = "\n".join(line.rstrip() for line in got.rstrip("\n").split("\n")) + "\n"
    if _pattern(want).fullmatch(got):
        return
    diff = "\n".join(difflib.unified_diff(want.rstrip("\n").split("\n"), got.rstrip("\n").split("\n"),
                                          "docs/ir.md", "printed now", lineterm=""))
    raise AssertionError(f"docs/ir.md's block <!-- golden: {name} --> is not what the code prints now "
                         f"(a doc line '...' stands for any lines):\n{diff}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("ir_doc")


# ---- the harness itself ----------------------------------------------------------------------------

def test_every_marked_block_is_used():
    used = {"net.py", "net-train", "net-eval-captured", "net-eval", "net-module-view", "classifier-module-view",
            "classifier-module-view-3", "fn.py", "summarize", "write-captured", "write", "train.py", "sgd-step",
            "adam-step", "main.py", "mlp", "mlp-tabular", "verify-snippet", "verify-error", "gelu.py", "gelu",
            "cf.py", "cond", "while"}
    assert set(BLOCKS) == used


def test_dots_stand_for_any_lines_and_nothing_else():
    assert_prints("x", "a\nb\nc\nd\n", want="a\n...\nd\n")
    assert_prints("x", "a\nd\n", want="a\n...\nd\n")
    with pytest.raises(AssertionError, match="printed now"):
        assert_prints("x", "a\nb\nc\n", want="a\n...\nd\n")
    with pytest.raises(AssertionError, match=r"-b\n\+B"):
        assert_prints("x", "a\nB\n", want="a\nb\n")


# ---- the examples ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def net(folder):
    return load(folder, "net.py")[0]


@pytest.fixture(scope="module")
def net_train(net):
    """The doc's Net compiled and called once in train mode (two tests read its graph)."""
    cm = tracenn.compile(net.Net())
    cm(tracenn.randn(64, 1, 28, 28))
    return cm


def test_net_train(net_train):
    assert_prints("net-train", str(net_train.graph))
    assert str(net_train.captured_graph) == str(net_train.graph)  # "the passes change nothing here"


def test_net_module_view(net_train):
    assert_prints("net-module-view", net_train.graph.module_view())


def test_net_eval(net):
    cm = tracenn.compile(net.Net().eval())
    cm(tracenn.randn(64, 1, 28, 28))
    assert_prints("net-eval-captured", str(cm.captured_graph))
    assert_prints("net-eval", str(cm.graph))


def test_classifier_module_views(net):
    cm = tracenn.compile(net.Classifier())
    cm(tracenn.randn(2, 5, 16))
    assert_prints("classifier-module-view", cm.graph.module_view())
    assert_prints("classifier-module-view-3", cm.graph.module_view(3))


def test_structured_outputs_and_view_writes(folder):
    fn = load(folder, "fn.py")[0]
    cs = tracenn.compile(fn.summarize)
    out = cs(tracenn.randn(8, 3))
    assert_prints("summarize", str(cs.graph))
    assert type(out[1]).__name__ == "Stats" and out[2] == 8
    cw = tracenn.compile(fn.write)
    cw(tracenn.randn(3, 4))
    assert_prints("write-captured", str(cw.captured_graph))
    assert_prints("write", str(cw.graph))


def test_cond_and_while_loop_blocks(folder):
    cf = load(folder, "cf.py")[0]
    m = cf.Gate()
    cm = tracenn.compile(m)
    x = tracenn.randn(2, 3)
    tracenn.testing.assert_close(cm(x), m(x))
    assert_prints("cond", str(cm.graph))
    cw = tracenn.compile(cf.doubling)
    i, y = cw(tracenn.tensor(0), tracenn.ones(2))
    assert int(i) == 3 and y.tolist() == [8.0, 8.0]
    assert_prints("while", str(cw.graph))


def _steps(mod, n=2):
    x, y = tracenn.randn(16, 4), tracenn.randint(0, 3, (16,))
    for _ in range(n):
        mod.train_step(x, y)
    return str(mod.train_step.graph)


def test_sgd_training_step(folder):
    assert_prints("sgd-step", _steps(load(folder, "train.py")[0]))  # "from its second call on"


def test_adam_training_step(tmp_path):
    sgd = "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)"
    assert sgd in source("train.py")
    text = source("train.py").replace(sgd, "opt = torch.optim.Adam(model.parameters(), lr=0.1)")
    assert_prints("adam-step", _steps(load(tmp_path, "train.py", text)[0]))


def test_mlp_print_tabular_and_checker(folder):
    main, printed = load(folder, "main.py")
    assert_prints("mlp + mlp-tabular", printed, want=block("mlp") + block("mlp-tabular"))
    with pytest.raises(GraphError) as e:
        exec(block("verify-snippet"), dict(vars(main)))
    assert_prints("verify-error", f"{type(e.value).__name__}: {e.value}")
    assert isinstance(e.value, RuntimeError)


def test_user_pass_relu_to_gelu(folder):
    gelu, printed = load(folder, "gelu.py")
    assert_prints("gelu", printed)
    assert [n.op.name for n in gelu.cm.graph.nodes] == ["permute", "matmul", "add", "mul", "mul", "erf", "add", "mul"]


# ---- examples written inline in the text -----------------------------------------------------------

def _code_lines(graph) -> list[str]:
    return [" ".join(line.split("   # ")[0].split()) for line in str(graph).split("\n")]


def _inline_in_doc(code: str) -> bool:
    return code in " ".join(DOC.read_text(encoding="utf-8").split())


def test_inline_constant_func_transform_and_hook_nodes():
    def scaled(x):
        return x * tracenn.tensor([1.0, 2.0, 3.0])

    cs = tracenn.compile(scaled)
    cs(tracenn.randn(3))
    assert _inline_in_doc(_code_lines(cs.graph)[1]), _code_lines(cs.graph)[1]  # %c0: f32[3] = constant [1., 2., 3.]

    model = tracenn.nn.Sequential(tracenn.nn.Linear(3, 4), tracenn.nn.ReLU(), tracenn.nn.Linear(4, 3))

    def batched(x):
        return tracenn.func.vmap(model)(x)

    cv = tracenn.compile(batched)
    cv(tracenn.randn(5, 3))
    assert _inline_in_doc(_code_lines(cv.graph)[1]), _code_lines(cv.graph)[1]  # %0: f32[5,3] = func_transform[...

    class Head(tracenn.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = tracenn.nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x)

    head = Head()
    head.fc.register_full_backward_hook(lambda mod, gin, gout: None)
    cm = tracenn.compile(head)
    cm(tracenn.randn(2, 3, requires_grad=True))
    side = "backward_hook[side=<backward hook inputs of 'fc'>]"
    assert side in str(cm.graph) and _inline_in_doc(side)


# ---- what "Getting the graphs" says --------------------------------------------------------------

def test_graph_is_the_latest_calls_program():
    cm = tracenn.compile(tracenn.nn.Linear(4, 2))
    for n in (2, 3, 2):
        cm(tracenn.randn(n, 4))
        assert str(cm.graph).startswith(f"graph Linear(%input: f32[{n},4])")
    assert cm.explain().count("compiled because") == 2


def test_lowered_text_has_no_donation_attributes():
    m = tracenn.nn.Sequential(tracenn.nn.Linear(4, 8), tracenn.nn.BatchNorm1d(8))
    cm = tracenn.compile(m)
    x = tracenn.randn(5, 4)
    cm(x)
    text = cm.lower(x).as_text()
    assert "stablehlo" in text
    assert "jax.buffer_donor" not in text and "tf.aliasing_output" not in text
