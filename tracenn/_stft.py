"""``torch.stft`` and ``torch.istft`` (also ``Tensor.stft``/``Tensor.istft``), built from tensor
ops (padding, framing, the FFT, overlap-add), so they differentiate and compile like any other.
"""
from __future__ import annotations

import warnings

from . import _dispatch, fft
from .tensor import Tensor

__all__ = ["stft", "istft"]


def _describe(input, n_fft, hop, win, window, **flags) -> str:
    """torch's call description that starts its stft/istft errors."""
    kind = f"torch.{input.dtype.__str__().split('.')[-1].capitalize().replace('float32', 'Float')}Tensor"
    win_text = "None" if window is None else f"torch.FloatTensor{{{list(window.shape)}}}"
    rest = ", ".join(f"{k}={v}" for k, v in flags.items())
    return (f"{kind}{list(input.shape)}, n_fft={n_fft}, hop_length={hop}, win_length={win}, window={win_text}"
            + (f", {rest}" if rest else ""))


def _window(window, n_fft, win_length, name, call):
    """The window, padded on both sides to ``n_fft`` (rectangular when None)."""
    import tracenn
    if not 0 < win_length <= n_fft:
        raise RuntimeError(f"{name}({call}) : expected 0 < win_length <= n_fft, but got win_length={win_length}")
    if window is None:
        warnings.warn(
            "A window was not provided. A rectangular window will be applied, which is known to cause spectral "
            "leakage. Pass one (torch.hann_window(n_fft)), or window=torch.ones(n_fft) to keep the rectangular "
            "one without this warning.", UserWarning, stacklevel=3)
        window = tracenn.ones(win_length)
    elif window.dim() != 1 or window.shape[0] != win_length:
        raise RuntimeError(f"{name}({call}) : expected a 1D window tensor of size equal to win_length={win_length}, "
                           f"but got window with size {list(window.shape)}")
    if win_length < n_fft:
        left = (n_fft - win_length) // 2
        window = tracenn.nn.functional.pad(window, (left, n_fft - win_length - left))
    return window


def stft(input: Tensor, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
         window: Tensor | None = None, center: bool = True, pad_mode: str = "reflect", normalized: bool = False,
         onesided: bool | None = None, return_complex: bool | None = None, align_to_window: bool | None = None):
    """The short-time Fourier transform of a signal ``(L,)`` or batch ``(B, L)``: a complex
    ``(B?, n_fft // 2 + 1, frames)`` (``onesided``, the default for real input and window), frame
    ``t`` covering samples ``[t * hop_length, t * hop_length + n_fft)`` of the signal, padded by
    ``n_fft // 2`` on each side with ``pad_mode`` when ``center``."""
    import tracenn
    hop = n_fft // 4 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length
    call = _describe(input, n_fft, hop, win, window, normalized=int(normalized), onesided=onesided,
                     return_complex=None if return_complex is None else int(return_complex),
                     align_to_window=align_to_window)
    if return_complex is None and not input.is_complex() and not (window is not None and window.is_complex()):
        raise RuntimeError("stft requires the return_complex parameter be given for real inputs, and will further "
                           "require that return_complex=True in a future PyTorch release.")
    if input.dim() not in (1, 2):
        raise RuntimeError(f"stft: expected a 1D or 2D tensor, but got {input.dim()}D (pass a signal (L,) or a "
                           "batch of signals (B, L))")
    if align_to_window is not None and center:
        raise RuntimeError("stft align_to_window should only be set when center = false")
    x = input if input.dim() == 2 else input.unsqueeze(0)
    if center:
        half = n_fft // 2
        x = tracenn.nn.functional.pad(x.unsqueeze(1), (half, half), mode=pad_mode).squeeze(1)
    elif align_to_window and win < n_fft:  # frame t's window (not its n_fft samples) starts at t * hop
        left = (n_fft - win) // 2
        x = tracenn.nn.functional.pad(x, (left, n_fft - win - left))
    length = x.shape[-1]
    if not 0 < n_fft <= length:
        raise RuntimeError(f"stft({call}) : expected 0 < n_fft < {length}, but got n_fft={n_fft}")
    if hop <= 0:
        raise RuntimeError(f"stft({call}) : expected hop_length > 0, but got hop_length={hop}")
    w = _window(window, n_fft, win, "stft", call)
    frames = x.unfold(-1, n_fft, hop) * w  # (B, frames, n_fft)
    complex_in = input.is_complex() or w.is_complex()
    if onesided is None:
        onesided = not complex_in
    if onesided and complex_in:
        raise RuntimeError("Cannot have onesided output if window or input is complex")
    spec = fft.rfft(frames, dim=-1) if onesided else fft.fft(frames, dim=-1)
    if normalized:
        spec = spec * (n_fft ** -0.5)
    spec = spec.transpose(-1, -2)
    if input.dim() == 1:
        spec = spec.squeeze(0)
    if not return_complex:
        return tracenn.view_as_real(spec)
    return spec


