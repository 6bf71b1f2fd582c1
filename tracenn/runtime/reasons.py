"""Why a compiled call missed its program cache, in plain words (``cm.explain()`` and the
recompile warnings): the difference between two guard keys."""
from __future__ import annotations

import math
import re
from collections import UserDict

import numpy as np

from ..dtypes import type_str
from ..utils._pytree import LEAF


def _type(shape, dtype) -> str:
    return type_str(shape, dtype)


def describe_change(prev, key, skeys, input_names, dynamic=frozenset(), canon=None) -> str:
    """Why ``key`` missed the cache, compared with the previous call's key, in plain words.
    ``dynamic``: the float arguments (by path, ``args[1]``) this recompile makes program inputs.
    ``canon``: the structure key as the cache compares it (without the plain values the traced code
    itself changes, ``self.calls += 1``, which are not guarded), so only what is guarded is named."""
    reasons = []
    if prev[0] != key[0]:
        a, b = skeys.get(prev[0]), skeys.get(key[0])
        if canon is not None and a is not None and b is not None:
            a, b = canon(a), canon(b)
        reasons += _structure_change(a, b)
    if prev[1] != key[1]:
        reasons.append(f"grad mode changed: {'enabled' if prev[1] else 'no_grad'} -> "
                       f"{'enabled' if key[1] else 'no_grad'}")
    a, b = prev[2], key[2]
    if len(a) != len(b):
        reasons.append(f"number of tensor inputs changed: {len(a)} -> {len(b)}")
    else:
        changes = {}  # (what changed, from, to) -> the inputs it changed for, in order
        for i, (x, y) in enumerate(zip(a, b)):
            nm = input_names[i] if i < len(input_names) else f"input {i}"
            if x[0] != y[0]:
                changes.setdefault(("shape", str(list(x[0])), str(list(y[0]))), []).append(nm)
            if x[1] != y[1]:
                changes.setdefault(("dtype", str(x[1]), str(y[1])), []).append(nm)
            if x[2] != y[2]:
                changes.setdefault(("requires_grad", str(x[2]), str(y[2])), []).append(nm)
        reasons += [f"{_names(names, 'input')} {what} changed: {x} -> {y}" for (what, x, y), names in changes.items()]
    sig_a, sig_b = _arguments(prev), _arguments(key)
    if sig_a != sig_b:
        reasons.append(_argument_change(sig_a, sig_b, dynamic))
    if not reasons:
        reasons.append("a new combination of previously seen guards")
    return "; ".join(reasons)


def explain_header(name: str, entries, limit: int, dropped: int = 0, dropped_calls: int = 0) -> str:
    """The first line of ``cm.explain()``: how many programs are cached and, apart from them, how
    many calls ran eagerly, for how many input signatures (``fallback='eager'``, past
    ``cache_size_limit``, a hook's replacement under grad): those have no program to count.
    ``entries``: the cache's entries (``.eager``, ``.calls``); ``dropped``: the eager signatures
    past the limit no longer kept, and ``dropped_calls`` their calls."""
    eager = [e for e in entries if e.eager]
    line = f"tracenn.compile({name}): {len(entries) - len(eager)} cached program(s), cache_size_limit={limit}"
    if eager or dropped:
        calls = sum(e.calls for e in eager) + dropped_calls
        line += f"; {calls} call(s) ran eagerly ({len(eager) + dropped} input signature(s) with no program)"
    return line


def _short(x) -> str:
    s = repr(x)
    return s if len(s) < 120 else s[:117] + "..."


def _names(names: list, noun: str) -> str:
    """``input 'x'``, ``inputs 'a', 'b'`` or ``inputs 'a', 'b', 'c' and 5 more``: one change that
    many inputs or state tensors share (a KV cache's past keys and values, an optimizer's first
    step) is said once."""
    if len(names) == 1:
        return f"{noun} {names[0]!r}".lstrip()
    shown = ", ".join(repr(n) for n in names[:3 if len(names) > 4 else 4])
    more = f" and {len(names) - 3} more" if len(names) > 4 else ""
    return f"{noun}s {shown}{more}".lstrip() if noun else f"{shown}{more}"


