"""``tracenn.nn.attention``: choosing the kernel of ``scaled_dot_product_attention``, and ``flex_attention``.

``sdpa_kernel`` and ``SDPBackend`` are torch's, for scripts that select a kernel. XLA chooses its own
attention kernel, so the selection is a kept setting: ``sdpa_kernel`` sets the switches of
``tracenn.backends.cuda`` (``flash_sdp_enabled()`` and the rest read back what it set) and restores
them on exit, and no number changes. :mod:`tracenn.nn.attention.flex_attention` has ``flex_attention``
with score and mask functions.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable

from ...backends import SDPAParams, SDPBackend, _SDP_ENABLED, _SDP_PRIORITY  # noqa: F401
from ...backends import _no_fused_kernel as can_use_efficient_attention  # noqa: F401
from ...backends import _no_fused_kernel as can_use_flash_attention  # noqa: F401

__all__ = ["SDPBackend", "sdpa_kernel", "WARN_FOR_UNFUSED_KERNELS", "register_flash_attention_impl",
           "activate_flash_attention_impl", "list_flash_attention_impls", "current_flash_attention_impl",
           "restore_flash_attention_impl"]

# torch warns why its fused kernels cannot run when this is True; XLA picks its kernel, so it is kept only.
WARN_FOR_UNFUSED_KERNELS = False

# The switch names of tracenn.backends' sdp settings, with the backend each one enables (torch's table).
_backend_names = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION", "mem_efficient": "EFFICIENT_ATTENTION",
                  "math": "MATH", "overrideable": "OVERRIDEABLE"}


def _cur_sdpa_kernel_backends(with_priority: bool = False) -> list[SDPBackend]:
    backends = [SDPBackend[val] for name, val in _backend_names.items() if _SDP_ENABLED[name]]
    if with_priority:
        backends.sort(key=lambda backend: _SDP_PRIORITY.index(int(backend)))
    return backends


def _sdpa_kernel(backends: Iterable, set_priority: bool = False) -> None:
    backends = list(backends)
    for name, val in _backend_names.items():
        _SDP_ENABLED[name] = SDPBackend[val] in backends
    if set_priority:
        order = [int(b) for b in backends]
        order += [b for b in _SDP_PRIORITY if b not in order]
        _SDP_PRIORITY[:] = order


@contextlib.contextmanager
def sdpa_kernel(backends: list[SDPBackend] | SDPBackend, set_priority: bool = False):
    """Select the kernels ``scaled_dot_product_attention`` may use inside the block; the previous
    selection is restored on exit.

    XLA chooses its own attention kernel, so in tracenn this records the selection (read back through
    ``tracenn.backends.cuda.flash_sdp_enabled()`` and the rest) and changes no numbers.

    Args:
        backends: one :class:`SDPBackend` or a list of them; the others are switched off.
        set_priority: whether the list's order is also the priority order.

    >>> import tracenn
    >>> from tracenn.nn.attention import SDPBackend, sdpa_kernel
    >>> with sdpa_kernel(SDPBackend.MATH):
    ...     tracenn.backends.cuda.flash_sdp_enabled(), tracenn.backends.cuda.math_sdp_enabled()
    (False, True)
    >>> tracenn.backends.cuda.flash_sdp_enabled()
    True
    """
    if not isinstance(backends, (list, SDPBackend)):
        raise AssertionError("Backend must be an instance of SDPBackend or a list of SDPBackend instances, got "
                             f"{type(backends).__name__}")
    if isinstance(backends, SDPBackend):
        backends = [backends]
    backends = list(dict.fromkeys(backends))
    previous = _cur_sdpa_kernel_backends(with_priority=set_priority)
    try:
        _sdpa_kernel(backends, set_priority)
        yield {}
    finally:
        _sdpa_kernel(previous, set_priority)


def _get_flash_version() -> str:
    return "2.5.7"


# torch's registry of FlashAttention implementations (FA3/FA4 kernels a provider installs into torch's
# dispatcher). tracenn has no dispatcher to install into: the registry keeps names, and activating
# one runs its register function as torch does, which changes no tracenn numbers.
_FLASH_ATTENTION_IMPLS: dict = {}
_FLASH_ATTENTION_ACTIVE: list = []  # [(name, handle)] while one is active


def register_flash_attention_impl(impl: str, *, register_fn) -> None:
    """Register the callable that activates a flash attention implementation (kept; see the module doc)."""
    _FLASH_ATTENTION_IMPLS[impl] = register_fn


def activate_flash_attention_impl(impl: str) -> None:
    """Run the register function of a registered implementation (XLA still chooses the kernel)."""
    restore_flash_attention_impl(_raise_warn=False)
    register_fn = _FLASH_ATTENTION_IMPLS.get(impl)
    if register_fn is None:
        raise ValueError(f"Unknown flash attention impl '{impl}'. Available implementations: "
                         f"{list_flash_attention_impls()}")
    handle = register_fn()
    if handle is not None:
        _FLASH_ATTENTION_ACTIVE[:] = [(impl, handle)]


def list_flash_attention_impls() -> list[str]:
    """The names of the registered flash attention implementations (none are built in)."""
    return sorted(_FLASH_ATTENTION_IMPLS)


def current_flash_attention_impl() -> str | None:
    """The active implementation's name, or None."""
    return _FLASH_ATTENTION_ACTIVE[0][0] if _FLASH_ATTENTION_ACTIVE else None


def restore_flash_attention_impl(_raise_warn: bool = True) -> None:
    """Back to the default implementation (removes an active one's handle)."""
    if _FLASH_ATTENTION_ACTIVE:
        _FLASH_ATTENTION_ACTIVE.pop()[1].remove()
    elif _raise_warn:
        import logging
        logging.getLogger(__name__).warning("Trying to restore default FA2 impl when no custom impl was activated")


from . import flex_attention  # noqa: E402,F401
