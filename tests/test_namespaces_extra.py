"""torch namespaces that custom layers and training scripts import: nn.modules.utils, nn.common_types,
types, version (and ``__version__``'s comparisons), utils.hooks, hub and utils.model_zoo."""
from __future__ import annotations

import hashlib
import importlib
import io
import os
import re
import warnings
import zipfile
from collections import OrderedDict
from urllib.error import URLError

import numpy as np
import pytest

import tracenn
from tracenn import hub
from tracenn.nn.modules.utils import (_list_with_default, _ntuple, _pair, _quadruple, _reverse_repeat_tuple,
                                      _single, _triple, consume_prefix_in_state_dict_if_present)
from tracenn.torch_version import TorchVersion

_MODULES = ["tracenn.nn.modules.utils", "tracenn.nn.common_types", "tracenn.types", "tracenn.version",
            "tracenn.torch_version", "tracenn.utils.hooks", "tracenn.utils.model_zoo", "tracenn.hub"]


@pytest.mark.parametrize("name", _MODULES)
def test_each_namespace_imports(name):
    assert importlib.import_module(name).__name__ == name


def test_namespaces_are_attributes_after_import_tracenn():
    # As torch: torch.hub, torch.types, torch.version, torch.utils.hooks, torch.nn.modules.utils.
    assert tracenn.hub.load_state_dict_from_url is tracenn.utils.model_zoo.load_url
    assert tracenn.types.Number == int | float | bool
    assert tracenn.version.hip is None and tracenn.version.debug is False
    assert tracenn.utils.hooks.RemovableHandle is tracenn.nn.utils.hooks.RemovableHandle
    assert tracenn.nn.modules.utils._pair(3) == (3, 3)
    assert tracenn.nn.utils is importlib.import_module("tracenn.nn.utils")  # not shadowed by modules.utils


# ---- nn.modules.utils ---------------------------------------------------------------------------

def test_ntuple_known_values():
    assert _single(3) == (3,) and _pair(3) == (3, 3) and _triple(3) == (3, 3, 3) and _quadruple(0) == (0,) * 4
    assert _pair((1, 2)) == (1, 2) and _pair([1, 2, 3]) == (1, 2, 3)  # an iterable is kept as it is
    assert _pair(tracenn.Size([4, 5])) == (4, 5) and _triple(range(3)) == (0, 1, 2)
    assert _pair(None) == (None, None) and _pair(1.5) == (1.5, 1.5)
    six = _ntuple(6, "_sextuple")
    assert six(2) == (2,) * 6 and six.__name__ == "_sextuple" and _ntuple(2).__name__ == "parse"
    assert [f.__name__ for f in (_single, _pair, _triple, _quadruple)] == ["_single", "_pair", "_triple", "_quadruple"]


def test_ntuple_and_helpers_match_torch(torch):
    from torch.nn.modules import utils as tu
    for x in [3, 0, 1.5, None, (1, 2), [1, 2, 3], "ab", range(4), (), tracenn.Size([4, 5])]:
        y = list(x) if isinstance(x, tracenn.Size) else x
        for ours, theirs in [(_single, tu._single), (_pair, tu._pair), (_triple, tu._triple),
                             (_quadruple, tu._quadruple)]:
            assert ours(x) == theirs(y), (ours.__name__, x)
        assert _ntuple(5, "p")(x) == tu._ntuple(5, "p")(y)
    for t, n in [((1, 2), 2), ((1, 2, 3), 1), ((), 3), ((4,), 0)]:
        assert _reverse_repeat_tuple(t, n) == tu._reverse_repeat_tuple(t, n)
    for out, defaults in [([None, 3], [1, 8, 5, 7]), ([2, None], [1, 3, 9]), (7, [1, 2]), ([None], [2, 6])]:
        assert _list_with_default(out, defaults) == tu._list_with_default(out, defaults)
    with pytest.raises(ValueError) as ours:
        _list_with_default([None, None], [3, 4])
    with pytest.raises(ValueError) as theirs:
        tu._list_with_default([None, None], [3, 4])
    assert str(ours.value) == str(theirs.value) == "Input dimension should be at least 3"


