"""``SummaryWriter`` and ``FileWriter`` with torch's signatures, writing TensorBoard event files
without the ``tensorboard`` package (see ``summary.py`` for what each summary holds and
``_events.py`` for the file format and when data reaches the disk)."""
from __future__ import annotations

import os
import time
import warnings

from . import summary as _summary
from ._events import SESSION_START, EventFileWriter, encode_event
from ._proto import double_field, int_field

__all__ = ["FileWriter", "SummaryWriter"]


class FileWriter:
    """Writes ``Event``\\ s to one event file in ``log_dir`` (torch's ``FileWriter``).

    Summaries and events are serialized protobuf bytes here (torch passes ``tensorboard`` protobuf
    objects); ``summary.py``'s functions build them.
    """

    def __init__(self, log_dir, max_queue=10, flush_secs=120, filename_suffix="") -> None:
        log_dir = str(log_dir)  # a PathLike too
        self.event_writer = EventFileWriter(log_dir, max_queue, flush_secs, filename_suffix)

    def get_logdir(self):
        """Return the directory where event file will be written."""
        return self.event_writer.get_logdir()

    def add_event(self, event, step=None, walltime=None) -> None:
        """Add a serialized ``Event``, stamped with ``walltime`` (default: now) and ``step`` if given.

        The stamps are appended as fields after the event's own: protobuf readers keep the last value
        of a repeated scalar field, so they override what the event held.
        """
        event = bytes(event) + double_field(1, time.time() if walltime is None else walltime, always=True)
        if step is not None:
            event += int_field(2, int(step), always=True)
        self.event_writer.add_event(event)

    def add_summary(self, summary, global_step=None, walltime=None) -> None:
        """Add a serialized ``Summary`` in an ``Event`` with this step and wall time."""
        wall_time = time.time() if walltime is None else walltime
        self.event_writer.add_event(encode_event(wall_time, global_step, summary=summary))

    def add_graph(self, graph_profile, walltime=None) -> None:
        raise NotImplementedError(_GRAPH_MESSAGE)

    def add_onnx_graph(self, graph, walltime=None) -> None:
        raise NotImplementedError(_GRAPH_MESSAGE)

    def flush(self) -> None:
        """Write the pending events to disk."""
        self.event_writer.flush()

    def close(self) -> None:
        """Write the pending events and close the file."""
        self.event_writer.close()

    def reopen(self) -> None:
        """After ``close()``, start a new event file in the same directory; otherwise do nothing."""
        self.event_writer.reopen()


_GRAPH_MESSAGE = (
    "tracenn.utils.tensorboard does not write model graphs: TensorBoard's graph format is a TensorFlow "
    "GraphDef, which tracenn does not build. To see the graph tracenn runs, compile the model and print it: "
    "cm = tracenn.compile(model); cm(example_input); print(cm.graph)")

_graph_warned = False

_DEFAULT_BINS = None


def _default_bins():
    """TensorBoard's default histogram bucket edges: +-1e-12 * 1.1**k up to 1e20, and 0 (as torch)."""
    global _DEFAULT_BINS
    if _DEFAULT_BINS is None:
        v = 1e-12
        buckets, neg_buckets = [], []
        while v < 1e20:
            buckets.append(v)
            neg_buckets.append(-v)
            v *= 1.1
        _DEFAULT_BINS = neg_buckets[::-1] + [0] + buckets
    return _DEFAULT_BINS


def _unsupported(what: str, instead: str = ""):
    message = f"SummaryWriter.{what} is not implemented in tracenn.utils.tensorboard (it writes scalars, " \
              "histograms, images, text, audio, tensors and hparams)"
    raise NotImplementedError(message + (f"; {instead}" if instead else ""))


