"""The compiled-call runtime: guards, caches, state sync (see ARCHITECTURE.md). In progress."""