def test_custom_conv_layer_with_pair_builds():
    # The pattern from timm and custom layers: kernel arguments through _pair.
    class MyConv(tracenn.nn.Module):
        def __init__(self, cin, cout, k):
            super().__init__()
            self.k = _pair(k)
            self.weight = tracenn.nn.Parameter(tracenn.ones(cout, cin, *self.k))

        def forward(self, x):
            return tracenn.nn.functional.conv2d(x, self.weight)

    y = MyConv(1, 2, 3)(tracenn.ones(1, 1, 5, 5))
    assert y.shape == (1, 2, 3, 3) and float(y[0, 0, 0, 0]) == 9.0


def _prefixed_state_dict():
    model = tracenn.nn.Sequential(tracenn.nn.Linear(2, 3), tracenn.nn.BatchNorm1d(3))
    return model, tracenn.nn.DataParallel(model).state_dict()


def test_consume_prefix_strips_a_data_parallel_state_dict():
    model, sd = _prefixed_state_dict()
    assert all(k.startswith("module.") for k in sd)
    consume_prefix_in_state_dict_if_present(sd, "module.")
    assert list(sd) == list(model.state_dict())
    assert sorted(sd._metadata) == sorted(model.state_dict()._metadata)
    fresh = tracenn.nn.Sequential(tracenn.nn.Linear(2, 3), tracenn.nn.BatchNorm1d(3))
    fresh.load_state_dict(sd)
    np.testing.assert_array_equal(fresh[0].weight.detach().numpy(), model[0].weight.detach().numpy())
    consume_prefix_in_state_dict_if_present(sd, "module.")  # nothing left to strip: unchanged
    assert list(sd) == list(model.state_dict())


def test_consume_prefix_matches_torch(torch):
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present as theirs
    _, sd = _prefixed_state_dict()
    sd["other.x"] = tracenn.zeros(1)  # a key without the prefix stays (and moves ahead of renamed keys)
    ref = OrderedDict((k, None) for k in sd)
    ref._metadata = OrderedDict((k, dict(v)) for k, v in sd._metadata.items())
    consume_prefix_in_state_dict_if_present(sd, "module.")
    theirs(ref, "module.")
    assert list(sd) == list(ref)
    assert list(sd._metadata.items()) == list(ref._metadata.items())
    plain = OrderedDict([("module.a", 1), ("b", 2), ("module.c.d", 3)])  # no _metadata
    ref2 = OrderedDict(plain)
    consume_prefix_in_state_dict_if_present(plain, "module.")
    theirs(ref2, "module.")
    assert list(plain.items()) == list(ref2.items())


# ---- common_types and types ---------------------------------------------------------------------

def test_common_types_aliases():
    from tracenn.nn import common_types as ct
    assert ct._size_2_t == int | tuple[int, int]
    assert ct._size_any_t == int | tuple[int, ...]
    assert ct._size_2_opt_t == int | None | tuple[int | None, int | None]
    assert ct._ratio_2_t == float | tuple[float, float]
    assert ct._maybe_indices_t == tracenn.Tensor | tuple[tracenn.Tensor, tracenn.Tensor]
    assert ct._tensor_list_t == tracenn.Tensor | tuple[tracenn.Tensor, ...]


def test_common_types_has_torchs_names(torch):
    import torch.nn.common_types as theirs
    from tracenn.nn import common_types as ours
    names = {n for n in vars(theirs) if n.startswith("_") and not n.startswith("__")}
    assert names and names <= set(vars(ours))


