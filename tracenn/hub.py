"""``tracenn.hub``: torch.hub's checkpoint cache and downloads.

What works as in torch:

- :func:`load_state_dict_from_url` keeps checkpoints in torch's cache layout,
  ``<get_dir()>/checkpoints/<file name from the URL>`` with ``get_dir()`` = ``$TORCH_HOME/hub``
  (``$TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch``, that to ``~/.cache/torch``). A file
  already there is read with :func:`tracenn.load`, with no network access, so a cache filled by
  PyTorch (same directory) serves tracenn too. A missing one is downloaded with ``urllib``
  (``check_hash=True`` checks the SHA-256 prefix in names like ``resnet18-5c106cde.pth``).
- :func:`download_url_to_file`, :func:`get_dir`, :func:`set_dir`.
- :func:`load` with ``source="local"``: imports ``hubconf.py`` from a directory and calls the entry
  point, as torch does.

What does not: :func:`load`, :func:`list` and :func:`help` of a GitHub repo raise
``NotImplementedError``. They download the repo and run its ``hubconf.py``, which builds a PyTorch
model with ``import torch``; build the model with tracenn instead and load its weights with
:func:`load_state_dict_from_url`.

Checkpoints must be zip files (``torch.save``'s format since 1.6, or ``tracenn.save``): tracenn never
unpickles, so an old pickle checkpoint (``resnet18-5c106cde.pth`` and other pre-1.6 files) fails
with :class:`~tracenn.serialization.NotACheckpointError` saying how to convert it.

>>> import os, tempfile, tracenn
>>> d = tempfile.mkdtemp()
>>> tracenn.hub.set_dir(d)
>>> os.makedirs(os.path.join(d, "checkpoints"))
>>> tracenn.save({"w": tracenn.ones(2)}, os.path.join(d, "checkpoints", "tiny-0123abcd.pth"))
>>> tracenn.hub.load_state_dict_from_url("https://example.com/models/tiny-0123abcd.pth")["w"]
tensor([1., 1.])
>>> tracenn.hub.set_dir(None)
"""
from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = ["download_url_to_file", "get_dir", "help", "list", "load", "load_state_dict_from_url", "set_dir"]


class _Faketqdm:
    """A progress bar on stderr, for when ``tqdm`` is not installed (torch's fallback)."""

    def __init__(self, total=None, disable=False, unit=None, *args, **kwargs):
        self.total = total
        self.disable = disable
        self.n = 0

    def update(self, n):
        if self.disable:
            return
        self.n += n
        if self.total is None:
            sys.stderr.write(f"\r{self.n:.1f} bytes")
        else:
            sys.stderr.write(f"\r{100 * self.n / float(self.total):.1f}%")
        sys.stderr.flush()

    def set_description(self, *args, **kwargs):
        pass

    def write(self, s):
        sys.stderr.write(f"{s}\n")

    def close(self):
        self.disable = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        if self.disable:
            return
        sys.stderr.write("\n")


try:
    from tqdm import tqdm  # torchvision imports tqdm from torch.hub
except ImportError:
    tqdm = _Faketqdm

# matches bfd8deac from resnet18-bfd8deac.pth
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
_PATH_SEP_PATTERN = re.compile(r"[/\\]")
ENV_GITHUB_TOKEN = "GITHUB_TOKEN"
ENV_TORCH_HOME = "TORCH_HOME"
ENV_XDG_CACHE_HOME = "XDG_CACHE_HOME"
DEFAULT_CACHE_DIR = "~/.cache"
VAR_DEPENDENCY = "dependencies"
MODULE_HUBCONF = "hubconf.py"
READ_DATA_CHUNK = 128 * 1024
_hub_dir: str | None = None

_NO_GITHUB = (
    "tracenn.hub.{fn}({repo!r}) is not supported: torch.hub would download that GitHub repo and run its "
    "hubconf.py, which builds a PyTorch model with `import torch`. Build the model with tracenn instead "
    "(the same code under `import tracenn as torch`) and load its weights with "
    "tracenn.hub.load_state_dict_from_url(url) or tracenn.load(path); or clone the repo and call "
    "tracenn.hub.load(path, model, source='local') if its hubconf.py works with tracenn.")


def _get_torch_home() -> str:
    return os.path.expanduser(
        os.getenv(ENV_TORCH_HOME, os.path.join(os.getenv(ENV_XDG_CACHE_HOME, DEFAULT_CACHE_DIR), "torch")))


def get_dir() -> str:
    """The hub cache directory, where downloaded checkpoints are kept (under ``checkpoints/``).

    :func:`set_dir`'s directory if it was called, else ``$TORCH_HOME/hub``, where ``$TORCH_HOME``
    defaults to ``$XDG_CACHE_HOME/torch`` and ``$XDG_CACHE_HOME`` to ``~/.cache`` (torch's paths, so
    both libraries share one cache).
    """
    if os.getenv("TORCH_HUB"):
        warnings.warn("TORCH_HUB is deprecated, please use env TORCH_HOME instead", stacklevel=2)
    if _hub_dir is not None:
        return _hub_dir
    return os.path.join(_get_torch_home(), "hub")


