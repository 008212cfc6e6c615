"""Post-training quantization methods by name: the one place that maps a
config to a method.

A method is chosen like an observer: a name (``'adaround'``), a name with
arguments (``'brecq:iters=500,act_lr=1e-4'``) or a dict
(``dict(type='qdrop', drop_prob=0.5)``).
"""
from typing import Any, Dict, Type

from ..spec import Spec, spec_config
from .adaround import AdaRound
from .brecq import BRECQ
from .qdrop import QDrop
from .reconstruction import Reconstruction

__all__ = ['PTQ_METHODS', 'PTQSpec', 'ptq_config', 'build_ptq']

PTQ_METHODS: Dict[str, Type[Reconstruction]] = {
    'adaround': AdaRound,
    'brecq': BRECQ,
    'qdrop': QDrop,
}
"""PTQ method names accepted by calibration, its hook and the tools."""

PTQSpec = Spec


def ptq_config(spec: PTQSpec) -> Dict[str, Any]:
    """Normalise a PTQ method choice to ``dict(type=NAME, **kwargs)``.

    Args:
        spec (str | dict): ``'NAME'``, ``'NAME:KEY=VALUE[,KEY=VALUE]'`` or a
            dict with ``type``.

    Returns:
        dict: The config, checked against the method's signature.
    """
    return spec_config(spec, PTQ_METHODS, 'PTQ method', 'brecq:iters=500')


def build_ptq(spec: PTQSpec) -> Reconstruction:
    """Build a PTQ method; call it as ``method(model, batches, forward)``.

    Args:
        spec (str | dict): See :func:`ptq_config`.

    Returns:
        Reconstruction: The method, its settings checked.
    """
    cfg = ptq_config(spec)
    return PTQ_METHODS[cfg.pop('type')](**cfg)