def test_types_aliases():
    from tracenn import types as tt
    assert tt._int is int and tt._float is float and tt._bool is bool and tt._complex is complex
    assert tt._dtype is tracenn.dtype and tt._device is tracenn.device and tt.Size is tracenn.Size
    assert tt._size == tracenn.Size | list[int] | tuple[int, ...]
    assert tt.Device == tracenn.device | str | int | None
    assert isinstance(3, tt._Number) and not isinstance("3", tt._Number) and tt.py_sym_types == ()
    assert tt.__all__ == ["Number", "Device", "FileLike", "Storage"]
    with pytest.raises(NotImplementedError):
        tt.Storage().nbytes()


def test_types_has_torchs_names(torch):
    import torch.types as theirs
    from tracenn import types as ours
    left_out = {"DispatchKey", "_dispatchkey", "_qscheme", "SymInt", "SymFloat", "SymBool", "PySymType",
                "_TensorOrTensorsOrGradEdge", "TYPE_CHECKING", "Union", "Self"}  # no counterpart (see the module)
    missing = {n for n in vars(theirs) if not n.startswith("__")} - set(vars(ours)) - left_out
    assert not missing


# ---- version ------------------------------------------------------------------------------------

def test_version_module():
    v = tracenn.version
    assert tracenn.__version__ is v.__version__ and isinstance(v.__version__, TorchVersion)
    assert v.__version__ == f"2.13.0+tracenn.{v.tracenn_version}"  # torch's API level, tracenn's as the label
    pyproject = os.path.join(os.path.dirname(tracenn.__file__), os.pardir, "pyproject.toml")
    if os.path.exists(pyproject):  # (a source checkout)
        with open(pyproject) as f:
            assert f'version = "{v.tracenn_version}"' in f.read()  # one version number
    assert v.hip is None and v.rocm is None and v.xpu is None and v.debug is False
    assert isinstance(v.git_version, str)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        v.nope


def test_version_cuda_is_none_without_a_gpu():
    if tracenn.cuda.is_available():
        pytest.skip("JAX sees a GPU here")
    assert tracenn.version.cuda is None
    from tracenn.version import cuda
    assert cuda is None


def test_version_cuda_reads_the_plugin_when_there_is_a_gpu(monkeypatch):
    import types
    from jax._src import lib as jaxlib_lib
    from tracenn import version
    from tracenn.cuda import _gpu
    monkeypatch.setattr(_gpu, "gpus", lambda: (object(),))
    fake = types.SimpleNamespace(cuda_runtime_build_version=lambda: 12080, cuda_runtime_get_version=lambda: 12090)
    monkeypatch.setattr(jaxlib_lib, "cuda_versions", fake)
    assert version._cuda_version() == "12.8"
    monkeypatch.setattr(jaxlib_lib, "cuda_versions", types.SimpleNamespace(cuda_runtime_get_version=lambda: 12040))
    assert version._cuda_version() == "12.4"
    monkeypatch.setattr(jaxlib_lib, "cuda_versions", None)  # a GPU but no CUDA plugin (ROCm): unknown
    assert version._cuda_version() is None
    monkeypatch.setattr(_gpu, "gpus", lambda: ())
    monkeypatch.setattr(jaxlib_lib, "cuda_versions", fake)
    assert version._cuda_version() is None


def test_torch_version_known_comparisons():
    v = TorchVersion("0.10.1")
    assert v > "0.9" and not str(v) > "0.9"  # a plain str compares letter by letter
    assert v >= (0, 10) and v < (1,) and v == "0.10.1.0" and v == (0, 10, 1)
    assert TorchVersion("2.0") == "2.0.0" and TorchVersion("2.1.0+cpu") > "2.1.0"
    assert TorchVersion("2.1.0") > "2.1.0rc1" and TorchVersion("2.1.0rc1") > "2.1.0b2"
    assert TorchVersion("2.1.0a0") > "2.1.0.dev5" and TorchVersion("2.1.0.post1") > "2.1.0+local"
    assert TorchVersion("parrot") > "apple"  # not a version: plain string comparison
    assert hash(TorchVersion("1.2")) == hash("1.2") and {TorchVersion("1.2"): 1}["1.2"] == 1
    # torch's API level: a torch-version check takes the 2.x path (documented in tracenn.version)
    assert tracenn.__version__ >= "2.0" and tracenn.__version__ >= (2, 13) and tracenn.__version__ < "2.14"
    with pytest.raises(TypeError):
        str("0.1.0") >= (0, 1)  # what a plain-str __version__ did


