"""Helpers shared by tests: ``from helpers import assert_close, to_np`` (tests/ is on pythonpath)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np

import tracenn


def to_np(x) -> np.ndarray:
    """numpy values of a tracenn tensor, a torch tensor, or anything array-like."""
    if isinstance(x, tracenn.Tensor):
        return np.asarray(x.detach()._value)
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # torch.Tensor
        t = x.detach()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    return np.asarray(x)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, check_dtype=True):
    a, e = to_np(actual), to_np(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    if check_dtype:
        assert a.dtype == e.dtype or str(a.dtype) == str(e.dtype).replace("torch.", ""), f"dtype {a.dtype} != {e.dtype}"
    np.testing.assert_allclose(a.astype(np.float64) if a.dtype.kind not in "bc" else a,
                               e.astype(np.float64) if e.dtype.kind not in "bc" else e,
                               rtol=rtol, atol=atol, equal_nan=True)


def load_by_path(name, path):
    """Import the module at ``path`` once, as ``name`` (pytest runs with --import-mode=importlib,
    so test modules cannot import each other by name)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def two_groups(lib, pb, name, kw):
    """Optimizer ``name`` of ``lib`` (tracenn or torch) over a problem's two parameters, in two
    param groups (the second with lr 0.02): the optimizer state-dict tests' setup."""
    return getattr(lib.optim, name)([{"params": [pb.params[0]]}, {"params": [pb.params[1]], "lr": 0.02}], **kw)


def state_to_lib(lib, obj):
    """A state dict with every tensor converted to ``lib``'s tensors (via NumPy)."""
    if hasattr(obj, "detach") and hasattr(obj, "shape"):
        return lib.tensor(to_np(obj).copy())
    if isinstance(obj, dict):
        return {k: state_to_lib(lib, v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(state_to_lib(lib, v) for v in obj)
    return obj


def central_differences(loss, arrays, which, h=1e-6):
    """dL/dRe + i dL/dIm of ``arrays[which]`` (NumPy, float64 or complex128) by central
    differences of ``loss(list of arrays) -> float``: torch's gradient convention for complex inputs."""
    x = arrays[which]
    g = np.zeros(x.shape, x.dtype)
    for pos in np.ndindex(*x.shape):
        for unit in ((1.0, 1j) if x.dtype.kind == "c" else (1.0,)):
            args = list(arrays)
            xp, xm = x.copy(), x.copy()
            xp[pos] += h * unit
            xm[pos] -= h * unit
            args[which] = xp
            up = loss(args)
            args[which] = xm
            g[pos] += unit * (up - loss(args)) / (2 * h)
    return g


def sum_loss_step(model, opt):
    """A training step of ``model`` on the sum of its output: zero_grad, forward, backward, step."""
    def step(x):
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        opt.step()
        return loss
    return step


def run_on_simulated_devices(script: str, n: int, timeout: int = 600):
    """Run ``script`` in a fresh Python whose XLA sees ``n`` CPU devices (the session's XLA_FLAGS kept)
    and return the JSON object its last output line holds."""
    flags = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}"
    env = dict(os.environ, XLA_FLAGS=flags.strip(),
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(tracenn.__file__)),
                                           os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])
