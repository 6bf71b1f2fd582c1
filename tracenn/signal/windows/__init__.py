"""``torch.signal.windows``: window functions with SciPy's names and ``sym`` convention (the
``torch.*_window`` functions take ``periodic`` instead)."""
from .windows import (bartlett, blackman, cosine, exponential, gaussian, general_cosine,  # noqa: F401
                      general_hamming, hamming, hann, kaiser, nuttall)

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine", "general_hamming",
           "hamming", "hann", "kaiser", "nuttall"]