def test_torch_version_matches_torch(torch):
    from torch.torch_version import TorchVersion as Ref
    vs = ["0.1.0", "2.0", "2.0.0", "2.13.0+cpu", "2.13.0", "1.10.0a", "1.10.0", "1.10.0.dev1", "1.10.0rc1",
          "1.10.0.post1", "1.10.0b2", "0.9", "1.2.1", "parrot", "2!1.0", "1.0+abc.5", "1.0+abc.12", "1.0-1"]
    for a in vs:
        for b in vs + [(1, 2), (1, 2, 1), (2,), (0, 1, 0)]:
            for m in ["__gt__", "__lt__", "__ge__", "__le__", "__eq__"]:
                assert getattr(TorchVersion(a), m)(b) == getattr(Ref(a), m)(b), (a, m, b)


# ---- utils.hooks --------------------------------------------------------------------------------

def test_removable_handle_removes_a_forward_hook():
    from tracenn.utils.hooks import RemovableHandle
    m = tracenn.nn.Linear(2, 2)
    calls = []
    h = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape))
    assert isinstance(h, RemovableHandle) and isinstance(h.id, int)
    m(tracenn.ones(1, 2))
    h.remove()
    m(tracenn.ones(1, 2))
    h.remove()  # removing twice is fine
    assert calls == [(1, 2)]
    with m.register_forward_hook(lambda mod, args, out: out * 0) as h2:
        assert float(m(tracenn.ones(1, 2)).abs().sum()) == 0.0
    assert float(m(tracenn.ones(1, 2)).abs().sum()) > 0.0  # the block's end removed it
    assert h2.id > h.id and RemovableHandle.next_id > h2.id


def test_removable_handle_on_a_plain_dict():
    from tracenn.utils.hooks import RemovableHandle
    hooks, extra = OrderedDict(), OrderedDict()  # (plain dicts cannot be weakly referenced, as in torch)
    h = RemovableHandle(hooks, extra_dict=extra)
    hooks[h.id], extra[h.id] = "fn", True
    h.remove()
    assert not hooks and not extra


def test_warn_if_has_hooks():
    from tracenn.utils.hooks import unserializable_hook, warn_if_has_hooks
    w = tracenn.ones(2, requires_grad=True)
    y = w * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_has_hooks(w)  # no hooks: silent
        w.register_hook(unserializable_hook(lambda g: g))
        warn_if_has_hooks(w)  # marked: silent
    y.register_hook(lambda g: g)
    with pytest.warns(UserWarning, match="on tensor will not be serialized.*unserializable_hook"):
        warn_if_has_hooks(y)


# ---- hub / model_zoo ----------------------------------------------------------------------------