def _grouped(items: list[tuple[str, str]], noun: str = "") -> list[str]:
    """``(name, what happened)`` pairs said once per distinct happening, in first-seen order."""
    by_what: dict[str, list] = {}
    for name, what in items:
        by_what.setdefault(what, []).append(name)
    out = []
    for what, names in by_what.items():
        verb = what if len(names) == 1 else what.replace("was ", "were ", 1).replace("another tensor", "other tensors")
        out.append(f"{_names(names, noun)} {verb}")
    return out


_OPT_STATE = re.compile(r"^(.+)\.state\[(.+)\]\.([^.\[\]]+)$")  # 'opt.state[m.weight].exp_avg'


def _optimizer_state_added(state: list) -> list[str]:
    """The optimizer state entries that were added (``state``: (name, what) pairs; those are taken
    out of it) said per optimizer: a step's first call creates each parameter's state, so the
    second call compiles the program later steps use."""
    added: dict[str, tuple[dict, dict]] = {}  # optimizer -> (its parameters, its state keys), in order
    rest = []
    for name, what in state:
        m = _OPT_STATE.match(name) if what == "was added" else None
        if m is None:
            rest.append((name, what))
            continue
        params, keys = added.setdefault(m.group(1), ({}, {}))
        params[m.group(2)] = keys[m.group(3)] = None
    state[:] = rest
    return [f"{opt!r} state ({', '.join(keys)}) was added for {len(params)} parameter(s): an optimizer creates "
            "its state in its first step(), and the program for the steps after it reads that state"
            for opt, (params, keys) in added.items()]


# Non-tensor arguments: the structure key (utils._pytree.signature) of ``(args, kwargs)``, compared
# part by part, so a reason names the argument that changed and its values, not the whole key.

def _container(sig):
    """``(kind, parts)`` of a tuple, list, dict or dataclass signature, parts as (path, sig)
    pairs; None for a leaf (a tensor's LEAF, or (type, value) of a plain value)."""
    if not isinstance(sig, tuple) or len(sig) != 2 or not isinstance(sig[0], type):
        return None
    t, body = sig
    if issubclass(t, (tuple, list)) and isinstance(body, tuple):
        return t.__name__, [(f"[{i}]", x) for i, x in enumerate(body)]
    if isinstance(body, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in body) \
            and (issubclass(t, (dict, UserDict)) or hasattr(t, "__dataclass_fields__")):
        dot = not issubclass(t, (dict, UserDict))
        return t.__name__, [(f".{k}" if dot else f"[{k!r}]", x) for k, x in body]
    return None


def _describe_value(sig) -> str:
    if sig is LEAF:
        return "a tensor"
    if _is_array(sig):
        return _describe_array(sig)
    if isinstance(sig, tuple) and len(sig) == 2 and sig[0] == "id":
        return "another unhashable object"
    kind = _container(sig)
    if kind is not None:
        return f"a {kind[0]} of {len(kind[1])}"
    if isinstance(sig, tuple) and len(sig) == 2 and isinstance(sig[0], type):
        return _short(sig[1])
    return _short(sig)


def _is_array(sig) -> bool:
    """A NumPy array argument's guard (utils._pytree.array_signature)."""
    return isinstance(sig, tuple) and len(sig) == 4 and sig[0] == "ndarray"


def _describe_array(sig) -> str:
    """NumPy's repr of a small array (``array([0., 1.], dtype=float32)``; the guard holds its
    bytes), else ``a NumPy float32 array of shape (64, 64)`` (the guard holds a digest)."""
    _, shape, dtype, data = sig
    dtype = np.dtype(dtype)
    if len(data) != dtype.itemsize * math.prod(shape):
        return f"a NumPy {dtype.name} array of shape {tuple(shape)}"
    with np.printoptions(threshold=8, edgeitems=2):
        return repr(np.frombuffer(data, dtype).reshape(shape))


def _differences(a, b, path: str) -> list[tuple[str, object, object]]:
    if a == b:
        return []
    ca, cb = _container(a), _container(b)
    if ca is not None and cb is not None and a[0] is b[0] and [p for p, _ in ca[1]] == [p for p, _ in cb[1]]:
        return [d for (p, x), (_, y) in zip(ca[1], cb[1]) for d in _differences(x, y, path + p)]
    return [(path, a, b)]


