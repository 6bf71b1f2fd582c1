"""tracenn.profiler: what a profile records (eager ops, backward nodes, compiled calls, regions),
torch's schedule and table, the Chrome trace, and that nothing is left hooked afterwards."""
import gzip
import json
import warnings

import pytest

import tracenn
from tracenn import nn
from tracenn.ops import OPS
from tracenn.profiler import (EventList, FunctionEvent, ProfilerAction, ProfilerActivity, profile,
                              record_function, schedule, tensorboard_trace_handler)


def _names(prof):
    return [e.name for e in prof.events()]


def _unhooked():
    return all(type(op._fwd) is dict for op in OPS.values()) and tracenn.autograd.graph.PROFILER[0] is None


def test_eager_ops_regions_and_backward_are_events():
    lin = nn.Linear(4, 3)
    x = tracenn.randn(2, 4)
    lin(x).sum().backward()  # (kernels compiled before recording)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function("forward"):
            y = lin(x).relu().sum()
        y.backward()
    names = _names(prof)
    assert "forward" in names and "tracenn::relu" in names and "tracenn::sum" in names
    assert "autograd::engine::evaluate_function: ReluBackward0" in names
    assert "autograd::engine::evaluate_function: SumBackward0" in names
    region = next(e for e in prof.events() if e.name == "forward")
    relu = next(e for e in prof.events() if e.name == "tracenn::relu")
    assert relu.cpu_parent is region and relu in region.cpu_children
    assert region.self_cpu_time_total == pytest.approx(
        region.cpu_time_total - sum(c.cpu_time_total for c in region.cpu_children))
    assert 0 <= region.self_cpu_time_total < region.cpu_time_total
    assert relu.input_shapes == [[2, 3]]
    assert _unhooked()


def test_key_averages_counts_and_groups_by_shape():
    x, z = tracenn.ones(3), tracenn.ones(5)
    with profile(record_shapes=True) as prof:
        for _ in range(3):
            x + 1
        z + 1
    rows = {r.key: r for r in prof.key_averages()}
    assert rows["tracenn::add"].count == 4
    assert rows["tracenn::add"].cpu_time == pytest.approx(rows["tracenn::add"].cpu_time_total / 4)
    by_shape = {(r.key, str(r.input_shapes)): r.count for r in prof.key_averages(group_by_input_shape=True)}
    assert by_shape[("tracenn::add", "[[3], []]")] == 3 and by_shape[("tracenn::add", "[[5], []]")] == 1


def test_compiled_call_is_one_event_and_the_fast_path_comes_back():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    cm = tracenn.compile(model)
    x = tracenn.randn(3, 4)
    with tracenn.no_grad():
        expected = cm(x)
    assert cm._fast_entries
    with profile() as prof, tracenn.no_grad():
        out = cm(x)
        assert not cm._fast_entries  # (a profiled call goes through the timed path)
    assert _names(prof) == ["tracenn.compile: Sequential"]
    assert tracenn.equal(out, expected)
    with tracenn.no_grad():
        cm(x)
    assert cm._fast_entries  # (the first call after the profile made them again)
    assert len(cm._entries) == 1  # no recompile for the profile


def test_compiled_training_step_is_one_program():
    model = nn.Linear(4, 2)
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1)

    @tracenn.compile
    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    x, y = tracenn.randn(5, 4), tracenn.randn(5, 2)
    step(x, y)
    with profile() as prof:
        step(x, y)
    assert _names(prof) == ["tracenn.compile: step"]


def test_optimizer_step_region_named_as_torch():
    p = nn.Parameter(tracenn.ones(3))
    opt = tracenn.optim.SGD([p], lr=0.1)
    p.grad = tracenn.ones(3)
    opt.step()
    with profile() as prof:
        opt.step()
    names = _names(prof)
    assert "Optimizer.step#SGD.step" in names
    region = next(e for e in prof.events() if e.name == "Optimizer.step#SGD.step")
    assert region.cpu_time_total > 0 and region.cpu_parent is None
    assert tracenn.allclose(p.detach(), tracenn.full((3,), 0.8))  # (the steps ran: 1 - 2 * 0.1)


def test_nothing_is_left_hooked_after_an_error_and_profiles_do_not_nest():
    with pytest.raises(ZeroDivisionError):
        with profile():
            tracenn.ones(2) * 2
            1 / 0
    assert _unhooked()
    with profile():
        with pytest.raises(RuntimeError, match="already recording"):
            profile().start()
    assert _unhooked()
    with profile() as prof:
        pass
    assert len(prof.events()) == 0
    tracenn.ones(2) * 3  # recorded nowhere
    assert len(prof.events()) == 0


def _known_schedule():
    return [schedule(wait=1, warmup=1, active=2)(i) for i in range(8)]


