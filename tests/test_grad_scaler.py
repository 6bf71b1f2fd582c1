"""GradScaler (torch.amp.GradScaler): loss scaling, unscaling, skipped steps and the scale's
growth and backoff — eagerly (known values, torch's rules, PyTorch as the oracle when installed)
and inside a compiled training step."""
import pickle
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn import nn
from helpers import to_np

GradScaler = tracenn.amp.GradScaler


def _model(seed=0):
    """Whether a scaled gradient overflows can depend on the order of a sum when it is near the
    float32 limit (a partial sum of mixed signs overflows first), and implementations sum in
    different orders. Here the last layer's gradients overflow first, at a scale 1000x lower than
    the first layer's, and they sum terms of one sign (targets > 0, ReLU outputs >= 0), so the inf
    check does not depend on the order."""
    tracenn.manual_seed(seed)
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with tracenn.no_grad():
        m[2].weight.mul_(1e-3)
    return m


def _data(big=1e4):
    g = tracenn.Generator().manual_seed(1)
    return tracenn.randn(5, 3, generator=g), tracenn.randn(5, 2, generator=g).abs() * big


def _loss(out, y):
    """Linear in the output, so its gradient is one product (no order of operations to make it
    overflow sooner in one implementation than in another near the scale's limit)."""
    return (out * y).sum()


def _iteration(m, opt, scaler, x, y, clip=None):
    opt.zero_grad()
    loss = _loss(m(x), y)
    scaler.scale(loss).backward()
    if clip is not None:
        scaler.unscale_(opt)
        tracenn.nn.utils.clip_grad_norm_(m.parameters(), clip)
    scaler.step(opt)
    scaler.update()
    return loss


# ---- the recipe, known values ------------------------------------------------------------------

def test_scale_unscale_step_update():
    w = nn.Parameter(tracenn.tensor([1.0, 2.0]))
    opt = tracenn.optim.SGD([w], lr=0.1)
    scaler = GradScaler("cpu", init_scale=1024.0, growth_interval=2)
    assert scaler.get_scale() == 1024.0 and scaler._scale is None  # made by the first scale()
    for k in range(2):
        opt.zero_grad()
        scaled = scaler.scale((w * w).sum())
        scaled.backward()
        scaler.step(opt)
        np.testing.assert_allclose(to_np(w.grad), 2 * np.array([1.0, 2.0]) * 0.8 ** k, rtol=1e-6)  # unscaled
        scaler.update()
    np.testing.assert_allclose(to_np(w), [0.64, 1.28], rtol=1e-6)
    assert scaler.get_scale() == 2048.0 and scaler._get_growth_tracker() == 0  # grown after 2 good steps
    assert scaler.state_dict() == {"scale": 2048.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                                   "growth_interval": 2, "_growth_tracker": 0}


def test_scale_of_several_outputs_keeps_their_structure():
    scaler = GradScaler("cpu", init_scale=4.0)
    a, b = tracenn.tensor(1.0), tracenn.tensor([2.0, 3.0])
    out = scaler.scale([a, (b, a)])
    assert isinstance(out, list) and isinstance(out[1], tuple)
    np.testing.assert_array_equal(to_np(out[1][0]), [8.0, 12.0])
    with pytest.raises(ValueError, match="outputs must be a Tensor or an iterable of Tensors"):
        scaler.scale(3.0)


def test_an_inf_gradient_skips_the_step_and_backs_off():
    m = _model()
    opt = tracenn.optim.Adam(m.parameters(), lr=0.1)
    scaler = GradScaler("cpu", init_scale=2.0 ** 127)
    before = [to_np(p).copy() for p in m.parameters()]
    _iteration(m, opt, scaler, *_data())
    for p, b in zip(m.parameters(), before):
        np.testing.assert_array_equal(to_np(p), b)
    assert len(opt.state) == 0, "a skipped first step makes no optimizer state"
    assert not np.isfinite(to_np(m[0].weight.grad)).all()  # the gradients stay as unscaled
    assert scaler.get_scale() == 2.0 ** 126 and scaler._get_growth_tracker() == 0


