"""``tracenn.cuda``'s random-state functions, mapped onto tracenn's one generator.

tracenn draws every random number, on any device, from one generator
(``tracenn.random.default_generator``), so with a GPU these functions read and set that
generator: ``tracenn.cuda.manual_seed(0)`` is ``tracenn.manual_seed(0)``, ``get_rng_state()`` is
``tracenn.get_rng_state()``, and ``get_rng_state_all()`` holds one copy of its state per GPU.
Without a GPU they do what torch's CPU-only build does: the seeding and setting functions do
nothing (torch queues them for a CUDA start that never comes), ``get_rng_state_all()`` is ``[]``,
and ``get_rng_state()`` / ``initial_seed()`` raise.

>>> import tracenn
>>> tracenn.cuda.manual_seed_all(0)  # (seeds tracenn's generator when a GPU is visible)
"""
from __future__ import annotations

from .. import random as _random
from . import _gpu


def _generator(device="cuda"):
    _gpu.jax_device(device)
    return _random.default_generator


def get_rng_state(device="cuda"):
    """The state of tracenn's generator (a uint8 tensor), as ``tracenn.get_rng_state()``."""
    return _generator(device).get_state()


def get_rng_state_all() -> list:
    """One copy of tracenn's generator state per GPU ([] without a GPU)."""
    return [get_rng_state(i) for i in range(len(_gpu.gpus()))]


def set_rng_state(new_state, device="cuda") -> None:
    """Set tracenn's generator from a state :func:`get_rng_state` gave (nothing without a GPU)."""
    if _gpu.gpus():
        _generator(device).set_state(new_state)


def set_rng_state_all(new_states) -> None:
    """Set tracenn's one generator from the first GPU's state in ``new_states`` (there is one
    generator for all GPUs; :func:`get_rng_state_all` gives copies of the same state)."""
    states = list(new_states)
    if _gpu.gpus() and states:
        set_rng_state(states[0], 0)


def manual_seed(seed: int) -> None:
    """Seed tracenn's generator, as ``tracenn.manual_seed`` (nothing without a GPU, as in torch)."""
    if _gpu.gpus():
        _random.manual_seed(int(seed))


manual_seed_all = manual_seed


def seed() -> None:
    """Seed tracenn's generator from a non-deterministic source (nothing without a GPU)."""
    if _gpu.gpus():
        _random.default_generator.seed()


seed_all = seed


def initial_seed() -> int:
    """The seed tracenn's generator was last seeded with."""
    return _generator().initial_seed()