def test_schedule_known_values():
    A = ProfilerAction
    assert _known_schedule() == [A.NONE, A.WARMUP, A.RECORD, A.RECORD_AND_SAVE] * 2
    s = schedule(wait=0, warmup=1, active=1, repeat=1, skip_first=2)
    assert [s(i) for i in range(6)] == [A.NONE, A.NONE, A.WARMUP, A.RECORD_AND_SAVE, A.NONE, A.NONE]
    with pytest.raises(AssertionError, match="Invalid profiler schedule arguments"):
        schedule(wait=0, warmup=0, active=0)
    with pytest.warns(UserWarning, match="won't be using warmup"):
        schedule(wait=1, warmup=0, active=1)


def test_schedule_matches_torch():
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kw in [dict(wait=1, warmup=1, active=2), dict(wait=2, warmup=1, active=3, repeat=2, skip_first=3),
                   dict(wait=3, warmup=0, active=1, skip_first=1, skip_first_wait=1)]:
            ours, theirs = schedule(**kw), torch.profiler.schedule(**kw)
            assert [ours(i).name for i in range(30)] == [theirs(i).name for i in range(30)], kw


def test_scheduled_profile_saves_each_cycle():
    saved = []

    def ready(p):
        adds = [e for e in p.events() if e.name == "tracenn::add"]
        steps = [e for e in p.events() if e.name == "ProfilerStep*"]
        saved.append((p.step_num, len(adds), len(steps)))

    x = tracenn.ones(2)
    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=2), on_trace_ready=ready) as p:
        for i in range(9):
            x + i
            p.step()
    # cycles: steps 0-3 (records 2 and 3, saves after 3) and 4-7; each window: 2 steps, 2 adds
    assert saved == [(4, 2, 2), (8, 2, 2)]
    assert _unhooked()


def test_table_layout_is_torchs():
    events = EventList([FunctionEvent(0, "outer", 1, 0.0, 1000.0, [[2, 3]], "user"),
                        FunctionEvent(1, "tracenn::add", 1, 100.0, 350.0, [[2, 3], []]),
                        FunctionEvent(2, "tracenn::add", 1, 400.0, 650.0, [[2, 3], []])])._link()
    table = events.key_averages().table(sort_by="cpu_time_total")
    assert table == (
        "----------------  ------------  ------------  ------------  ------------  ------------  ------------  \n"
        "            Name    Self CPU %      Self CPU   CPU total %     CPU total  CPU time avg    # of Calls  \n"
        "----------------  ------------  ------------  ------------  ------------  ------------  ------------  \n"
        "           outer        50.00%     500.000us       100.00%       1.000ms       1.000ms             1  \n"
        "    tracenn::add        50.00%     500.000us        50.00%     500.000us     250.000us             2  \n"
        "----------------  ------------  ------------  ------------  ------------  ------------  ------------  \n"
        "Self CPU time total: 1.000ms\n")
    shaped = events.key_averages(group_by_input_shape=True).table(row_limit=1)
    assert shaped.splitlines()[1].endswith("# of Calls      Input Shapes  ")
    assert shaped.splitlines()[3].endswith("1          [[2, 3]]  ")


def test_chrome_trace_and_tensorboard_handler(tmp_path):
    x = tracenn.ones(4)
    with profile(record_shapes=True) as prof:
        with record_function("region"):
            x * 2
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())["traceEvents"]
    assert {e["name"] for e in trace} == {"region", "tracenn::mul"}
    mul = next(e for e in trace if e["name"] == "tracenn::mul")
    assert mul["ph"] == "X" and mul["dur"] >= 0 and mul["args"]["Input Dims"] == [[4], []]

    out = tmp_path / "tb"
    with profile(schedule=schedule(wait=0, warmup=1, active=1),
                 on_trace_ready=tensorboard_trace_handler(str(out), worker_name="w", use_gzip=True)) as p:
        for _ in range(2):
            x + 1
            p.step()
    files = sorted(out.iterdir())
    assert len(files) == 1 and files[0].name.startswith("w.") and files[0].name.endswith(".pt.trace.json.gz")
    names = {e["name"] for e in json.loads(gzip.decompress(files[0].read_bytes()))["traceEvents"]}
    assert names == {"ProfilerStep*", "tracenn::add"}


def test_autograd_profiler_profile_legacy_spelling():
    with tracenn.autograd.profiler.profile() as prof:
        tracenn.ones(2).exp()
    assert [e.name for e in prof.function_events] == ["tracenn::full", "tracenn::exp"]  # (ones is a full)
    assert "tracenn::exp" in prof.key_averages().table()
    assert prof.total_average().count == 2
    with tracenn.autograd.profiler.profile(enabled=False) as off:
        tracenn.ones(2).exp()
    assert len(off.function_events) == 0