def set_dir(d: str | os.PathLike | None) -> None:
    """Use ``d`` as the hub cache directory (see :func:`get_dir`); ``None`` goes back to the default.

    Args:
        d (str): path to a local folder to save downloaded models & weights.
    """
    global _hub_dir
    _hub_dir = None if d is None else os.path.expanduser(d)


def download_url_to_file(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
    """Download the object at ``url`` to the local path ``dst``.

    The bytes go to a temporary file beside ``dst`` that is moved into place once complete, so a
    broken download never leaves a half-written checkpoint at ``dst``.

    Args:
        url (str): URL of the object to download
        dst (str): Full path where object will be saved, e.g. ``/tmp/temporary_file``
        hash_prefix (str, optional): If not None, the SHA256 downloaded file should start with ``hash_prefix``.
            Default: None
        progress (bool, optional): whether or not to display a progress bar to stderr
            Default: True

    Raises:
        urllib.error.URLError: the URL cannot be reached (no network, unknown host, HTTP error).
        RuntimeError: the file's SHA-256 does not start with ``hash_prefix``.
    """
    dst = os.path.expanduser(dst)
    for _ in range(tempfile.TMP_MAX):
        tmp_dst = dst + "." + uuid.uuid4().hex + ".partial"
        try:
            f = open(tmp_dst, "w+b")  # noqa: SIM115  (not NamedTemporaryFile: keep ordinary permissions)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(errno.EEXIST, "No usable temporary file name found")
    from urllib import request  # (imported here: it costs ``import tracenn`` several ms)
    req = request.Request(url, headers={"User-Agent": "torch.hub"})
    try:
        with request.urlopen(req) as u:
            content_length = u.info().get_all("Content-Length")
            file_size = int(content_length[0]) if content_length else None
            sha256 = hashlib.sha256() if hash_prefix is not None else None
            with tqdm(total=file_size, disable=not progress, unit="B", unit_scale=True, unit_divisor=1024) as pbar:
                while True:
                    buffer = u.read(READ_DATA_CHUNK)
                    if len(buffer) == 0:
                        break
                    f.write(buffer)
                    if sha256 is not None:
                        sha256.update(buffer)
                    pbar.update(len(buffer))
            f.close()
            if sha256 is not None:
                digest = sha256.hexdigest()
                if digest[: len(hash_prefix)] != hash_prefix:
                    raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "{digest}")')
        shutil.move(f.name, dst)
    finally:
        f.close()
        if os.path.exists(f.name):
            os.remove(f.name)


def _safe_extract_zip(zip_file: zipfile.ZipFile, extract_to: str) -> None:
    """Extract every member, refusing absolute paths and paths that leave ``extract_to``."""
    root = Path(extract_to).resolve(strict=False)
    for member in zip_file.infolist():
        filename = os.path.normpath(member.filename)
        if filename.startswith(("/", "\\")) or (len(filename) >= 2 and filename[1] == ":" and filename[0].isalpha()):
            raise ValueError(f"Archive entry has absolute path: {member.filename}")
        if ".." in re.split(_PATH_SEP_PATTERN, filename):
            raise ValueError(f"Archive entry contains directory traversal: {member.filename}")
        if not (root / filename).resolve(strict=False).is_relative_to(root):
            raise ValueError(f"Archive entry escapes target directory: {member.filename}")
        zip_file.extract(member, root)


def _is_legacy_zip_format(filename: str) -> bool:
    """A zip holding one file that is not itself a checkpoint's member: a checkpoint zipped by hand
    (torch.hub's pre-1.6 convention). A tracenn checkpoint without tensors is one member too."""
    if zipfile.is_zipfile(filename):
        with zipfile.ZipFile(filename) as zf:
            infolist = zf.infolist()
        if len(infolist) != 1 or infolist[0].is_dir():
            return False
        name = infolist[0].filename
        return name != "tracenn/header.json" and not name.endswith("/data.pkl")
    return False


def _legacy_zip_load(filename: str, model_dir: str, map_location, weights_only: bool) -> Any:
    warnings.warn("Falling back to the old format < 1.6. This support will be deprecated in favor of default "
                  "zipfile format introduced in 1.6. Please redo torch.save() to save it in the new zipfile format.",
                  FutureWarning, stacklevel=3)
    with zipfile.ZipFile(filename) as f:
        members = f.infolist()
        _safe_extract_zip(f, model_dir)
        extracted_file = os.path.join(model_dir, members[0].filename)
    from .serialization import load as _load
    return _load(extracted_file, map_location=map_location, weights_only=weights_only)