def _arguments(key):
    """The structure key of a call's ``(args, kwargs)``; a call with only positional tensors has
    none in its key (the runtime's quick path), and gets that of ``((t, ...), {})``."""
    if len(key) > 3:
        return key[3]
    return (tuple, ((tuple, (LEAF,) * len(key[2])), (dict, ())))


def _argument_change(a, b, dynamic=frozenset()) -> str:
    """Which non-tensor arguments (or the arguments' structure) changed, by path, with the
    values: ``args[4] changed: 0.0004 -> 0.0006``."""
    diffs, heads = [], []
    ca, cb = _container(a), _container(b)
    if ca is not None and cb is not None and len(ca[1]) == len(cb[1]) == 2:  # (args, kwargs)
        (_, args_a), (_, kw_a) = ca[1]
        (_, args_b), (_, kw_b) = cb[1]
        na, nb = len(_container(args_a)[1]), len(_container(args_b)[1])
        if na != nb:
            heads.append(f"number of positional arguments changed: {na} -> {nb}")
        else:
            diffs += _differences(args_a, args_b, "args")
        ka, kb = [k for k, _ in kw_a[1]], [k for k, _ in kw_b[1]]
        if ka != kb:
            heads.append(f"keyword arguments changed: {', '.join(ka) or 'none'} -> {', '.join(kb) or 'none'}")
        else:
            diffs += _differences(kw_a, kw_b, "kwargs")
    else:
        diffs = [("the arguments", a, b)]
    parts = [f"{path} changed: {_describe_value(x)} -> {_describe_value(y)}" for path, x, y in diffs[:3]]
    if len(diffs) > 3:
        parts.append(f"and {len(diffs) - 3} more")
    text = "; ".join(heads + (["non-tensor argument " + "; ".join(parts)] if parts else []))
    floats = [path for path, x, y in diffs if _is_float(x) and _is_float(y)]  # (not ints: often sizes, topk's k)
    now = [p for p in floats if p in dynamic]
    if now:
        text += (f" ({', '.join(now)} {'is' if len(now) == 1 else 'are'} now a program input (dynamic): a Python "
                 "float argument whose value changes is passed as a 0-d float64 array, as torch.compile does, so "
                 "later values reuse this program)")
    arrays = [path for path, x, y in diffs if _is_array(x) and _is_array(y)]
    if arrays:
        text += (" (a NumPy array argument is guarded by its values, which the traced code may read as constants, "
                 "so each new array compiles a new program: pass it as a tensor, tracenn.from_numpy(array), to make "
                 "it a program input)")
    if len(now) < len(floats):
        text += (" (a float argument that the traced code needs as a Python number, with float(), math, an op "
                 "that takes only a number, or by returning or storing it, is a constant of the program, so each "
                 "new value compiles a new one: pass it as a tensor, tracenn.tensor(value), to make it a program "
                 "input)")
    return text


def _is_float(sig) -> bool:
    return isinstance(sig, tuple) and len(sig) == 2 and sig[0] in (float, complex)


