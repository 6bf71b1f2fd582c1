"""Regression tests for optimizer and checkpoint differences from torch found by parity probes.

* Complex parameters: torch updates a complex parameter (and its state) through ``view_as_real``,
  as two independent real numbers. tracenn ran the rules on the complex values themselves, so
  Adam's ``exp_avg_sq`` held the complex ``g * g`` and the steps were silently wrong (NaN for
  AMSGrad); Rprop and ASGD refused complex parameters; LBFGS flattened the complex gradient.
* ``torch.save`` writes pickle protocol 2, which names ``set`` and ``complex`` as
  ``__builtin__.set`` / ``__builtin__.complex``; ``tracenn.load`` refused them.

Every complex case is checked without torch against the same optimizer run on the real view
(what torch documents), and against torch when it is installed.
"""
import io
import pickle
import zipfile

import numpy as np
import pytest

import tracenn
from helpers import to_np

_rng = np.random.default_rng(7)
Z0 = (_rng.standard_normal(4) + 1j * _rng.standard_normal(4)).astype(np.complex64)
R0 = _rng.standard_normal(3).astype(np.float32)

# name -> options; every optimizer that takes complex parameters in torch
OPTIMIZERS = {
    "SGD": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    "Adam": dict(lr=0.1, amsgrad=True),
    "AdamW": dict(lr=0.1, weight_decay=0.1),
    "Adamax": dict(lr=0.1),
    "NAdam": dict(lr=0.1),
    "RAdam": dict(lr=0.1),
    "RMSprop": dict(lr=0.01, centered=True, momentum=0.9),
    "Adagrad": dict(lr=0.1, initial_accumulator_value=0.3),
    "Adadelta": dict(),
    "Rprop": dict(lr=0.05),
    "ASGD": dict(lr=0.1, t0=2),
}
STEPS = 6


def _loss_complex(lib, z, r):
    """A loss whose gradient mixes the parts of z, and couples z with a real parameter r."""
    return (z * z.conj()).real.sum() + (z ** 3).real.sum() * 0.1 + (r ** 2).sum() * z.abs().sum()


def _run_complex(lib, name, options, steps=STEPS, compile=False, foreach=None):
    z = lib.nn.Parameter(lib.tensor(Z0))
    r = lib.nn.Parameter(lib.tensor(R0))
    if foreach is not None:
        options = dict(options, foreach=foreach)
    opt = getattr(lib.optim, name)([z, r], **options)

    def step():
        opt.zero_grad()
        _loss_complex(lib, z, r).backward()
        opt.step()

    if compile:
        step = tracenn.compile(step)
    for _ in range(steps):
        step()
    return z, r, opt


def _run_real_view(name, options, steps=STEPS):
    """The same optimization with the complex parameter replaced by its real view (N, 2): torch's
    definition of a complex update. The gradient is computed on a complex copy and viewed as real."""
    zr = tracenn.nn.Parameter(tracenn.view_as_real(tracenn.tensor(Z0)).clone())
    r = tracenn.nn.Parameter(tracenn.tensor(R0))
    opt = getattr(tracenn.optim, name)([zr, r], **options)
    for _ in range(steps):
        opt.zero_grad()
        z = tracenn.view_as_complex(zr.detach().clone()).requires_grad_()
        rr = r.detach().clone().requires_grad_()
        _loss_complex(tracenn, z, rr).backward()
        zr.grad = tracenn.view_as_real(z.grad).clone()
        r.grad = rr.grad
        opt.step()
    return zr, r, opt


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_complex_parameter_is_updated_as_its_real_view(name):
    z, r, opt = _run_complex(tracenn, name, OPTIMIZERS[name])
    zr, r_ref, opt_ref = _run_real_view(name, OPTIMIZERS[name])
    np.testing.assert_allclose(to_np(tracenn.view_as_real(z)), to_np(zr), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_np(r), to_np(r_ref), rtol=1e-5, atol=1e-6)
    # the state of the complex parameter is complex, and its real view is the real run's state
    state, state_ref = opt.state[z], opt_ref.state[zr]
    assert list(state) == list(state_ref)
    for key, value in state.items():
        ref = state_ref[key]
        if value.dim() == 0:
            assert value.dtype == ref.dtype and value.item() == pytest.approx(ref.item(), rel=1e-6), key
        else:
            assert value.dtype == tracenn.complex64, key
            np.testing.assert_allclose(to_np(tracenn.view_as_real(value)), to_np(ref), rtol=1e-5, atol=1e-6,
                                       err_msg=key)


