"""``tracenn.func``: functional access to modules (as ``torch.func``) and JAX interop. In progress."""