def istft(input: Tensor, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
          window: Tensor | None = None, center: bool = True, normalized: bool = False,
          onesided: bool | None = None, length: int | None = None, return_complex: bool = False) -> Tensor:
    """The inverse of :func:`stft`: each frame's inverse FFT, windowed, overlap-added, and divided
    by the overlap-added squared window (which must not vanish anywhere in the kept signal)."""
    import tracenn
    hop = n_fft // 4 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length
    if not input.is_complex():
        raise RuntimeError("istft requires a complex-valued input tensor matching the output from stft with "
                           "return_complex=True.")
    if input.dim() not in (2, 3):
        raise RuntimeError(f"istft: expected a tensor of 2 or 3 dimensions (freq, frames) or (B, freq, frames), "
                           f"but got {input.dim()}D")
    call = _describe(input, n_fft, hop, win, window, center=int(center), normalized=int(normalized),
                     onesided=onesided, length=length, return_complex=int(return_complex))
    if hop <= 0:
        raise RuntimeError(f"istft({call}) : expected hop_length > 0, but got hop_length={hop}")
    spec = input if input.dim() == 3 else input.unsqueeze(0)
    if onesided is None:
        onesided = spec.shape[-2] != n_fft
    expected = n_fft // 2 + 1 if onesided else n_fft
    if spec.shape[-2] != expected:
        raise RuntimeError(f"istft({call}) : expected the frequency dimension (3rd to the last) of the input tensor "
                           f"to match n_fft / 2 + 1 when onesided=True, but got {spec.shape[-2]}" if onesided else
                           f"istft({call}) : expected the frequency dimension (3rd to the last) of the input tensor "
                           f"to match n_fft when onesided=False, but got {spec.shape[-2]}")
    if onesided and return_complex:
        raise RuntimeError("cannot have onesided output if window or input is complex")
    w = _window(window, n_fft, win, "istft", call)
    if normalized:
        spec = spec * (n_fft ** 0.5)
    spec = spec.transpose(-1, -2)  # (B, frames, freq)
    frames = (fft.irfft(spec, n=n_fft, dim=-1) if onesided else fft.ifft(spec, dim=-1)) * w
    if not return_complex and frames.is_complex():
        frames = frames.real
    n_frames = frames.shape[-2]
    total = n_fft + hop * (n_frames - 1)
    y = _overlap_add(frames, total, n_fft, hop)
    env = _overlap_add((w * w).expand(1, n_frames, n_fft), total, n_fft, hop)
    start = n_fft // 2 if center else 0
    end = total if length is None and not center else (total - n_fft // 2 if length is None else start + length)
    end = min(end, total)
    y, env = y[:, start:end], env[:, start:end]
    if not _dispatch.abstract(env._value) and env.numel() \
            and float(env.abs().min()) < 1e-11:
        raise RuntimeError(f"istft({call}) window overlap add min: {float(env.abs().min()):.3g}: the window's "
                           "squares overlap-added must be nonzero everywhere (NOLA); use the window and hop_length "
                           "stft used, with enough overlap")
    y = y / env
    if length is not None and y.shape[-1] < length:
        y = tracenn.nn.functional.pad(y, (0, length - y.shape[-1]))
    return y.squeeze(0) if input.dim() == 2 else y


def _overlap_add(frames: Tensor, total: int, n_fft: int, hop: int) -> Tensor:
    """``(B, frames, n_fft)`` summed into ``(B, total)``, frame ``t`` at offset ``t * hop``."""
    import tracenn
    folded = tracenn.nn.functional.fold(frames.transpose(-1, -2), output_size=(1, total), kernel_size=(1, n_fft),
                                        stride=(1, hop))
    return folded.reshape(frames.shape[0], total)