def test_complex_adam_second_moment_holds_squared_parts():
    """Known values: one Adam step on z = 1 + 2j with grad 3 - 4j keeps (1 - beta2) * (9 + 16j)."""
    z = tracenn.nn.Parameter(tracenn.tensor([1 + 2j]))
    opt = tracenn.optim.Adam([z], lr=0.1, amsgrad=True)
    z.grad = tracenn.tensor([3 - 4j])
    opt.step()
    np.testing.assert_allclose(to_np(opt.state[z]["exp_avg_sq"]), [0.001 * (9 + 16j)], rtol=1e-6)
    np.testing.assert_allclose(to_np(opt.state[z]["exp_avg"]), [0.1 * (3 - 4j)], rtol=1e-6)
    # the first bias-corrected step moves each part by lr * sign(grad): a finite, not NaN, update
    np.testing.assert_allclose(to_np(z), [0.9 + 2.1j], rtol=1e-5)


def test_complex_initial_state_fills_both_parts():
    """Adagrad's initial accumulator and Rprop's initial step size fill the real and imaginary
    parts alike (torch: ``complex(v, v)``)."""
    z = tracenn.nn.Parameter(tracenn.zeros(2, dtype=tracenn.complex64))
    opt = tracenn.optim.Adagrad([z], initial_accumulator_value=0.5)
    np.testing.assert_allclose(to_np(opt.state[z]["sum"]), [0.5 + 0.5j] * 2)
    opt = tracenn.optim.Rprop([z], lr=0.25)
    z.grad = tracenn.tensor([1 + 1j, -1 - 1j])
    opt.step()
    np.testing.assert_allclose(to_np(z), [-0.25 - 0.25j, 0.25 + 0.25j])
    z2 = tracenn.nn.Parameter(tracenn.zeros(1, dtype=tracenn.complex64))
    opt2 = tracenn.optim.Rprop([z2], lr=tracenn.tensor(0.25))  # a tensor lr
    z2.grad = tracenn.tensor([1 - 1j])
    opt2.step()
    np.testing.assert_allclose(to_np(z2), [-0.25 + 0.25j])


