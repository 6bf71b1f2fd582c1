"""Random numbers inside ``tracenn.func`` transforms, as program inputs.

A generator is a key and a counter; the k-th draw uses ``fold_in(key, counter + k)`` (see
:mod:`tracenn.random`). A transformed call that runs as one jitted program takes, per generator
the function draws from, its key and its counter at the start of the call as two more arguments,
so the program is traced once and every call draws fresh numbers: the numbers eager code would
draw from the same generator state, draw for draw. After the call the generator's counter moves
past the call's draws, a count known when the function was traced. (``tracenn.compile`` does the
same with its graph's rng inputs: ``Tracer.rng``.)

While the user's function runs under a transform, :class:`_Draws` (``_DRAWS[0]``) hands out the
draws; ``Frame.random`` then applies vmap's randomness to the key.
"""
from __future__ import annotations


class _Draws:
    """The draws of one run of a transformed function: which generators it draws from (by
    identity, in order of first use) and how many times from each.

    Without ``rng`` the draws use each generator's own key and counter, unmoved until
    :meth:`advance` (eagerly, and when finding the generators before a program is made); with
    ``rng`` (``[key, counter start]`` per generator of ``gens``, a program's arguments) they are
    taken from those."""

    def __init__(self, gens=(), rng=None):
        self.gens = list(gens)
        self.counts = [0] * len(self.gens)
        self.rng = rng

    def next(self, gen):
        """(key, counter) for one draw from ``gen``."""
        i = next((i for i, g in enumerate(self.gens) if g is gen), None)
        if i is None:
            if self.rng is not None:
                raise RuntimeError(
                    "tracenn.func: the transformed function drew from a generator it did not draw from when "
                    "its program was made (it chooses generators from something other than its arguments, "
                    "closures and globals). Pass the tracenn.Generator in as an argument, or capture it in "
                    "a closure, so each call draws from the same one.")
            i = len(self.gens)
            self.gens.append(gen)
            self.counts.append(0)
        n = self.counts[i]
        self.counts[i] = n + 1
        if self.rng is None:
            return gen._key, gen._counter + n
        key, start = self.rng[2 * i], self.rng[2 * i + 1]
        return key, start + n if n else start

    def mark(self) -> list:
        """The draw counts so far (for :meth:`rewind`)."""
        return list(self.counts)

    def rewind(self, mark):
        """Draw again from where :meth:`mark` was taken: a second trace of the same computation
        (the remainder of vmap's chunks) draws the same counters as the first."""
        self.counts = list(mark) + [0] * (len(self.counts) - len(mark))

    def advance(self):
        """Move each generator's counter past the draws made (after a successful call)."""
        for gen, n in zip(self.gens, self.counts):
            gen._counter += n


def rng_args(gens) -> list:
    """A program's random arguments: ``[key, counter]`` per generator, their current state."""
    out = []
    for gen in gens:
        out += (gen._key, gen._counter)
    return out


class _drawing:
    """``with _drawing(draws):`` random ops inside transforms draw through ``draws``."""

    def __init__(self, draws):
        self.draws = draws

    def __enter__(self):
        self.old = _DRAWS[0]
        _DRAWS[0] = self.draws
        return self.draws

    def __exit__(self, *exc):
        _DRAWS[0] = self.old
        return False


_DRAWS = [None]  # the _Draws of the transformed call running now (None outside one)