def test_growth_stops_short_of_an_infinite_scale():
    scaler = GradScaler("cpu", init_scale=2.0 ** 127, growth_interval=1)
    w = nn.Parameter(tracenn.tensor([1e-30]))
    opt = tracenn.optim.SGD([w], lr=0.1)
    scaler.scale(w.sum()).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 2.0 ** 127 and scaler._get_growth_tracker() == 0


def test_update_to_a_given_scale():
    scaler = GradScaler("cpu")
    scaler.scale(tracenn.tensor(1.0))
    scaler.update(8.0)
    assert scaler.get_scale() == 8.0
    scaler.update(tracenn.tensor([4.0]))
    assert scaler.get_scale() == 4.0
    with pytest.raises(AssertionError, match="new_scale should be a float or a 1-element"):
        scaler.update(tracenn.tensor([4.0, 2.0]))


def test_misuse_raises_torchs_errors():
    m = _model()
    opt = tracenn.optim.SGD(m.parameters(), lr=0.1)
    scaler = GradScaler("cpu")
    with pytest.raises(AssertionError, match=r"Attempted step but _scale is None.  This may indicate your "
                                             r"script did not use scaler.scale\(loss or outputs\)"):
        scaler.step(opt)
    x, y = _data(1.0)
    scaler.scale(F.mse_loss(m(x), y)).backward()
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        scaler.step(opt, closure=lambda: 0.0)
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) has already been called on this optimizer"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match=r"step\(\) has already been called since the last update\(\)"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) is being called after step\(\)"):
        scaler.unscale_(opt)
    scaler.update()
    with pytest.raises(AssertionError, match="No inf checks were recorded prior to update"):
        scaler.update()
    with pytest.raises(AssertionError, match="The growth factor must be > 1.0."):
        GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(AssertionError, match="The backoff factor must be < 1.0."):
        GradScaler("cpu", backoff_factor=1.0)
    with pytest.raises(RuntimeError, match="The source state dict is empty"):
        scaler.load_state_dict({})


