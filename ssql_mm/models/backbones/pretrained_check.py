"""A backbone's ``init_weights`` with the pretrained-fit check around it.

The check itself lives in :mod:`ssql_mm.checkpoint.pretrained_fit`. What is
model-side is the clean-up: activation ranges found in a pretrained
checkpoint are discarded after loading, because they were measured on the
pretraining data and a downstream run measures its own
(``QuantCalibrationHook``).
"""
from contextlib import contextmanager
from typing import Iterator

from torch import nn

from ssql_mm.checkpoint import (check_backbone_state, load_pretrained_state,
                                pretrained_init_cfg)
from ssql_mm.quantization import freeze_ranges, reset_ranges

__all__ = ['strict_pretrained']


@contextmanager
def strict_pretrained(backbone: nn.Module) -> Iterator[None]:
    """Wrap a backbone's ``init_weights`` with the pretrained check.

    Before the body runs, a ``type='Pretrained'`` entry of
    ``backbone.init_cfg`` is read and checked with
    :func:`ssql_mm.checkpoint.check_backbone_state`; afterwards activation
    ranges restored from it are forgotten so that the downstream data are
    calibrated afresh.

    Args:
        backbone (nn.Module): A backbone whose ``init_weights`` is running.
    """
    cfg = pretrained_init_cfg(getattr(backbone, 'init_cfg', None))
    if cfg is not None and not getattr(backbone, '_is_init', False):
        state = load_pretrained_state(cfg['checkpoint'], cfg.get('prefix'))
        check_backbone_state(backbone, state, f"'{cfg['checkpoint']}'")
    yield
    if cfg is not None:
        freeze_ranges(backbone, False)
        reset_ranges(backbone)