def load_state_dict_from_url(url: str, model_dir: str | None = None, map_location=None, progress: bool = True,
                             check_hash: bool = False, file_name: str | None = None,
                             weights_only: bool = False) -> dict[str, Any]:
    """Load the checkpoint at ``url``, from the cache when it is there, else downloading it first.

    The cached file is ``<model_dir>/<file_name or the URL's file name>``; ``model_dir`` defaults to
    ``<get_dir()>/checkpoints``. An existing file is loaded without any network access (and without
    checking its hash, as torch). A zip holding a single file is extracted first (the pre-1.6
    convention).

    Args:
        url (str): URL of the object to download
        model_dir (str, optional): directory in which to save the object
        map_location (optional): where tensors go (see :func:`tracenn.load`)
        progress (bool, optional): whether or not to display a progress bar to stderr. Default: True
        check_hash (bool, optional): if True, the URL's file name must look like ``name-<sha256 prefix>.ext``
            and a downloaded file's SHA-256 must start with that prefix. Default: False
        file_name (str, optional): name for the downloaded file. Filename from ``url`` will be used if not set.
        weights_only (bool, optional): accepted for torch's signature; tracenn always loads weights only.

    Returns:
        the loaded object (usually a state_dict).

    Raises:
        urllib.error.URLError: the file is not cached and cannot be downloaded (no network).
    """
    if os.getenv("TORCH_MODEL_ZOO"):
        warnings.warn("TORCH_MODEL_ZOO is deprecated, please use env TORCH_HOME instead", stacklevel=2)
    if model_dir is None:
        model_dir = os.path.join(get_dir(), "checkpoints")
    os.makedirs(model_dir, exist_ok=True)

    filename = os.path.basename(urlparse(url).path)
    if file_name is not None:
        filename = file_name
    cached_file = os.path.join(model_dir, filename)
    if not os.path.exists(cached_file):
        sys.stdout.write(f'Downloading: "{url}" to {cached_file}\n')
        hash_prefix = None
        if check_hash:
            r = HASH_REGEX.search(filename)
            hash_prefix = r.group(1) if r else None
        download_url_to_file(url, cached_file, hash_prefix, progress=progress)

    if _is_legacy_zip_format(cached_file):
        return _legacy_zip_load(cached_file, model_dir, map_location, weights_only)
    from .serialization import load as _load
    return _load(cached_file, map_location=map_location, weights_only=weights_only)


def _load_local(hubconf_dir: str, model: str, *args, **kwargs):
    """Import ``hubconf_dir/hubconf.py`` and call its entry point ``model``."""
    if not isinstance(model, str):
        raise ValueError("Invalid input: model should be a string of function name")
    sys.path.insert(0, hubconf_dir)
    try:
        spec = importlib.util.spec_from_file_location(MODULE_HUBCONF, os.path.join(hubconf_dir, MODULE_HUBCONF))
        hub_module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(hub_module)
        deps = getattr(hub_module, VAR_DEPENDENCY, None)
        if deps is not None:
            missing = [pkg for pkg in deps if importlib.util.find_spec(pkg) is None]
            if missing:
                raise RuntimeError(f"Missing dependencies: {', '.join(missing)}")
        entry = getattr(hub_module, model, None) if model in dir(hub_module) else None
        if entry is None or not callable(entry):
            raise RuntimeError(f"Cannot find callable {model} in hubconf")
        return entry(*args, **kwargs)
    finally:
        sys.path.remove(hubconf_dir)


def load(repo_or_dir, model, *args, source="github", trust_repo="check", force_reload=False, verbose=True,
         skip_validation=False, **kwargs):
    """Call entry point ``model`` of the ``hubconf.py`` in a local directory (``source="local"``).

    ``source="github"`` (torch's default) raises ``NotImplementedError``: see the module docstring
    for why and what to use instead.

    Args:
        repo_or_dir (str): a path to a local directory holding ``hubconf.py`` (with ``source="local"``).
        model (str): the name of a callable (entrypoint) defined in the directory's ``hubconf.py``.
        *args, **kwargs: passed to the entry point.
        source (str): ``"local"``; ``"github"`` is not supported.
        trust_repo, force_reload, verbose, skip_validation: accepted for torch's signature (they
            concern GitHub downloads).

    Returns:
        what the entry point returns.
    """
    source = source.lower()
    if source not in ("github", "local"):
        raise ValueError(f'Unknown source: "{source}". Allowed values: "github" | "local".')
    if source == "github":
        raise NotImplementedError(_NO_GITHUB.format(fn="load", repo=repo_or_dir))
    return _load_local(repo_or_dir, model, *args, **kwargs)


def list(github, force_reload=False, skip_validation=False, trust_repo="check", verbose=True):  # noqa: A001
    """torch.hub.list of a GitHub repo: not supported (raises ``NotImplementedError``; see the module)."""
    raise NotImplementedError(_NO_GITHUB.format(fn="list", repo=github))


def help(github, model, force_reload=False, skip_validation=False, trust_repo="check"):  # noqa: A001
    """torch.hub.help of a GitHub repo: not supported (raises ``NotImplementedError``; see the module)."""
    raise NotImplementedError(_NO_GITHUB.format(fn="help", repo=github))