def test_float16_gradients_are_refused():
    w = nn.Parameter(tracenn.tensor([1.0, 2.0], dtype=tracenn.float16))
    opt = tracenn.optim.SGD([w], lr=0.1)
    scaler = GradScaler("cpu")
    scaler.scale(w.float().sum()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients."):
        scaler.step(opt)


def test_disabled_scaler_is_a_plain_step():
    w = nn.Parameter(tracenn.tensor([1.0]))
    opt = tracenn.optim.SGD([w], lr=0.5)
    scaler = GradScaler("cpu", enabled=False)
    loss = (w * 3).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.step(opt)
    scaler.update()
    assert float(w) == -0.5 and scaler.get_scale() == 1.0 and scaler.state_dict() == {}


def test_cuda_scaler_without_a_gpu_disables_itself():
    if tracenn.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.warns(UserWarning, match="torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling."):
        scaler = GradScaler()
    assert not scaler.is_enabled()


def test_state_dict_round_trip_and_pickle():
    m = _model()
    opt = tracenn.optim.SGD(m.parameters(), lr=0.01)
    scaler = GradScaler("cpu", init_scale=256.0, growth_interval=3)
    x, y = _data(1.0)
    for _ in range(2):
        _iteration(m, opt, scaler, x, y)
    other = GradScaler("cpu")
    other.load_state_dict(scaler.state_dict())
    assert other.state_dict() == scaler.state_dict() == {
        "scale": 256.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 3, "_growth_tracker": 2}
    again = pickle.loads(pickle.dumps(scaler))
    assert again.state_dict() == scaler.state_dict()
    scaler.scale(F.mse_loss(m(x), y)).backward()
    scaler.step(opt)
    with pytest.raises(AssertionError, match="may only be pickled at the beginning of an iteration"):
        pickle.dumps(scaler)


def test_old_device_spellings_warn_as_torch():
    from tracenn.cpu.amp import GradScaler as CpuScaler
    with pytest.warns(FutureWarning, match=r"`torch.cpu.amp.GradScaler\(args...\)` is deprecated. Please use "
                                           r"`torch.amp.GradScaler\('cpu', args...\)` instead."):
        s = CpuScaler(init_scale=8.0)
    assert isinstance(s, GradScaler) and s.get_scale() == 8.0
    with pytest.warns(FutureWarning, match=r"torch.cpu.amp.autocast\(args...\)` is deprecated"):
        with tracenn.cpu.amp.autocast():
            assert (tracenn.randn(2, 2) @ tracenn.randn(2, 2)).dtype == tracenn.bfloat16
    assert tracenn.cuda.amp.GradScaler.__name__ == "GradScaler"


# ---- against PyTorch ---------------------------------------------------------------------------

def _torch_twin(torch, m):
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for a, b in zip(t.parameters(), m.parameters()):
            a.copy_(torch.tensor(to_np(b)))
    return t


@pytest.mark.parametrize("clip", [None, 1.0])
def test_matches_torch_through_skips_backoffs_and_growth(clip):
    torch = pytest.importorskip("torch")
    m = _model()
    t = _torch_twin(torch, m)
    opt = tracenn.optim.Adam(m.parameters(), lr=0.05)
    topt = torch.optim.Adam(t.parameters(), lr=0.05)
    scaler = GradScaler("cpu", init_scale=2.0 ** 120, growth_interval=3)
    tscaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 120, growth_interval=3)
    x, y = _data()
    tx, ty = torch.tensor(to_np(x)), torch.tensor(to_np(y))
    skipped = 0
    for _ in range(24):
        _iteration(m, opt, scaler, x, y, clip)
        tl = _loss(t(tx), ty)
        topt.zero_grad()
        tscaler.scale(tl).backward()
        if clip is not None:
            tscaler.unscale_(topt)
            torch.nn.utils.clip_grad_norm_(t.parameters(), clip)
        before = tscaler.get_scale()
        tscaler.step(topt)
        tscaler.update()
        skipped += tscaler.get_scale() < before
        assert scaler.state_dict() == tscaler.state_dict()
    assert skipped >= 5
    for a, b in zip(m.parameters(), t.parameters()):
        np.testing.assert_allclose(to_np(a), b.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert len(opt.state) == len(topt.state) == 4


def test_two_optimizers_share_one_scaler_as_torch():
    torch = pytest.importorskip("torch")
    m = _model()
    t = _torch_twin(torch, m)
    opts = [tracenn.optim.SGD(m[0].parameters(), lr=0.01), tracenn.optim.SGD(m[2].parameters(), lr=0.01)]
    topts = [torch.optim.SGD(t[0].parameters(), lr=0.01), torch.optim.SGD(t[2].parameters(), lr=0.01)]
    scaler = GradScaler("cpu", init_scale=2.0 ** 100, growth_interval=2)
    tscaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 100, growth_interval=2)
    x, y = _data(100.0)
    tx, ty = torch.tensor(to_np(x)), torch.tensor(to_np(y))
    for _ in range(12):
        for o, to in zip(opts, topts):
            o.zero_grad(), to.zero_grad()
        scaler.scale(_loss(m(x), y)).backward()
        tscaler.scale(_loss(t(tx), ty)).backward()
        for o, to in zip(opts, topts):
            scaler.step(o), tscaler.step(to)
        scaler.update(), tscaler.update()
        assert scaler.state_dict() == tscaler.state_dict()
    for a, b in zip(m.parameters(), t.parameters()):
        np.testing.assert_allclose(to_np(a), b.detach().numpy(), rtol=1e-5, atol=1e-6)


# ---- compiled ------------------------------------------------------------------------------------

def _compiled_pair(make_opt, init_scale=2.0 ** 120, clip=None):
    out = []
    for _ in range(2):
        m = _model()
        out.append((m, make_opt(m.parameters()), GradScaler("cpu", init_scale=init_scale, growth_interval=3)))
    (me, oe, se), (mc, oc, sc) = out
    x, y = _data()
    eager = lambda: _iteration(me, oe, se, x, y, clip)  # noqa: E731
    compiled = tracenn.compile(lambda: _iteration(mc, oc, sc, x, y, clip))
    return (me, oe, se, eager), (mc, oc, sc, compiled)


