"""``tracenn.utils.model_zoo``: torch's older spelling of :func:`tracenn.hub.load_state_dict_from_url`.

>>> from tracenn.utils.model_zoo import load_url
>>> import tracenn
>>> load_url is tracenn.hub.load_state_dict_from_url
True
"""
from ..hub import load_state_dict_from_url as load_url, tqdm  # noqa: F401  (torchvision imports tqdm here)
