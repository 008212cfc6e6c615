"""Measure activation ranges before a run, then freeze them (and optionally
reconstruct the quantized model with a PTQ method)."""
from itertools import islice
from typing import Optional, Union

import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.dist import all_reduce, broadcast, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS
from torch.utils.data import DataLoader

from ssql_mm.quantization import (calibrate, fake_quantizers, observer_config,
                                  quant_layers, set_observers)
from ssql_mm.quantization.fake_quantize import ActivationFakeQuantize
from ssql_mm.quantization.observer_registry import ObserverSpec
from ssql_mm.quantization.ptq import PTQSpec, build_ptq, ptq_config

__all__ = [
    'QuantCalibrationHook', 'sync_ranges', 'share_reconstruction',
    'finite_loader'
]

_LOADERS = ('train', 'val', 'test', 'calib')


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


def share_reconstruction(model: torch.nn.Module) -> None:
    """Give every rank rank 0's reconstructed model: the quantized layers'
    weights, the frozen weight clipping values and the frozen activation
    ranges. A no-op outside distributed runs.

    Args:
        model (nn.Module): A model after a PTQ method baked its result.
    """
    if get_world_size() == 1:
        return
    tensors = []
    for _, layer in quant_layers(model):
        tensors.append(layer.weight.data)
        if layer.weight_quant.max_abs is not None:
            tensors.append(layer.weight_quant.max_abs)
    for quantizer in fake_quantizers(model):
        if isinstance(quantizer, ActivationFakeQuantize) and quantizer.frozen:
            tensors += [quantizer.observer.min_val, quantizer.observer.max_val]
    for tensor in tensors:
        broadcast(tensor, src=0)
    for quantizer in fake_quantizers(model):
        quantizer.set_mode(quantizer.mode)  # forget cached quantized copies


def finite_loader(loader: DataLoader) -> DataLoader:
    """A loader that can be left part-way without harming ``loader``.

    mmengine's ``InfiniteSampler`` (iteration-based configs, e.g. all of
    mmseg's) shares one index generator between all iterations; stopping a
    loop over it early closes that generator and the training loop that
    follows ends at once. Such loaders are replaced by a loader over the
    same dataset with a shuffled ``DefaultSampler``.

    Args:
        loader (DataLoader): One of the runner's dataloaders.

    Returns:
        DataLoader: ``loader`` itself, or the finite stand-in.
    """
    if not isinstance(loader.sampler, InfiniteSampler):
        return loader
    batch_size = getattr(loader.batch_sampler, 'batch_size', None)
    return DataLoader(
        loader.dataset,
        batch_size=batch_size or loader.batch_size or 1,
        sampler=DefaultSampler(loader.dataset, shuffle=True),
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers)


