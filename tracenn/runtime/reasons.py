"""Why a compiled call missed its program cache, in plain words (``cm.explain()`` and the
recompile warnings): the difference between two guard keys."""
from __future__ import annotations

from ..dtypes import type_str
from ..utils._pytree import LEAF


def _type(shape, dtype) -> str:
    return type_str(shape, dtype)


def describe_change(prev, key, skeys, input_names) -> str:
    """Why ``key`` missed the cache, compared with the previous call's key, in plain words."""
    reasons = []
    if prev[0] != key[0]:
        reasons += _structure_change(skeys.get(prev[0]), skeys.get(key[0]))
    if prev[1] != key[1]:
        reasons.append(f"grad mode changed: {'enabled' if prev[1] else 'no_grad'} -> "
                       f"{'enabled' if key[1] else 'no_grad'}")
    a, b = prev[2], key[2]
    if len(a) != len(b):
        reasons.append(f"number of tensor inputs changed: {len(a)} -> {len(b)}")
    else:
        for i, (x, y) in enumerate(zip(a, b)):
            nm = input_names[i] if i < len(input_names) else f"input {i}"
            if x[0] != y[0]:
                reasons.append(f"input {nm!r} shape changed: {list(x[0])} -> {list(y[0])}")
            if x[1] != y[1]:
                reasons.append(f"input {nm!r} dtype changed: {x[1]} -> {y[1]}")
            if x[2] != y[2]:
                reasons.append(f"input {nm!r} requires_grad changed: {x[2]} -> {y[2]}")
    if (prev[3] if len(prev) > 3 else LEAF) != (key[3] if len(key) > 3 else LEAF):
        reasons.append("non-tensor arguments or the argument structure changed: "
                       f"{_short(prev[3] if len(prev) > 3 else None)} -> {_short(key[3] if len(key) > 3 else None)}")
    if not reasons:
        reasons.append("a new combination of previously seen guards")
    return "; ".join(reasons)


def _short(x) -> str:
    s = repr(x)
    return s if len(s) < 120 else s[:117] + "..."


def _structure_change(a, b) -> list[str]:
    if a is None or b is None:
        return ["module structure changed"]
    out = []
    modes = []
    ma, mb = dict((m[0], m[1:]) for m in a[0]), dict((m[0], m[1:]) for m in b[0])
    for path in mb:
        label = repr(path) if path else "the root module"
        if path not in ma:
            out.append(f"module {label} was added")
            continue
        (ta, tra, ha, aa), (tb, trb, hb, ab) = ma[path], mb[path]
        if ta != tb:
            out.append(f"module {label} was replaced: {ta.__name__} -> {tb.__name__}")
        if tra != trb:
            modes.append((label, f"{'train' if tra else 'eval'} -> {'train' if trb else 'eval'}"))
        if ha != hb:
            out.append(f"hooks on module {label} changed")
        if aa != ab and ta == tb:  # (a replaced module's attributes differ as a matter of course)
            at = f"{path}." if path else ""
            out += _value_changes("attribute ", {at + k: v for k, v in aa}, {at + k: v for k, v in ab})
    for path in ma:
        if path not in mb:
            out.append(f"module {path!r} was removed")
    if len(modes) > 2 and len({m for _, m in modes}) == 1:
        out.insert(0, f"mode changed: {modes[0][1]} ({modes[0][0]} and {len(modes) - 1} more module(s))")
    else:
        out[:0] = [f"module {label} mode changed: {m}" for label, m in modes]
    sa, sb = dict((s[0], s[1:]) for s in a[1]), dict((s[0], s[1:]) for s in b[1])
    for name in sb:
        if name not in sa:
            out.append(f"{name!r} was added")
            continue
        (ia, sha, da, ra, ha), (ib, shb, db, rb, hb) = sa[name], sb[name]
        if ia != ib:
            out.append(f"{name!r} was replaced by another tensor")
        elif sha != shb or da != db:
            out.append(f"{name!r} changed from {_type(sha, da)} to {_type(shb, db)}")
        if ra != rb:
            out.append(f"{name!r} requires_grad changed: {ra} -> {rb}")
        if ha != hb:
            out.append(f"{name!r} gradient hooks {'added' if hb else 'removed'}")
    for name in sa:
        if name not in sb:
            out.append(f"{name!r} was removed")
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
