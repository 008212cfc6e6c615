"""Observers by name: the one place that maps a config to an observer.

An observer is chosen with a name (``'mse'``), a name with arguments
(``'percentile:percentile=99.9'``, ``'mse:grid=200,bins=4096'``) or a dict
(``dict(type='percentile', percentile=99.9)``).
"""
import inspect
from typing import Any, Dict, Type, Union

from .clipping_observers import KLObserver, MSEObserver, PercentileObserver
from .observers import EMAMinMaxObserver, MinMaxObserver, Observer

__all__ = ['OBSERVERS', 'ObserverSpec', 'observer_config', 'build_observer']

OBSERVERS: Dict[str, Type[Observer]] = {
    'minmax': MinMaxObserver,
    'ema': EMAMinMaxObserver,
    'percentile': PercentileObserver,
    'mse': MSEObserver,
    'kl': KLObserver,
}
"""Observer names accepted by calibration, its hook and the tools."""

ObserverSpec = Union[str, Dict[str, Any]]


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def observer_config(spec: ObserverSpec) -> Dict[str, Any]:
    """Normalise an observer choice to ``dict(type=NAME, **kwargs)``.

    Args:
        spec (str | dict): ``'NAME'``, ``'NAME:KEY=VALUE[,KEY=VALUE]'`` or a
            dict with ``type``.

    Returns:
        dict: The config, checked against the observer's signature.
    """
    names = ', '.join(OBSERVERS)
    if isinstance(spec, str):
        name, _, args = spec.partition(':')
        cfg: Dict[str, Any] = dict(type=name.strip())
        for item in filter(None, (a.strip() for a in args.split(','))):
            key, eq, value = item.partition('=')
            if not eq or not key.strip():
                raise ValueError(
                    f'Bad observer argument {item!r} in {spec!r}: write '
                    "'NAME:KEY=VALUE[,KEY=VALUE]', e.g. "
                    "'percentile:percentile=99.9'.")
            cfg[key.strip()] = _value(value.strip())
    elif isinstance(spec, dict) and 'type' in spec:
        cfg = dict(spec)
    else:
        raise TypeError(f'An observer is a name ({names}) or a dict with '
                        f"'type', got {spec!r}.")
    cls = OBSERVERS.get(cfg['type'])
    if cls is None:
        raise ValueError(f"Unknown observer {cfg['type']!r}; use one of: "
                         f'{names}.')
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(cfg) - {'type'} - set(params) - {'self'})
    if unknown or 'ch_axis' in cfg:
        allowed = sorted(set(params) - {'self', 'ch_axis'})
        raise ValueError(f"Observer {cfg['type']!r} takes no argument "
                         f"{unknown or ['ch_axis']}; its arguments are "
                         f'{allowed}.')
    return cfg


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
