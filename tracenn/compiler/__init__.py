"""The compiler: tracer, graph IR, passes and lowering (see ARCHITECTURE.md). In progress."""