class SummaryWriter:
    """Writes entries directly to event files in the log_dir to be consumed by TensorBoard
    (``torch.utils.tensorboard.SummaryWriter``, without the ``tensorboard`` package).

    Written: scalars (``add_scalar``, ``add_scalars``), histograms, images (PNG), text, audio (WAV),
    tensors and hparams, in the same records torch writes, so TensorBoard shows them the same way.
    Not written: graphs (``add_graph`` warns once and does nothing), embeddings, video, meshes,
    PR curves, figures, custom-scalar layouts and boxes on images (these raise NotImplementedError).

    Events are kept in memory and written when ``max_queue`` of them wait, when an ``add_*`` call comes
    ``flush_secs`` after the last write, on ``flush()``/``close()`` and at interpreter exit; there is
    no background thread.

    Args:
        log_dir (str): where to write. Default ``runs/<Mon DD_HH-MM-SS>_<hostname><comment>``.
        comment (str): appended to the default ``log_dir``; ignored when ``log_dir`` is given.
        purge_step (int): after a crash at step ``T+X`` and a restart at step ``T``, events of
            step ``>= T`` are hidden by TensorBoard.
        max_queue (int): events kept in memory before a write. Default 10.
        flush_secs (int): seconds after which the next ``add_*`` writes. Default 120.
        filename_suffix (str): appended to every event file name.

    >>> import tempfile, tracenn
    >>> from tracenn.utils.tensorboard import SummaryWriter
    >>> with SummaryWriter(tempfile.mkdtemp()) as writer:
    ...     for step in range(3):
    ...         writer.add_scalar("loss", tracenn.tensor(1.0 / (step + 1)), step)
    """

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120,
                 filename_suffix="") -> None:
        if not log_dir:
            import socket
            from datetime import datetime

            current_time = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", current_time + "_" + socket.gethostname() + comment)
        self.log_dir = log_dir
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer = self.all_writers = None
        self._get_file_writer()
        self.default_bins = _default_bins()

    def _get_file_writer(self):
        """The default FileWriter; a new one (and file) after ``close()``."""
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = FileWriter(self.log_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                most_recent_step = self.purge_step
                writer = self.file_writer.event_writer
                writer.add_event(encode_event(time.time(), most_recent_step, file_version="brain.Event:2"))
                writer.add_event(encode_event(time.time(), most_recent_step, session_log_status=SESSION_START))
                self.purge_step = None
        return self.file_writer

    def get_logdir(self):
        """Return the directory where event files will be written."""
        return self.log_dir

    # -- scalars --------------------------------------------------------------------------------

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False,
                   double_precision=False) -> None:
        """Add scalar data to summary.

        Args:
            tag (str): data identifier.
            scalar_value: a Python or NumPy number, or a one-element tensor or array.
            global_step (int): global step value to record.
            walltime (float): seconds after epoch of the event (default ``time.time()``).
            new_style (bool): write a 0-d tensor for the ``scalars`` plugin instead of ``simple_value``.
            double_precision (bool): with ``new_style``, keep float64 instead of float32.
        """
        summary = _summary.scalar(tag, scalar_value, new_style=new_style, double_precision=double_precision)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None) -> None:
        """Add several scalars to one chart: each ``tag`` goes, under the tag ``main_tag``, to its own run
        (event file) in ``<log_dir>/<main_tag with '/' as '_'>_<tag>``, as torch lays them out."""
        walltime = time.time() if walltime is None else walltime
        fw_logdir = self._get_file_writer().get_logdir()
        for tag, scalar_value in tag_scalar_dict.items():
            fw_tag = fw_logdir + "/" + main_tag.replace("/", "_") + "_" + tag
            if fw_tag in self.all_writers:
                fw = self.all_writers[fw_tag]
            else:
                fw = FileWriter(fw_tag, self.max_queue, self.flush_secs, self.filename_suffix)
                self.all_writers[fw_tag] = fw
            fw.add_summary(_summary.scalar(main_tag, scalar_value), global_step, walltime)

    def add_tensor(self, tag, tensor, global_step=None, walltime=None) -> None:
        """Add a whole tensor (plugin ``tensor``)."""
        self._get_file_writer().add_summary(_summary.tensor_proto(tag, tensor), global_step, walltime)

    # -- histograms -----------------------------------------------------------------------------

    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None) -> None:
        """Add a histogram of ``values`` (tensor or array, any shape).

        ``bins`` is ``"tensorflow"`` (TensorBoard's exponential buckets) or anything ``np.histogram``
        takes (``"auto"``, ``"fd"``, a number, edges); ``max_bins`` merges neighbouring buckets.
        """
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        self._get_file_writer().add_summary(_summary.histogram(tag, values, bins, max_bins=max_bins),
                                            global_step, walltime)

    def add_histogram_raw(self, tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts,
                          global_step=None, walltime=None) -> None:
        """Add a histogram given by its statistics and bucket right edges and counts."""
        if len(bucket_limits) != len(bucket_counts):
            raise ValueError("len(bucket_limits) != len(bucket_counts), see the document.")
        summary = _summary.histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    # -- images, audio, text --------------------------------------------------------------------

    def add_image(self, tag, img_tensor, global_step=None, walltime=None, dataformats="CHW") -> None:
        """Add an image: a tensor or array in ``dataformats`` (CHW, HWC, HW, ...), 1, 3 or 4 channels.

        Float values are taken in [0, 1] and multiplied by 255, uint8 values are used as they are;
        all are clipped to [0, 255] (torch's rule). Written as PNG.
        """
        self._get_file_writer().add_summary(_summary.image(tag, img_tensor, dataformats=dataformats),
                                            global_step, walltime)

    def add_images(self, tag, img_tensor, global_step=None, walltime=None, dataformats="NCHW") -> None:
        """Add a batch of images (1 or 3 channels), tiled 8 to a row into one image as torch does."""
        self._get_file_writer().add_summary(_summary.image(tag, img_tensor, dataformats=dataformats),
                                            global_step, walltime)

    def add_audio(self, tag, snd_tensor, global_step=None, sample_rate=44100, walltime=None) -> None:
        """Add a mono clip (values in [-1, 1]) as 16-bit WAV."""
        self._get_file_writer().add_summary(_summary.audio(tag, snd_tensor, sample_rate=sample_rate),
                                            global_step, walltime)

    def add_text(self, tag, text_string, global_step=None, walltime=None) -> None:
        """Add text (Markdown) under ``<tag>/text_summary``, for TensorBoard's text plugin."""
        self._get_file_writer().add_summary(_summary.text(tag, text_string), global_step, walltime)

    # -- hyperparameters ------------------------------------------------------------------------

    def add_hparams(self, hparam_dict, metric_dict, hparam_domain_discrete=None, run_name=None,
                    global_step=None) -> None:
        """Add hyperparameters and their metrics for TensorBoard's HPARAMS tab, in a run
        ``<log_dir>/<run_name>`` (default: the current time), as torch does.

        Values may be int, float, str, bool (logged as a number, as torch) or a one-element tensor.
        """
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        exp, ssi, sei = _summary.hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        if not run_name:
            run_name = str(time.time())
        logdir = os.path.join(self._get_file_writer().get_logdir(), run_name)
        with SummaryWriter(log_dir=logdir) as w_hp:
            w_hp.file_writer.add_summary(exp, global_step)
            w_hp.file_writer.add_summary(ssi, global_step)
            w_hp.file_writer.add_summary(sei, global_step)
            for k, v in metric_dict.items():
                w_hp.add_scalar(k, v, global_step)

    # -- not written ----------------------------------------------------------------------------

    def add_graph(self, model, input_to_model=None, verbose=False, use_strict_trace=True) -> None:
        """Does nothing but warn (once per process): TensorBoard's graph is a TensorFlow GraphDef, which
        tracenn does not build. ``cm = tracenn.compile(model); cm(x); print(cm.graph)`` shows the graph."""
        global _graph_warned
        if not _graph_warned:
            _graph_warned = True
            warnings.warn(_GRAPH_MESSAGE + " (add_graph wrote nothing)", UserWarning, stacklevel=2)

    def add_onnx_graph(self, prototxt) -> None:
        _unsupported("add_onnx_graph")

    def add_image_with_boxes(self, tag, img_tensor, box_tensor, global_step=None, walltime=None, rescale=1,
                             dataformats="CHW", labels=None) -> None:
        _unsupported("add_image_with_boxes", "drawing boxes needs PIL; add_image writes the image without them")

    def add_figure(self, tag, figure, global_step=None, close=True, walltime=None) -> None:
        _unsupported("add_figure", "render the figure to an array (fig.canvas.buffer_rgba()) and call "
                                   "add_image(tag, array[..., :3], dataformats='HWC')")

    def add_video(self, tag, vid_tensor, global_step=None, fps=4, walltime=None) -> None:
        _unsupported("add_video", "add_images writes the frames as a grid")

    def add_embedding(self, mat, metadata=None, label_img=None, global_step=None, tag="default",
                      metadata_header=None) -> None:
        _unsupported("add_embedding")

    def add_pr_curve(self, tag, labels, predictions, global_step=None, num_thresholds=127, weights=None,
                     walltime=None) -> None:
        _unsupported("add_pr_curve")

    def add_pr_curve_raw(self, tag, true_positive_counts, false_positive_counts, true_negative_counts,
                         false_negative_counts, precision, recall, global_step=None, num_thresholds=127,
                         weights=None, walltime=None) -> None:
        _unsupported("add_pr_curve_raw")

    def add_custom_scalars_multilinechart(self, tags, category="default", title="untitled") -> None:
        _unsupported("add_custom_scalars_multilinechart", "add_scalars draws several scalars on one chart")

    def add_custom_scalars_marginchart(self, tags, category="default", title="untitled") -> None:
        _unsupported("add_custom_scalars_marginchart", "add_scalars draws several scalars on one chart")

    def add_custom_scalars(self, layout) -> None:
        _unsupported("add_custom_scalars", "add_scalars draws several scalars on one chart")

    def add_mesh(self, tag, vertices, colors=None, faces=None, config_dict=None, global_step=None,
                 walltime=None) -> None:
        _unsupported("add_mesh")

    # -- files ----------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every pending event of every file this writer opened to disk."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()

    def close(self) -> None:
        """Write the pending events and close the files. Later ``add_*`` calls open a new file."""
        if self.all_writers is None:
            return  # ignore double close
        for writer in self.all_writers.values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()