@pytest.fixture
def hub_home(tmp_path, monkeypatch):
    """A fresh $TORCH_HOME, no set_dir, and no network: any urlopen fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.delenv("TORCH_HUB", raising=False)
    monkeypatch.delenv("TORCH_MODEL_ZOO", raising=False)
    monkeypatch.setattr(hub, "_hub_dir", None)

    def no_network(*a, **k):
        raise AssertionError("tried to download")
    import urllib.request
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path / "th"


def _state():
    return OrderedDict([("weight", tracenn.arange(6.0).reshape(2, 3)), ("bias", tracenn.tensor([1.0, -1.0]))])


def _check(sd):
    assert list(sd) == ["weight", "bias"]
    np.testing.assert_array_equal(sd["weight"].numpy(), np.arange(6.0, dtype=np.float32).reshape(2, 3))


def test_hub_dirs_follow_torch(hub_home, monkeypatch, tmp_path):
    assert hub.get_dir() == str(hub_home / "hub")
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.get_dir() == str(tmp_path / "xdg" / "torch" / "hub")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert hub.get_dir() == os.path.expanduser("~/.cache/torch/hub")
    hub.set_dir(tmp_path / "mine")
    assert hub.get_dir() == str(tmp_path / "mine")
    hub.set_dir("~/x")
    assert hub.get_dir() == os.path.expanduser("~/x")
    monkeypatch.setenv("TORCH_HUB", "1")
    with pytest.warns(UserWarning, match="TORCH_HUB is deprecated"):
        hub.get_dir()


def test_load_state_dict_from_url_reads_the_cache_offline(hub_home, capsys):
    ckpt = hub_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    tracenn.save(_state(), ckpt / "tiny-0123abcd.pth")
    sd = hub.load_state_dict_from_url("https://example.com/models/tiny-0123abcd.pth?raw=1", check_hash=True,
                                      map_location="cpu")
    _check(sd)  # the hash is not checked for a cached file (as torch): only downloads are
    _check(tracenn.utils.model_zoo.load_url("https://example.com/other/tiny-0123abcd.pth"))
    assert capsys.readouterr().out == ""  # nothing downloaded
    tracenn.save(_state(), ckpt / "renamed.pth")
    _check(hub.load_state_dict_from_url("https://example.com/a.pth", file_name="renamed.pth"))
    other = hub_home / "elsewhere"
    other.mkdir()
    tracenn.save(_state(), other / "b.pth")
    _check(hub.load_state_dict_from_url("https://example.com/b.pth", model_dir=str(other)))


def test_set_dir_cache(hub_home, tmp_path):
    hub.set_dir(tmp_path / "hubdir")
    os.makedirs(tmp_path / "hubdir" / "checkpoints")
    tracenn.save(_state(), tmp_path / "hubdir" / "checkpoints" / "m.pt")
    _check(hub.load_state_dict_from_url("http://host/m.pt"))


def test_hash_regex_matches_torch_names(torch):
    import torch.hub as th
    for name in ["resnet18-5c106cde.pth", "resnet50-0676ba61.pth", "vit_b_16-c867db91.pth", "model.pth",
                 "efficientnet_b0_rwightman-7f5810bc.pth", "a-b-1234abcd.pt", "UPPER-ABCDEF12.pth"]:
        ours, theirs = hub.HASH_REGEX.search(name), th.HASH_REGEX.search(name)
        assert (ours and ours.group(1)) == (theirs and theirs.group(1)), name
    assert hub.HASH_REGEX.search("resnet18-5c106cde.pth").group(1) == "5c106cde"


def test_a_torch_checkpoint_in_the_cache_loads(hub_home, torch):
    ckpt = hub_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(OrderedDict([("weight", torch.arange(6.0).reshape(2, 3)), ("bias", torch.tensor([1.0, -1.0]))]),
               ckpt / "torchmade.pth")
    _check(hub.load_state_dict_from_url("https://download.pytorch.org/models/torchmade.pth"))


class _FakeResponse(io.BytesIO):
    def info(self):
        import email.message
        msg = email.message.Message()
        msg["Content-Length"] = str(len(self.getvalue()))
        return msg


def _payload():
    buf = io.BytesIO()
    tracenn.save(_state(), buf)
    return buf.getvalue()


def test_download_checks_the_hash(hub_home, monkeypatch, capsys):
    import urllib.request
    data = _payload()
    digest = hashlib.sha256(data).hexdigest()
    seen = []

    def fake_urlopen(req):
        seen.append((req.full_url, req.get_header("User-agent")))
        return _FakeResponse(data)
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    url = f"https://example.com/models/net-{digest[:8]}.pth"
    _check(hub.load_state_dict_from_url(url, check_hash=True, progress=False))
    assert seen == [(url, "torch.hub")]
    cached = hub_home / "hub" / "checkpoints" / f"net-{digest[:8]}.pth"
    assert cached.read_bytes() == data and "Downloading" in capsys.readouterr().out
    _check(hub.load_state_dict_from_url(url, check_hash=True))  # now cached: no second download
    assert len(seen) == 1
    with pytest.raises(RuntimeError, match=r'invalid hash value \(expected "deadbeef", got "' + digest):
        hub.load_state_dict_from_url("https://example.com/models/net-deadbeef.pth", check_hash=True,
                                     progress=False)
    assert sorted(os.listdir(cached.parent)) == [cached.name]  # neither the bad file nor a .partial stays
    dst = hub_home / "direct.bin"
    hub.download_url_to_file("https://example.com/x", str(dst), hash_prefix=digest[:12], progress=True)
    assert dst.read_bytes() == data and "100.0%" in capsys.readouterr().err


def test_download_without_network_raises_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "_hub_dir", str(tmp_path))
    # Port 9 on this machine refuses the connection: the same URLError as a machine with no network.
    with pytest.raises(URLError):
        hub.load_state_dict_from_url("http://127.0.0.1:9/m-0123abcd.pth", progress=False)
    assert os.listdir(tmp_path / "checkpoints") == []


def test_single_file_zip_is_the_legacy_layout(hub_home):
    ckpt = hub_home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    with zipfile.ZipFile(ckpt / "old.zip", "w") as z:
        z.writestr("inner.pth", _payload())
    with pytest.warns(FutureWarning, match="Falling back to the old format < 1.6"):
        _check(hub.load_state_dict_from_url("https://example.com/old.zip"))
    assert (ckpt / "inner.pth").exists()
    tracenn.save({"step": 3}, ckpt / "notensors.pth")  # a one-member tracenn checkpoint is not legacy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hub.load_state_dict_from_url("https://example.com/notensors.pth") == {"step": 3}
    with zipfile.ZipFile(ckpt / "evil.zip", "w") as z:
        z.writestr("../escape.pth", b"x")
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="directory traversal"):
        hub.load_state_dict_from_url("https://example.com/evil.zip")
    assert not (hub_home / "hub" / "escape.pth").exists()


def test_hub_load_from_github_is_refused_with_the_alternative():
    for call in (lambda: hub.load("pytorch/vision:v0.10.0", "resnet18", pretrained=True),
                 lambda: hub.list("pytorch/vision"), lambda: hub.help("pytorch/vision", "resnet18")):
        with pytest.raises(NotImplementedError, match=r"not supported.*load_state_dict_from_url.*source='local'"):
            call()
    with pytest.raises(ValueError, match='Unknown source: "svn"'):
        hub.load("x", "y", source="svn")


def test_hub_load_local_hubconf(tmp_path):
    (tmp_path / "hubconf.py").write_text(
        "import tracenn\ndependencies = ['numpy']\n"
        "def tiny(n, bias=True):\n    return tracenn.nn.Linear(n, 1, bias=bias)\n")
    m = hub.load(str(tmp_path), "tiny", 3, source="local", bias=False)
    assert isinstance(m, tracenn.nn.Linear) and m.weight.shape == (1, 3) and m.bias is None
    with pytest.raises(RuntimeError, match="Cannot find callable nope in hubconf"):
        hub.load(str(tmp_path), "nope", source="LOCAL")
    with pytest.raises(ValueError, match="model should be a string"):
        hub.load(str(tmp_path), 3, source="local")
    (tmp_path / "hubconf.py").write_text("dependencies = ['no_such_package_xyz']\ndef f():\n    return 1\n")
    with pytest.raises(RuntimeError, match="Missing dependencies: no_such_package_xyz"):
        hub.load(str(tmp_path), "f", source="local")
    assert str(tmp_path) not in __import__("sys").path


def test_hub_all_matches_torch(torch):
    import torch.hub as th
    assert hub.__all__ == th.__all__
    assert re.sub(r"\s", "", str(hub.HASH_REGEX.pattern)) == th.HASH_REGEX.pattern
