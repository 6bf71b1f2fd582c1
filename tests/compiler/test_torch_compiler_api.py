"""torch.compiler's functions on tracenn.compiler, and torch._dynamo's config and older names."""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn.errors import UnsupportedError
from tracenn.runtime.compiled import RecompileWarning

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


@pytest.fixture(autouse=True)
def _restore_config():
    saved = dict(tracenn._dynamo.config.__dict__["_values"])
    yield
    tracenn._dynamo.config.__dict__["_values"].update(saved)


def test_config_reads_back_and_refuses_unknown_names():
    cfg = tracenn._dynamo.config
    assert cfg.cache_size_limit == cfg.recompile_limit == 8 and cfg.suppress_errors is False
    cfg.recompile_limit = 3
    assert cfg.cache_size_limit == 3  # (one setting, two names)
    cfg.verbose = True
    assert cfg.verbose is True
    with pytest.raises(AttributeError, match="tracenn._dynamo.config.not_a_setting does not exist"):
        cfg.not_a_setting = 1
    with pytest.raises(AttributeError, match="does not exist"):
        cfg.not_a_setting  # noqa: B018
    with cfg.patch(suppress_errors=True, cache_size_limit=5):
        assert cfg.suppress_errors and cfg.cache_size_limit == 5
    assert not cfg.suppress_errors and cfg.cache_size_limit == 3


@pytest.mark.skipif(torch is None, reason="PyTorch not installed (test oracle)")
def test_config_names_and_defaults_are_torchs():
    import torch._dynamo
    ours = tracenn._dynamo.config.__dict__["_values"]
    for name, value in ours.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # (torch deprecates some of them)
            assert getattr(torch._dynamo.config, name) == value, name


def test_cache_size_limit_is_the_default_budget():
    tracenn._dynamo.config.cache_size_limit = 2
    traces = []

    def f(x):
        traces.append(1)
        return x * 2

    cf = tracenn.compile(f)
    assert cf.cache_size_limit == 2
    cf(tracenn.ones(1))
    cf(tracenn.ones(2))
    with pytest.warns(RecompileWarning, match="past cache_size_limit=2"):
        out = cf(tracenn.ones(3))
    assert out.tolist() == [2., 2., 2.] and len(traces) == 3  # the third ran eagerly
    assert tracenn.compile(f, cache_size_limit=5).cache_size_limit == 5


def test_suppress_errors_makes_data_dependent_calls_run_eagerly():
    tracenn._dynamo.config.suppress_errors = True
    cf = tracenn.compile(lambda x: x * x.sum().item())
    with pytest.warns(UserWarning, match="fallback='eager'"):
        assert cf(tracenn.ones(2)).tolist() == [2., 2.]
    with pytest.raises(tracenn.errors.DataDependentError):  # fullgraph=True still raises
        tracenn.compile(lambda x: x * x.sum().item(), fullgraph=True)(tracenn.ones(2))


def test_is_compiling_is_true_only_while_tracing():
    seen = []

    def f(x):
        seen.append(tracenn.compiler.is_compiling())
        return x + 1

    tracenn.compile(f)(tracenn.ones(2))
    f(tracenn.ones(2))
    assert seen == [True, False]
    assert tracenn.compiler.is_dynamo_compiling() is False and tracenn._dynamo.is_compiling() is False
    assert tracenn.compiler.is_exporting() is False


@tracenn.compiler.disable(reason="reads values on the host")
def _host_stats(x):
    return float(x.abs().max())


def _uses_stats(x):
    y = x * 3
    return y / _host_stats(y)


def test_disable_runs_the_function_eagerly_and_the_call_that_reaches_it():
    assert tracenn.compile(_host_stats) is _host_stats
    cf = tracenn.compile(_uses_stats)
    x = tracenn.tensor([1., -4., 2.])
    with pytest.warns(UserWarning, match=r"_host_stats is marked tracenn.compiler.disable \(reads values on the host\)"):
        got = cf(x)
    np.testing.assert_allclose(got.numpy(), [0.25, -1., 0.5])
    with pytest.raises(UnsupportedError, match="marked tracenn.compiler.disable"):
        tracenn.compile(_uses_stats, fullgraph=True)(x)


def test_disable_a_module_and_the_dynamo_spelling():
    lin = tracenn.nn.Linear(2, 2)
    assert tracenn.compiler.disable(lin) is lin
    outer = tracenn.nn.Sequential(lin, tracenn.nn.ReLU())
    cm = tracenn.compile(outer)
    with pytest.warns(UserWarning, match="marked tracenn.compiler.disable"):
        out = cm(tracenn.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), outer(tracenn.ones(1, 2)).detach().numpy())
    g = tracenn._dynamo.disable(lambda x: x + 1)
    assert tracenn._dynamo.disable(g) is g and g(tracenn.ones(1)).tolist() == [2.]


def test_reset_forgets_every_program():
    traces = []

    def f(x):
        traces.append(1)
        return x - 1

    cf = tracenn.compile(f)
    cf(tracenn.ones(2))
    cf(tracenn.ones(2))
    assert len(traces) == 1
    tracenn.compiler.reset()
    assert "0 cached program(s)" in cf.explain()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cf(tracenn.ones(2)).tolist() == [0., 0.]
    assert len(traces) == 2
    tracenn._dynamo.reset()
    cf(tracenn.ones(2))
    assert len(traces) == 3


def test_the_rest_of_the_names():
    assert tracenn.compiler.compile is tracenn.compile
    assert tracenn.compiler.list_backends() == ["inductor", "openxla"]
    assert tracenn.compiler.get_default_backend() == "inductor"
    f = lambda x: x  # noqa: E731
    for deco in (tracenn.compiler.allow_in_graph, tracenn.compiler.assume_constant_result,
                 tracenn.compiler.nested_compile_region):
        assert deco(f) is f
    assert tracenn.compiler.nested_compile_region()(f) is f
    tracenn.compiler.cudagraph_mark_step_begin()
    x = tracenn.ones(2, 3)
    tracenn._dynamo.mark_dynamic(x, 0)
    tracenn._dynamo.maybe_mark_dynamic(x, 1)
    tracenn._dynamo.mark_static(x)
    opt = tracenn._dynamo.optimize("inductor")(lambda t: t * 4)
    assert opt(x).tolist() == [[4.] * 3] * 2
