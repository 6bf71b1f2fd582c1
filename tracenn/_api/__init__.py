"""torch's function surface (``tracenn.add``, ``x.sum(dim=1)``, ...): argument parsing, torch's
type promotion and error checks, then one call into the op registry. Each function is written
once and serves both ``tracenn.f(x, ...)`` and the method ``x.f(...)`` (see ``methods.py``)."""