@HOOKS.register_module()
class QuantCalibrationHook(Hook):
    """Calibrate a quantized model on ``num_batches`` batches before it runs.

    The model runs in float and eval mode over batches of the chosen
    dataloader, activation ranges are recorded (min/max unless another
    observer is chosen), synchronised across
    ranks and frozen. Frozen ranges are saved with the model's checkpoints
    and restored when one is loaded.

    The hook decides by itself whether to calibrate, before training,
    validation and testing alike:

    - no activation quantizer is on (a float model): nothing reads the
      ranges, so none is measured and a float checkpoint carries none;
    - every quantizer that is on has a frozen range (measured earlier in
      this run, or restored from the checkpoint of a quantized run, whose
      weights were trained with those ranges): they are kept;
    - otherwise (a fresh quantized model, or a float checkpoint tested at
      some bits, i.e. post-training quantization) the ranges are measured
      on the current weights.

    So one hook block serves a float config and its quantized twins, which
    differ only in the backbone's bits.

    Args:
        num_batches (int): Batches to calibrate on. Defaults to 10.
        dataloader (str | dict): Which of the runner's dataloaders to draw
            them from: ``'train'`` (the paper's protocol), ``'val'`` or
            ``'test'``; ``'calib'``, a loader built from the config's
            ``calib_dataloader`` (for example the training images with the
            test pipeline); or a dataloader config dict. Own loaders are
            built once, with the runner's seed. Defaults to 'train'.
        observer (str | dict): How ranges are found: ``'minmax'`` (the
            paper's), ``'ema'``, ``'percentile'``, ``'mse'``, ``'kl'``, with
            arguments as ``'percentile:percentile=99.9'`` or
            ``dict(type='percentile', percentile=99.9)`` (see
            ``ssql_mm.quantization.observer_config``). Its weight ranges
            (per-channel MSE for ``'mse'``) also apply to ranges restored
            from a checkpoint. Defaults to 'minmax'.
        ptq (str | dict, optional): Post-training quantization after the
            ranges are measured, on the same batches: ``'adaround'``,
            ``'brecq'`` or ``'qdrop'``, with arguments as
            ``'brecq:iters=500'`` or ``dict(type='brecq', iters=500)`` (see
            ``ssql_mm.quantization.ptq``). It runs only where the hook
            measures ranges before validation or testing, bakes its learned
            rounding into the weights (saved with the checkpoints), and in
            distributed runs every rank takes rank 0's result. Not for
            training: a quantized training run with ``ptq`` set stops with
            an error. Defaults to None.
    """
    priority = 'HIGH'

    def __init__(self,
                 num_batches: int = 10,
                 dataloader: Union[str, dict] = 'train',
                 observer: ObserverSpec = 'minmax',
                 ptq: Optional[PTQSpec] = None) -> None:
        if not isinstance(num_batches, int) or num_batches < 1:
            raise ValueError(f'num_batches must be an int >= 1, got {num_batches!r}.')
        if not isinstance(dataloader, dict) and dataloader not in _LOADERS:
            raise ValueError(f'dataloader must be one of {_LOADERS} or a '
                             f'dataloader config dict, got {dataloader!r}.')
        self.num_batches = num_batches
        self.dataloader = dataloader
        self.observer = observer_config(observer)
        self.ptq = None if ptq is None else ptq_config(ptq)
        if self.ptq is not None:
            build_ptq(self.ptq)  # check the settings now, not after training
        self._own_loader: Optional[DataLoader] = None

    def before_train(self, runner) -> None:
        self._calibrate(runner, training=True)

    def before_val(self, runner) -> None:
        self._calibrate(runner)

    def before_test(self, runner) -> None:
        self._calibrate(runner)

    def _calibrate(self, runner, training: bool = False) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        quantizers = [q for q in fake_quantizers(model)
                      if isinstance(q, ActivationFakeQuantize)]
        if not quantizers:
            raise RuntimeError('QuantCalibrationHook found no quantized layer '
                               'in the model; use a quantized backbone such as '
                               "type='mmpretrain.QuantResNet'.")
        in_use = [q for q in quantizers if q.bits is not None]
        if all(q.frozen for q in in_use):
            set_observers(model, self.observer)
            return
        if training and self.ptq is not None:
            raise ValueError(
                f"QuantCalibrationHook(ptq='{self.ptq['type']}') is "
                'post-training quantization and would be undone by '
                'training: use it in a test config, or drop ptq to train.')
        loader = finite_loader(self._loader(runner))
        if self.ptq is not None:
            # The same batches serve calibration and reconstruction.
            loader = list(islice(loader, self.num_batches))

        def forward(m, data_batch):
            data = m.data_preprocessor(data_batch, False)
            m(**data, mode='tensor')

        seen = calibrate(model, loader, self.num_batches, forward,
                         self.observer)
        sync_ranges(model)
        source = 'own' if isinstance(self.dataloader, dict) else self.dataloader
        logger = MMLogger.get_current_instance()
        logger.info(
            f'Calibrated activation ranges of {len(quantizers)} quantized '
            f'layers on {seen} {source} batches '
            f"({self.observer['type']} observer).")
        if self.ptq is not None:
            report = build_ptq(self.ptq)(model, loader, forward)
            share_reconstruction(model)
            logger.info(f"Reconstructed the quantized model with "
                        f"{self.ptq['type']} on {report.images} images in "
                        f'{report.seconds:.0f} s.')

    def _loader(self, runner) -> DataLoader:
        if self._own_loader is not None:
            return self._own_loader
        cfg = self.dataloader
        if cfg == 'calib':
            cfg = runner.cfg.get('calib_dataloader')
            if cfg is None:
                raise KeyError("QuantCalibrationHook(dataloader='calib') "
                               'needs a calib_dataloader in the config; add '
                               'one or choose train/val/test.')
        if not isinstance(cfg, dict):
            return getattr(runner, f'{self.dataloader}_dataloader')
        self._own_loader = runner.build_dataloader(cfg, seed=runner.seed)
        return self._own_loader
