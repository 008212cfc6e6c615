"""Observers by name: the one place that maps a config to an observer.

An observer is chosen with a name (``'mse'``), a name with arguments
(``'percentile:percentile=99.9'``, ``'mse:grid=200,bins=4096'``) or a dict
(``dict(type='percentile', percentile=99.9)``).
"""
from typing import Any, Dict, Type

from .clipping_observers import KLObserver, MSEObserver, PercentileObserver
from .observers import EMAMinMaxObserver, MinMaxObserver, Observer
from .spec import Spec, spec_config

__all__ = ['OBSERVERS', 'ObserverSpec', 'observer_config', 'build_observer']

OBSERVERS: Dict[str, Type[Observer]] = {
    'minmax': MinMaxObserver,
    'ema': EMAMinMaxObserver,
    'percentile': PercentileObserver,
    'mse': MSEObserver,
    'kl': KLObserver,
}
"""Observer names accepted by calibration, its hook and the tools."""

ObserverSpec = Spec


def observer_config(spec: ObserverSpec) -> Dict[str, Any]:
    """Normalise an observer choice to ``dict(type=NAME, **kwargs)``.

    Args:
        spec (str | dict): ``'NAME'``, ``'NAME:KEY=VALUE[,KEY=VALUE]'`` or a
            dict with ``type``.

    Returns:
        dict: The config, checked against the observer's signature.
    """
    return spec_config(spec, OBSERVERS, 'observer',
                       'percentile:percentile=99.9', hidden=('ch_axis', ))


def build_observer(spec: ObserverSpec) -> Observer:
    """Build a per-tensor activation observer.

    Args:
        spec (str | dict): See :func:`observer_config`.

    Returns:
        Observer: A fresh observer.
    """
    cfg = observer_config(spec)
    cls = OBSERVERS[cfg.pop('type')]
    return cls(**cfg)
