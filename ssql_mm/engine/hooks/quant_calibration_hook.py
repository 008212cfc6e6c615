"""Measure activation ranges before a run, then freeze them."""
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ssql_mm.quantization import calibrate, fake_quantizers
from ssql_mm.quantization.fake_quantize import ActivationFakeQuantize

__all__ = ['QuantCalibrationHook', 'sync_ranges']

_LOADERS = ('train', 'val', 'test')


def sync_ranges(model: torch.nn.Module) -> None:
    """Make recorded activation ranges identical on every rank (min of the
    minima, max of the maxima). A no-op outside distributed runs.

    Args:
        model (nn.Module): A model holding quantized layers.
    """
    if get_world_size() == 1:
        return
    for quantizer in fake_quantizers(model):
        if isinstance(quantizer, ActivationFakeQuantize) and quantizer.has_range:
            all_reduce(quantizer.observer.min_val, op='min')
            all_reduce(quantizer.observer.max_val, op='max')


@HOOKS.register_module()
class QuantCalibrationHook(Hook):
    """Calibrate a quantized model on ``num_batches`` batches before it runs.

    The model runs in float and eval mode over batches of the chosen
    dataloader, activation ranges (min/max) are recorded, synchronised across
    ranks and frozen. Frozen ranges are saved with the model's checkpoints
    and restored when one is loaded; then nothing is recalibrated unless
    ``recalibrate=True``.

    Args:
        num_batches (int): Batches to calibrate on. Defaults to 10.
        dataloader (str): Which of the runner's dataloaders to draw them
            from: ``'train'`` (the paper's protocol), ``'val'`` or
            ``'test'``. Defaults to 'train'.
        recalibrate (bool): Calibrate even when every range is already
            frozen (e.g. restored from a checkpoint). Defaults to False.
    """
    priority = 'HIGH'

    def __init__(self,
                 num_batches: int = 10,
                 dataloader: str = 'train',
                 recalibrate: bool = False) -> None:
        if not isinstance(num_batches, int) or num_batches < 1:
            raise ValueError(f'num_batches must be an int >= 1, got {num_batches!r}.')
        if dataloader not in _LOADERS:
            raise ValueError(f'dataloader must be one of {_LOADERS}, got '
                             f'{dataloader!r}.')
        self.num_batches = num_batches
        self.dataloader = dataloader
        self.recalibrate = recalibrate

    def before_train(self, runner) -> None:
        self._calibrate(runner)

    def before_val(self, runner) -> None:
        self._calibrate(runner)

    def before_test(self, runner) -> None:
        self._calibrate(runner)

    def _calibrate(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        quantizers = [q for q in fake_quantizers(model)
                      if isinstance(q, ActivationFakeQuantize)]
        if not quantizers:
            raise RuntimeError('QuantCalibrationHook found no quantized layer '
                               'in the model; use a quantized backbone such as '
                               "type='mmpretrain.QuantResNet'.")
        if all(q.frozen for q in quantizers) and not self.recalibrate:
            return
        loader = getattr(runner, f'{self.dataloader}_dataloader')

        def forward(m, data_batch):
            data = m.data_preprocessor(data_batch, False)
            m(**data, mode='tensor')

        seen = calibrate(model, loader, self.num_batches, forward)
        sync_ranges(model)
        MMLogger.get_current_instance().info(
            f'Calibrated activation ranges of {len(quantizers)} quantized '
            f'layers on {seen} {self.dataloader} batches.')
