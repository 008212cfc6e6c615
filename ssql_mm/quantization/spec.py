"""Choices by name: the one parser for ``'NAME:KEY=VALUE,...'`` and dict specs.

Observers and post-training quantization methods are both chosen with a
name (``'mse'``), a name with arguments (``'percentile:percentile=99.9'``,
``'brecq:iters=500,lr=0.01'``) or a dict (``dict(type='brecq', iters=500)``).
"""
import inspect
from typing import Any, Dict, Iterable, Mapping, Union

__all__ = ['Spec', 'spec_config']

Spec = Union[str, Dict[str, Any]]


def _value(text: str) -> Any:
    if text.lower() in ('true', 'false'):
        return text.lower() == 'true'
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def spec_config(spec: Spec, classes: Mapping[str, type], kind: str,
                example: str, hidden: Iterable[str] = ()) -> Dict[str, Any]:
    """Normalise a choice to ``dict(type=NAME, **kwargs)``.

    Values written in a string become ints or floats where they parse as
    such. The keyword arguments are checked against the class's signature.

    Args:
        spec (str | dict): ``'NAME'``, ``'NAME:KEY=VALUE[,KEY=VALUE]'`` or a
            dict with ``type``.
        classes (Mapping[str, type]): The names that exist.
        kind (str): What is chosen, for messages (``'observer'``).
        example (str): A valid string spec, for messages.
        hidden (Iterable[str]): Constructor arguments a spec may not set.
            Defaults to ().

    Returns:
        dict: The config.
    """
    names = ', '.join(classes)
    if isinstance(spec, str):
        name, _, args = spec.partition(':')
        cfg: Dict[str, Any] = dict(type=name.strip())
        for item in filter(None, (a.strip() for a in args.split(','))):
            key, eq, value = item.partition('=')
            if not eq or not key.strip():
                raise ValueError(
                    f'Bad {kind} argument {item!r} in {spec!r}: write '
                    f"'NAME:KEY=VALUE[,KEY=VALUE]', e.g. {example!r}.")
            cfg[key.strip()] = _value(value.strip())
    elif isinstance(spec, dict) and 'type' in spec:
        cfg = dict(spec)
    else:
        raise TypeError(f'Choose the {kind} by name ({names}) or as a dict '
                        f"with 'type', got {spec!r}.")
    cls = classes.get(cfg['type'])
    if cls is None:
        raise ValueError(f"Unknown {kind} {cfg['type']!r}; use one of: "
                         f'{names}.')
    hidden = set(hidden) | {'self'}
    params = set(inspect.signature(cls.__init__).parameters) - hidden
    unknown = sorted(set(cfg) - {'type'} - params)
    if unknown:
        raise ValueError(f"{kind[0].upper() + kind[1:]} {cfg['type']!r} "
                         f'takes no argument {unknown}; its arguments are '
                         f'{sorted(params)}.')
    return cfg