@pytest.mark.parametrize("clip", [None, 1.0])
@pytest.mark.parametrize("opt", ["adam", "sgd_momentum"])
def test_compiled_step_with_a_scaler_equals_eager(opt, clip):
    make = {"adam": lambda p: tracenn.optim.Adam(p, lr=0.05),
            "sgd_momentum": lambda p: tracenn.optim.SGD(p, lr=1e-9, momentum=0.9)}[opt]
    (me, oe, se, eager), (mc, oc, sc, compiled) = _compiled_pair(make, clip=clip)
    skipped = 0
    for _ in range(20):
        before = se.get_scale()
        le, lc = eager(), compiled()
        skipped += se.get_scale() < before
        np.testing.assert_allclose(to_np(lc), to_np(le), rtol=1e-4)  # (Adam: float noise on ~0 gradients)
        assert sc.state_dict() == se.state_dict()
    assert skipped >= 3, "the run must skip steps in both modes"
    assert not compiled._last.eager, "once the optimizer state exists the step is one program"
    for a, b in zip(me.parameters(), mc.parameters()):  # (Adam turns float noise into steps of ~lr)
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=1e-5)
    for a, b in zip(me.parameters(), mc.parameters()):
        for k, v in oe.state[a].items():
            np.testing.assert_allclose(to_np(oc.state[b][k]), to_np(v), rtol=1e-4, atol=1e-5, err_msg=k)
    text = str(compiled.graph)
    update = text[text.index("# ---- update ----"):]
    assert "where" in update and "%sc._scale" in text and "sc._growth_tracker <-" in text


def test_a_skipped_step_inside_the_program_keeps_parameters_and_state():
    (me, oe, se, eager), (mc, oc, sc, compiled) = _compiled_pair(lambda p: tracenn.optim.Adam(p, lr=0.05),
                                                                 init_scale=1.0)
    for _ in range(3):
        compiled()
    assert not compiled._last.eager
    before = [to_np(p).copy() for p in mc.parameters()]
    state = {k: to_np(v).copy() for k, v in oc.state[mc[0].weight].items()}
    sc.update(float("inf"))  # the next gradients are inf: the program must skip the step
    compiled()
    for p, b in zip(mc.parameters(), before):
        np.testing.assert_array_equal(to_np(p), b)
    for k, v in oc.state[mc[0].weight].items():
        np.testing.assert_array_equal(to_np(v), state[k], err_msg=k)
    assert sc.get_scale() == float("inf") * 0.5 and sc._get_growth_tracker() == 0


def test_the_first_steps_run_eagerly_until_the_optimizer_has_state():
    (_, _, _, _), (mc, oc, sc, compiled) = _compiled_pair(lambda p: tracenn.optim.Adam(p, lr=0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # planned: no fallback warning
        while not oc.state:
            compiled()
        compiled()
    text = compiled.explain()
    assert "runs eagerly: GradScaler: the first scale() makes the scale tensor" in text
    assert "runs eagerly: GradScaler: the optimizer's first step makes its state" in text
    assert not compiled._last.eager


def test_a_compiled_step_without_update_runs_eagerly():
    m = _model()
    opt = tracenn.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    scaler = GradScaler("cpu", init_scale=4.0)
    x, y = _data(1.0)

    def step():
        opt.zero_grad()
        scaler.scale(F.mse_loss(m(x), y)).backward()
        scaler.step(opt)

    compiled = tracenn.compile(step)
    with pytest.warns(UserWarning, match=r"call scaler.update\(\) inside the compiled function"):
        for _ in range(3):
            compiled()
            scaler.update()
    assert scaler.get_scale() == 4.0 and len(opt.state) == 4
    assert not scaler._per_optimizer_states  # no traced value left on the scaler


def test_float16_autocast_training_with_a_scaler_compiled_and_eager():
    def run(compiled):
        m = _model()
        opt = tracenn.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
        scaler = GradScaler("cpu")
        x, y = _data(1.0)

        def step():
            opt.zero_grad()
            with tracenn.autocast("cpu", dtype=tracenn.float16):
                loss = F.mse_loss(m(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return loss

        fn = tracenn.compile(step) if compiled else step
        losses = [float(fn()) for _ in range(8)]
        assert m[0].weight.dtype == m[0].weight.grad.dtype == tracenn.float32  # float32 master weights
        return losses, scaler.get_scale(), fn

    (le, se, _), (lc, sc, fn) = run(False), run(True)
    np.testing.assert_allclose(lc, le, rtol=2e-3)
    assert se == sc == 65536.0 and le[-1] < le[0]
    assert not fn._last.eager