def _structure_change(a, b) -> list[str]:
    if a is None or b is None:
        return ["module structure changed"]
    out = []
    modes = []
    ma, mb = dict((m[0], m[1:]) for m in a[0]), dict((m[0], m[1:]) for m in b[0])
    for path in mb:
        label = f"module {path!r}" if path else "the root module"
        if path not in ma:
            out.append(f"{label} was added")
            continue
        (ta, tra, ha, aa), (tb, trb, hb, ab) = ma[path], mb[path]
        if ta != tb:
            out.append(f"{label} was replaced: {ta.__name__} -> {tb.__name__}")
        if tra != trb:
            modes.append((label, f"{'train' if tra else 'eval'} -> {'train' if trb else 'eval'}"))
        if ha != hb:
            out.append(f"hooks on {label} changed")
        if aa != ab and ta == tb:  # (a replaced module's attributes differ as a matter of course)
            at = f"{path}." if path else ""
            out += _value_changes("attribute ", {at + k: v for k, v in aa}, {at + k: v for k, v in ab})
    for path in ma:
        if path not in mb:
            out.append(f"module {path!r} was removed")
    if len(modes) > 2 and len({m for _, m in modes}) == 1:
        out.insert(0, f"mode changed: {modes[0][1]} ({modes[0][0]} and {len(modes) - 1} more module(s))")
    else:
        out[:0] = [f"{label} mode changed: {m}" for label, m in modes]
    sa, sb = dict((s[0], s[1:]) for s in a[1]), dict((s[0], s[1:]) for s in b[1])
    state = []  # (name, what happened), said once per happening: an optimizer's first step adds dozens
    for name in sb:
        if name not in sa:
            state.append((name, "was added"))
            continue
        (ia, sha, da, ra, ha), (ib, shb, db, rb, hb) = sa[name], sb[name]
        if ia != ib:
            state.append((name, "was replaced by another tensor"))
        elif sha != shb or da != db:
            state.append((name, f"changed from {_type(sha, da)} to {_type(shb, db)}"))
        if ra != rb:
            state.append((name, f"requires_grad changed: {ra} -> {rb}"))
        if ha != hb:
            state.append((name, f"gradient hooks {'added' if hb else 'removed'}"))
    state += [(name, "was removed") for name in sa if name not in sb]
    out += _optimizer_state_added(state)
    out += _grouped(state)
    if a[2] != b[2]:
        out.append("global module hooks changed")
    # the rest: a module's (autocast,); a function's ((optimizer options, GradScaler keys), autocast,
    # shared arrays, plain values it reads)
    rest_a, rest_b = a[3:], b[3:]
    if len(rest_a) == len(rest_b) == 4:
        if rest_a[3] != rest_b[3]:
            out += _value_changes("", dict(rest_a[3]), dict(rest_b[3]))
        rest_a, rest_b = rest_a[:3], rest_b[:3]
    if len(rest_a) == len(rest_b) == 3:
        (opt_a, sc_a), (opt_b, sc_b) = rest_a[0], rest_b[0]
        if opt_a != opt_b:
            out.append("optimizer options changed")
        if sc_a != sc_b:
            out.append("a GradScaler's options or scale tensor changed")
        if rest_a[2] != rest_b[2]:
            out.append(_shared_change(dict(rest_a[2]), dict(rest_b[2])))
        rest_a, rest_b = rest_a[1:2], rest_b[1:2]
    if rest_a != rest_b:
        out.append(f"autocast changed: {_autocast(rest_a)} -> {_autocast(rest_b)}")
    return out or ["module state changed"]


def _value_changes(what: str, a: dict, b: dict) -> list[str]:
    """Plain values (module attributes, a function's globals) by name, before and after, in words."""
    out = [f"{what}{n!r} changed: {_short(a[n])} -> {_short(b[n])}" for n in b if n in a and a[n] != b[n]]
    out += [f"{what}{n!r} was set ({_short(b[n])})" for n in b if n not in a]
    out += [f"{what}{n!r} was removed" for n in a if n not in b]
    return out


def _autocast(rest) -> str:
    """The autocast part of a structure key (None, or (low dtype, "cpu" | "cuda") whose op lists
    apply), in words."""
    state = rest[0] if len(rest) == 1 else rest
    if state is None:
        return "off"
    dtype, lists = state
    return f"to {dtype}" + ("" if lists == "cpu" else f" ({lists}'s op lists)")


def _shared_change(a: dict, b: dict) -> str:
    """Aliases (state name -> the name whose array it shares) before and after, in words."""
    gone = [n for n in a if b.get(n) != a[n]]
    names = gone or [n for n in b if n not in a]
    more = f" and {len(names) - 1} more" if len(names) > 1 else ""
    verb = "share" if more else "shares"
    if gone:
        return (f"optimizer state {gone[0]!r}{more} no longer {verb} one array with {a[gone[0]]!r} (one was "
                "changed apart from the others): each now enters the program on its own")
    return f"optimizer state {names[0]!r}{more} now {verb} one array with {b[names[0]]!r}: it enters the program once"