@pytest.mark.parametrize("name", ["Adam", "RMSprop", "Rprop", "ASGD"])
def test_complex_parameter_loop_and_compiled_step_agree(name):
    eager = _run_complex(tracenn, name, OPTIMIZERS[name])
    loop = _run_complex(tracenn, name, OPTIMIZERS[name], foreach=False)
    compiled = _run_complex(tracenn, name, OPTIMIZERS[name], compile=True)
    for other in (loop, compiled):  # (float32 rounding: XLA fuses multiply-adds differently)
        np.testing.assert_allclose(to_np(other[0]), to_np(eager[0]), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(to_np(other[1]), to_np(eager[1]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_complex_parameter_matches_torch(name, torch):
    z, r, opt = _run_complex(tracenn, name, OPTIMIZERS[name])
    tz, tr, topt = _run_complex(torch, name, OPTIMIZERS[name])
    np.testing.assert_allclose(to_np(z), to_np(tz), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_np(r), to_np(tr), rtol=1e-4, atol=1e-5)
    state, tstate = opt.state_dict()["state"][0], topt.state_dict()["state"][0]
    assert list(state) == list(tstate)
    for key in state:
        np.testing.assert_allclose(to_np(state[key]), to_np(tstate[key]), rtol=1e-4, atol=1e-5, err_msg=key)


def _lbfgs_complex(lib, line_search_fn=None):
    z = lib.nn.Parameter(lib.tensor(Z0.astype(np.complex128)))
    opt = lib.optim.LBFGS([z], lr=0.5, line_search_fn=line_search_fn)

    def closure():
        opt.zero_grad()
        loss = ((z - (1 + 2j)) * (z - (1 + 2j)).conj()).real.sum() + (z ** 4).real.sum() * 0.01
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    return z, opt, closure


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_complex_parameter_is_optimized_as_two_reals(line_search_fn):
    z, opt, closure = _lbfgs_complex(tracenn, line_search_fn)
    assert opt._numel() == 2 * Z0.size
    assert opt.state[opt._params[0]]["d"].shape == (2 * Z0.size,)
    closure()  # at the minimum: the gradient vanishes
    assert np.abs(to_np(z.grad)).max() < 1e-4  # (it was ~1 at the start)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_complex_parameter_matches_torch(line_search_fn, torch):
    z, opt, _ = _lbfgs_complex(tracenn, line_search_fn)
    tz, topt, _ = _lbfgs_complex(torch, line_search_fn)
    np.testing.assert_allclose(to_np(z), to_np(tz), rtol=1e-7, atol=1e-9)
    assert opt.state_dict()["state"][0]["n_iter"] == topt.state_dict()["state"][0]["n_iter"]


# ---- torch checkpoints: protocol-2 names of builtins ---------------------------------------------

def _torch_zip(obj) -> bytes:
    """A PyTorch-layout zip checkpoint whose data.pkl is a plain protocol-2 pickle of ``obj`` (what
    torch.save writes for tensor-free objects)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    return buf.getvalue()


@pytest.mark.parametrize("obj", [{1, 2}, 1 + 2j, {"a": {3}, "b": [1j, 2.5]}])
def test_load_torch_checkpoint_with_protocol2_builtins(obj):
    assert b"__builtin__" in pickle.dumps(obj, protocol=2)  # (what the test is about)
    assert tracenn.load(io.BytesIO(_torch_zip(obj))) == obj


def test_load_torch_checkpoint_still_refuses_unsafe_builtins():
    with pytest.raises(tracenn.serialization.UnsafeCheckpointError, match="refusing to load the global builtins.eval"):
        data = b"\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R."
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("archive/data.pkl", data)
            zf.writestr("archive/byteorder", "little")
        tracenn.load(io.BytesIO(buf.getvalue()))


def test_load_torch_saved_set_complex_and_counter(torch):
    import collections
    obj = {"s": {1, 2}, "c": 1 - 2j, "n": collections.Counter("aab"), "t": torch.ones(2)}
    buf = io.BytesIO()
    torch.save(obj, buf)
    got = tracenn.load(io.BytesIO(buf.getvalue()))
    assert got["s"] == {1, 2} and got["c"] == 1 - 2j and got["n"] == collections.Counter("aab")
    assert isinstance(got["t"], tracenn.Tensor) and got["t"].tolist() == [1.0, 1.0]


# what torch.save writes for torch.arange(3).to(<dtype>) when <dtype> has no legacy storage class
_V3_PICKLE = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v3\nq\x00((X\x07\x00\x00\x00storageq\x01ctorch.storage\n"
              b"UntypedStorage\nq\x02X\x01\x00\x00\x000q\x03X\x03\x00\x00\x00cpuq\x04K\x06tq\x05QK\x00K\x03\x85q"
              b"\x06K\x01\x85q\x07\x89ccollections\nOrderedDict\nq\x08)Rq\tctorch\n%s\nq\ntq\x0bRq\x0c.")


def _v3_zip(dtype_name: bytes, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", _V3_PICKLE % dtype_name)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/data/0", data)
    return buf.getvalue()


def test_load_rebuild_tensor_v3():
    """torch._utils._rebuild_tensor_v3 (a byte storage and a dtype) was refused as unsafe: a dtype
    tracenn has loads, one it lacks (torch.uint16) says so."""
    t = tracenn.load(io.BytesIO(_v3_zip(b"int16", np.array([1, -2, 3], np.int16).tobytes())))
    assert t.dtype == tracenn.int16 and t.tolist() == [1, -2, 3]
    with pytest.raises(tracenn.serialization.SerializationError,
                       match=r"dtype torch.uint16, which tracenn does not have .*t.to\(torch.int64\)"):
        tracenn.load(io.BytesIO(_v3_zip(b"uint16", np.arange(3, dtype=np.uint16).tobytes())))


def test_load_torch_saved_uint16_says_the_dtype_is_missing(torch):
    buf = io.BytesIO()
    torch.save({"w": torch.arange(3).to(torch.uint16)}, buf)
    with pytest.raises(tracenn.serialization.SerializationError, match="dtype torch.uint16"):
        tracenn.load(io.BytesIO(buf.getvalue()))


# ---- bfloat16 / float16: torch's fused ops round once ----------------------------------------------
# torch computes ``add(alpha=)``, ``addcmul`` and ``addcdiv`` on bfloat16/float16 in float32 and
# rounds once; the rules rounded after each of their separate ops, so a bfloat16 model drifted from
# torch's numbers step after step (SGD's momentum buffer by ~1% in 5 steps).

def _bf16(x):
    import ml_dtypes
    return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)


def test_bfloat16_sgd_rounds_each_fused_op_once():
    """Known values (NumPy, float32 math, one rounding per torch op) for two SGD steps."""
    rng = np.random.default_rng(3)
    p0, g0, g1 = (_bf16(rng.standard_normal(4096)) for _ in range(3))
    lr, wd, mom, damp = 0.1, 0.25, 0.75, 0.25  # (momentum exact in bfloat16: buf.mul_(momentum) is its own op)
    p = tracenn.nn.Parameter(tracenn.tensor(p0, dtype=tracenn.bfloat16))
    opt = tracenn.optim.SGD([p], lr=lr, momentum=mom, dampening=damp, weight_decay=wd)
    ref_p, buf = p0, None
    for g in (g0, g1):
        p.grad = tracenn.tensor(g, dtype=tracenn.bfloat16)
        opt.step()
        d = _bf16(g + np.float32(wd) * ref_p)                        # grad.add(param, alpha=wd)
        buf = d if buf is None else _bf16(_bf16(buf * np.float32(mom)) + np.float32(1 - damp) * d)
        ref_p = _bf16(ref_p - np.float32(lr) * buf)                  # param.add_(buf, alpha=-lr)
        np.testing.assert_array_equal(to_np(opt.state[p]["momentum_buffer"]).astype(np.float32), buf)
        np.testing.assert_array_equal(to_np(p).astype(np.float32), ref_p)
    # (rounding lr * buf to bfloat16 first, as before, gives other numbers)
    assert not np.array_equal(_bf16(ref_p - _bf16(np.float32(lr) * buf)), ref_p)


def test_bfloat16_adagrad_addcdiv_rounds_once():
    rng = np.random.default_rng(4)
    p0, g = _bf16(rng.standard_normal(4096)), _bf16(rng.standard_normal(4096))
    p = tracenn.nn.Parameter(tracenn.tensor(p0, dtype=tracenn.bfloat16))
    opt = tracenn.optim.Adagrad([p], lr=0.125, initial_accumulator_value=0.5, eps=0.0625)
    p.grad = tracenn.tensor(g, dtype=tracenn.bfloat16)
    opt.step()
    state_sum = _bf16(np.float32(0.5) + g * g)                           # addcmul_(g, g, value=1)
    std = _bf16(_bf16(np.sqrt(state_sum)) + np.float32(0.0625))          # sqrt(), then add_(eps)
    np.testing.assert_array_equal(to_np(opt.state[p]["sum"]).astype(np.float32), state_sum)
    np.testing.assert_array_equal(to_np(p).astype(np.float32), _bf16(p0 + np.float32(-0.125) * g / std))


# hyper-parameters exact in bfloat16 (a Python-scalar operand is rounded to the tensor's dtype by
# tracenn's ops but not by torch's: that difference is not the optimizers')
NARROW_CASES = {
    "SGD": dict(lr=0.125, momentum=0.5, dampening=0.25, weight_decay=0.25),
    "SGD-nesterov": dict(lr=0.125, momentum=0.5, nesterov=True),
    "RMSprop": dict(lr=0.0625, alpha=0.75, centered=True, momentum=0.5, weight_decay=0.25, eps=0.0625),
    "RMSprop-plain": dict(lr=0.0625, alpha=0.75, eps=0.25),
    "Adagrad": dict(lr=0.125, weight_decay=0.25, eps=0.0625),
    "Adadelta": dict(lr=0.5, rho=0.75, eps=0.0625),
    "ASGD": dict(lr=0.125, weight_decay=0.25, lambd=0.0),
    "Adamax": dict(lr=0.125, betas=(0.5, 0.75), eps=0.0625),
}


def _run_narrow(lib, name, dtype, foreach=None, steps=5):
    options = dict(NARROW_CASES[name], **({} if foreach is None else {"foreach": foreach}))
    rng = np.random.default_rng(5)
    params = [lib.nn.Parameter(lib.tensor(rng.standard_normal(s).astype(np.float32)).to(getattr(lib, dtype)))
              for s in ((64, 64), (256,))]  # (big enough for torch's vectorized kernels)
    opt = getattr(lib.optim, name.split("-")[0])(params, **options)
    for _ in range(steps):
        for p in params:  # gradients from NumPy: the same bits for both libraries
            v = to_np(p).astype(np.float32)
            p.grad = lib.tensor(np.float32(2) * (v - np.float32(0.3)) + np.sin(np.float32(3) * v)).to(p.dtype)
        opt.step()
    return [to_np(p).astype(np.float32) for p in params], opt


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", list(NARROW_CASES))
def test_narrow_float_steps_equal_torch_bit_for_bit(name, dtype, torch):
    ours, opt = _run_narrow(tracenn, name, dtype)
    theirs, topt = _run_narrow(torch, name, dtype)
    for a, b in zip(ours, theirs):
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)
    for key, value in opt.state_dict()["state"][0].items():
        np.testing.assert_array_equal(to_np(value).astype(np.float32),
                                      to_np(topt.state_dict()["state"][0][key]).astype(np.float32), err_msg=key)


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adagrad"])
def test_narrow_float_loop_and_compiled_step_agree(name):
    eager, _ = _run_narrow(tracenn, name, "bfloat16", steps=3)
    loop, _ = _run_narrow(tracenn, name, "bfloat16", foreach=False, steps=3)
    for a, b in zip(eager, loop):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(5)
    params = [tracenn.nn.Parameter(tracenn.tensor(rng.standard_normal(s).astype(np.float32)).to(tracenn.bfloat16))
              for s in ((64, 64), (256,))]
    opt = getattr(tracenn.optim, name)(params, **NARROW_CASES[name])

    @tracenn.compile
    def step(grads):
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()

    for _ in range(3):
        grads = []
        for p in params:
            v = to_np(p).astype(np.float32)
            grads.append(tracenn.tensor(np.float32(2) * (v - np.float32(0.3)) + np.sin(np.float32(3) * v))
                         .to(tracenn.bfloat16))
        step(grads)
    for a, p in zip(eager, params):  # (XLA may keep excess precision inside its fusions)
        np.testing.assert_allclose(to_np(p).astype(np.float32), a, rtol=2e-2, atol=2e-2)
