"""``torch.autograd.profiler``: ``record_function`` and the older ``profile`` context manager,
both the same as ``tracenn.profiler``'s (see there for what a profile records)."""
from ..profiler import EventList, FunctionEvent, FunctionEventAvg, record_function  # noqa: F401
from ..profiler import profile as _profile

__all__ = ["profile", "record_function", "EventList", "FunctionEvent", "FunctionEventAvg"]


class profile(_profile):
    """The older spelling: ``with torch.autograd.profiler.profile() as prof: ...``, then
    ``prof.key_averages().table()``, ``prof.function_events``, ``prof.table()``."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device=None,
                 record_shapes: bool = False, with_flops: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_modules: bool = False, use_kineto: bool = False,
                 use_cpu: bool = True, experimental_config=None, acc_events: bool = False,
                 custom_trace_id_callback=None):
        super().__init__(record_shapes=record_shapes, acc_events=acc_events)
        self.enabled = enabled

    def __enter__(self):
        return self.start() if self.enabled else self

    def __exit__(self, *exc):
        if self.enabled:
            self.stop()
        return False

    @property
    def function_events(self) -> EventList:
        return self.events()

    def total_average(self) -> FunctionEventAvg:
        return self.events().total_average()
