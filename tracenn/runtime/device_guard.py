"""The device guard of a compiled call, armed only when several devices are in use.

A CPU-only program has one device, so its guard key leaves devices out and a call pays nothing for
them. Once a second device is asked for (``tracenn.device.SEVERAL``, set by ``.cuda()`` /
``.to("cuda")``; arming it moves the epoch, so every compiled call re-reads its state), each tensor
the guard key's first element (the structure key's number) becomes ``(that number, the inputs'
devices, the state's device)``:

- an input on another device than the model's parameters and buffers (``model.cuda()`` then
  ``cm(x_cpu)``), or two inputs on two devices, raise torch's ``RuntimeError`` ("Expected all
  tensors to be on the same device...") as the eager model does, where JAX would copy the arrays
  over silently; the check runs when a key is new, so a call that found its program pays nothing;
- the model and its inputs moved together compile a program for the new device, as torch.compile
  recompiles on a device change; ``explain()`` names the move.

A model whose own parameters are on several devices (a hand-split model) is not checked against
its inputs: JAX places each program's arrays as it does without the guard.
"""
from __future__ import annotations

from ..device import from_jax, mismatch

_SEVERAL_STATE = "several"  # the state's device when its tensors are on more than one


def device_of(v):
    """The one device of array ``v`` (its device set if it spans several; None if it has none)."""
    ds = getattr(getattr(v, "sharding", None), "device_set", None)
    if not ds:
        return None
    return next(iter(ds)) if len(ds) == 1 else ds


def state_device(state: dict):
    """The device the parameters and buffers (``name -> Tensor``) share, ``"several"``, or None.
    0-d tensors may be anywhere, as in torch."""
    found = None
    for t in state.values():
        v = getattr(t, "_value", None)
        if v is None or getattr(v, "ndim", 0) == 0:
            continue
        d = device_of(v)
        if d is None:
            continue
        if found is None:
            found = d
        elif d != found:
            return _SEVERAL_STATE
    return found


def keyed_sid(sid, leaves, state_dev) -> tuple:
    """The guard key's first element with devices: the structure key's number, each tensor input's
    device and the state's (the rest of the key keeps its layout, which runtime/entry.py and
    runtime/reasons.py read)."""
    return sid, tuple(device_of(a._value) for a in leaves), state_dev


def skeys_with_devices(skeys: dict, *sids) -> dict:
    """``skeys`` (structure key by number) that also resolves the keyed numbers among ``sids``."""
    if not any(isinstance(k, tuple) for k in sids):
        return skeys
    out = dict(skeys)
    for k in sids:
        if isinstance(k, tuple):
            out[k] = skeys.get(k[0])
    return out


def check_devices(name: str, leaves, input_names, state: dict, state_dev) -> None:
    """torch's error when the inputs, or the inputs and the model's state, are on two devices."""
    named = [(input_names[i] if i < len(input_names) else f"input {i}", t._value)
             for i, t in enumerate(leaves)]
    if state_dev is not None and state_dev != _SEVERAL_STATE:
        for n, t in state.items():
            v = getattr(t, "_value", None)
            if v is not None and getattr(v, "ndim", 0) and device_of(v) == state_dev:
                named.append((n, v))
                break
    msg = mismatch(named)
    if msg is not None:
        raise RuntimeError(f"{msg} (in tracenn.compile({name}): a compiled call checks, as the eager model "
                           "does, that its inputs and the parameters and buffers share a device)")


def device_name(d) -> str:
    """``cuda:0``, ``cpu``, ``cpu (JAX device 1)`` for a second (simulated) CPU device."""
    if d is None:
        return "no device"
    if d == _SEVERAL_STATE or isinstance(d, frozenset):
        return "several devices"
    name = str(from_jax(d))
    return name if name != "cpu" or not getattr(d, "id", 0) else f"cpu (JAX device {d.id})"


def device_change(prev, key, input_names) -> str | None:
    """What moved between two guard keys, in plain words (None if no device did)."""
    a, b = prev[0], key[0]
    if a == b or not (isinstance(a, tuple) or isinstance(b, tuple)):
        return None
    if not (isinstance(a, tuple) and isinstance(b, tuple)):
        return "a second device is in use now: the inputs' and the model's devices are guarded"
    said = []
    if len(a[1]) == len(b[1]):
        for i, (x, y) in enumerate(zip(a[1], b[1])):
            if x != y:
                nm = input_names[i] if i < len(input_names) else f"input {i}"
                said.append(f"input {nm!r} moved: {device_name(x)} -> {device_name(y)}")
    if a[2] != b[2]:
        said.append(f"the parameters and buffers moved: {device_name(a[2])} -> {device_name(b[2])}")
    return "; ".join(said) or None
