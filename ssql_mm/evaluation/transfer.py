"""Transfer benchmark: fine-tune, then quantize post-training at several
bit-widths and with several calibrations.

The fine-tuning config is one of ``configs/benchmarks/classification/``: a
float classifier on a quantized-twin backbone (``QuantResNet*`` at 0/0 bits)
with a ``QuantCalibrationHook``. Post-training quantization (PTQ) tests the
fine-tuned weights with the backbone rebuilt at ``W/A`` bits; the hook
calibrates activation ranges on the config's calibration images with the
chosen observer first. A calibration is an observer (``'mse'``), or an
observer followed by a reconstruction method run from its ranges
(``'mse+qdrop'``, ``'mse+brecq:iters=200'``; see
``ssql_mm.quantization.ptq``). The result uses the bit sweep's report
(:mod:`.report`): rows are bit settings, columns calibrations.
"""
import copy
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

from ssql_mm.models.backbones import quant_twin
from ssql_mm.quantization import observer_config
from ssql_mm.quantization.ptq import ptq_config
from .bit_settings import BitSetting, parse_bit_setting, parse_bit_settings
from .pretrained_backbone import load_pretrained
from .sweep import SweepResult

__all__ = [
    'TOP1_KEY', 'QAT_COLUMN', 'adopt_backbone', 'finetune',
    'parse_calibration', 'ptq_test', 'run_transfer', 'run_qat_transfer'
]

TOP1_KEY = 'accuracy/top1'
QAT_COLUMN = 'qat'
_HOOK_TYPES = ('QuantCalibrationHook', 'mmpretrain.QuantCalibrationHook')
# Backbone keys that belong to the downstream run, not to the architecture
# (where the quantizers sit is the run's choice, like its bits).
_RUN_KEYS = ('type', 'init_cfg', 'frozen_stages', 'norm_eval', 'out_indices',
             'w_bits', 'a_bits', 'overrides', 'mixed', 'placement')


def _calibration_hook(cfg: Config) -> dict:
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') in
             _HOOK_TYPES]
    if len(hooks) != 1:
        raise ValueError(
            'A transfer config needs exactly one QuantCalibrationHook in '
            f'custom_hooks (found {len(hooks)}); use a config from '
            'configs/benchmarks/classification/.')
    return hooks[0]


def adopt_backbone(cfg: Config, pretrained: str,
                   pretrain_config: Optional[str] = None) -> None:
    """Give ``cfg.model`` the backbone architecture of a pretrained checkpoint.

    The architecture (type, depth, widths, strides, ...) comes from the
    checkpoint's stored config (or ``pretrain_config``); what belongs to the
    downstream run (bits, quantizer placement, frozen stages, init) stays
    the config's. The head's
    input width follows the backbone.

    Args:
        cfg (Config): The transfer config, changed in place.
        pretrained (str): The pretrained checkpoint.
        pretrain_config (str, optional): Its pretraining config. Defaults to
            None (the one stored in the checkpoint).
    """
    source = load_pretrained(pretrained, pretrain_config).backbone_cfg
    float_backbone = MODELS.build(
        {k: v for k, v in source.items() if k != 'init_cfg'})
    arch = {k: v for k, v in source.items() if k not in _RUN_KEYS}
    run = {k: v for k, v in cfg.model.backbone.items()
           if k in _RUN_KEYS and k != 'type'}
    cfg.model.backbone = dict(arch, type=quant_twin(source['type']).__name__,
                              **run)
    cfg.model.head.in_channels = float_backbone.feat_dim


def _runner(cfg: Config, work_dir: str, name: str) -> Runner:
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    return Runner.from_cfg(cfg)


def _test(cfg: Config, checkpoint: str, work_dir: str,
          name: str) -> Dict[str, float]:
    """Test ``checkpoint`` with ``cfg`` (one pass, no backbone init)."""
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    cfg.load_from = checkpoint
    cfg.test_dataloader.persistent_workers = False  # one pass per run
    return _runner(cfg, work_dir, name).test()


def finetune(cfg: Config, work_dir: str,
             pretrained: Optional[str] = None) -> str:
    """Fine-tune (train) a transfer config and return its last checkpoint.

    Args:
        cfg (Config): The transfer config.
        work_dir (str): Where the run writes its logs and checkpoints.
        pretrained (str, optional): The pretrained checkpoint whose
            ``backbone.*`` weights start the run. Defaults to None (the
            config's ``model.backbone.init_cfg``).

    Returns:
        str: The checkpoint saved at the end of training.
    """
    cfg = copy.deepcopy(cfg)
    if pretrained is not None:
        cfg.model.backbone.init_cfg = dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')
    _runner(cfg, work_dir, 'finetune').train()
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def parse_calibration(calibration: str) -> Tuple[str, Optional[str]]:
    """Split a calibration into its observer and reconstruction method.

    Args:
        calibration (str): An observer (``'mse'``,
            ``'mse:weights=false'``), or an observer, ``+`` and a PTQ
            method (``'mse+qdrop'``, ``'mse+brecq:iters=200'``).

    Returns:
        tuple[str, str | None]: The observer and the method (None: ranges
        only). Both are checked.
    """
    observer, plus, method = calibration.partition('+')
    if plus and not (observer and method):
        raise ValueError(
            f'Calibration {calibration!r}: write OBSERVER+METHOD, for '
            "example 'mse+qdrop'.")
    observer_config(observer)
    if plus:
        ptq_config(method)
    return observer, (method if plus else None)


def ptq_test(cfg: Config,
             checkpoint: str,
             setting: BitSetting,
             observer: str,
             work_dir: str,
             ptq: Optional[str] = None) -> Dict[str, float]:
    """Test fine-tuned weights quantized post-training at ``setting``.

    Args:
        cfg (Config): The (float) transfer config the weights were trained
            with.
        checkpoint (str): The fine-tuned checkpoint.
        setting (BitSetting): Bit-widths of the backbone (uniform or per
            layer).
        observer (str): Calibration observer (see
            ``ssql_mm.quantization.observer_config``).
        work_dir (str): Where the test run writes its logs.
        ptq (str, optional): Reconstruction method run on the calibration
            images from the observer's ranges (see
            ``ssql_mm.quantization.ptq``). Defaults to None (ranges only).

    Returns:
        dict: The test metrics (``'accuracy/top1'``, ...).
    """
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.w_bits = setting.w_bits or 0
    cfg.model.backbone.a_bits = setting.a_bits or 0
    cfg.model.backbone.mixed = setting.to_dict() if setting.is_mixed else None
    hook = _calibration_hook(cfg)
    hook['observer'] = observer
    hook['ptq'] = ptq
    column = observer if ptq is None else f'{observer}+{ptq}'
    name = 'ptq_{}_{}'.format(setting.name,
                              re.sub(r'[^\w.-]', '_', column))
    return _test(cfg, checkpoint, work_dir, name)


def _score(metrics: Dict[str, float], metric: str) -> float:
    if metric not in metrics:
        raise ValueError(f'Metric {metric!r} is not among the test metrics '
                       f'{sorted(metrics)}; pass one of them as --metric.')
    return float(metrics[metric])


def _load_config(config: str, cfg_options: Optional[dict],
                 arch_from_checkpoint: bool, pretrained: Optional[str],
                 pretrain_config: Optional[str]) -> Config:
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    _calibration_hook(cfg)
    if arch_from_checkpoint:
        if pretrained is None:
            raise ValueError('--arch-from-checkpoint needs --pretrained.')
        adopt_backbone(cfg, pretrained, pretrain_config)
    return cfg


def run_qat_transfer(config: str,
                     work_dir: str,
                     pretrained: Optional[str] = None,
                     finetuned: Optional[str] = None,
                     cfg_options: Optional[dict] = None,
                     arch_from_checkpoint: bool = False,
                     pretrain_config: Optional[str] = None,
                     metric: str = TOP1_KEY) -> SweepResult:
    """Fine-tune a quantized config (QAT), then test it at its own bits.

    The calibration hook measures activation ranges before training and
    freezes them; the test run restores them from the checkpoint.

    Args:
        config (str): A QAT transfer config (backbone at ``W/A`` bits).
        work_dir (str): Output folder: ``finetune/`` and ``test/`` runs.
        pretrained (str, optional): Pretrained checkpoint to fine-tune from.
            Defaults to None (the config's).
        finetuned (str, optional): Skip fine-tuning and test this
            quantization-aware fine-tuned checkpoint. Defaults to None.
        cfg_options (dict, optional): Overrides merged into the config.
            Defaults to None.
        arch_from_checkpoint (bool): Take the backbone architecture from
            ``pretrained`` (:func:`adopt_backbone`). Defaults to False.
        pretrain_config (str, optional): Config of ``pretrained`` when it
            stores none. Defaults to None.
        metric (str): The test metric reported. Defaults to
            ``'accuracy/top1'`` (``'coco/bbox_mAP'`` for mmdet, ``'mIoU'``
            for mmseg).

    Returns:
        SweepResult: ``top1['qat'][setting]``: the metric, one setting.
    """
    cfg = _load_config(config, cfg_options, arch_from_checkpoint, pretrained,
                       pretrain_config)
    backbone = cfg.model.backbone
    w_bits, a_bits = backbone.get('w_bits') or 0, backbone.get('a_bits') or 0
    if not (w_bits or a_bits):
        raise ValueError(
            f'{config} has a float backbone (w_bits=a_bits=0): QAT needs '
            'quantized bits; use a *-qat-* config or --cfg-options '
            'model.backbone.w_bits=W model.backbone.a_bits=A.')
    if finetuned is None:
        finetuned = finetune(cfg, osp.join(work_dir, 'finetune'), pretrained)
    metrics = _test(cfg, finetuned, osp.join(work_dir, 'test'), 'qat_test')
    setting = parse_bit_setting(f'{w_bits}/{a_bits}').name
    top1 = _score(metrics, metric)
    MMLogger.get_current_instance().info(
        f'transfer: {setting} QAT: {metric} {top1:.4g}')
    result = SweepResult([QAT_COLUMN], [setting],
                         top1={QAT_COLUMN: {setting: top1}})
    result.meta = dict(config=config, pretrained=pretrained,
                       finetuned=finetuned, cfg_options=cfg_options or {},
                       observers=[QAT_COLUMN], metric=metric)
    return result


def run_transfer(config: str,
                 work_dir: str,
                 bits: Sequence[str],
                 observers: Sequence[str] = ('minmax', ),
                 pretrained: Optional[str] = None,
                 finetuned: Optional[str] = None,
                 cfg_options: Optional[dict] = None,
                 arch_from_checkpoint: bool = False,
                 pretrain_config: Optional[str] = None,
                 metric: str = TOP1_KEY) -> SweepResult:
    """Fine-tune, then test at every bit setting with every calibration.

    Bit settings, calibrations and the config are checked before any
    training. The float setting is tested once (nothing is calibrated) and
    reported in every column.

    Args:
        config (str): A float transfer config (backbone at 0/0 bits).
        work_dir (str): Output folder: ``finetune/`` and ``ptq/`` runs.
        bits (Sequence[str]): Settings such as ``'fp'``, ``'8/8'``, ``'2/4'``.
        observers (Sequence[str]): Calibrations: observers, e.g.
            ``('minmax', 'mse')``, or observers with a reconstruction method
            (``'mse+qdrop'``, see :func:`parse_calibration`). Defaults to
            ('minmax', ).
        pretrained (str, optional): Pretrained checkpoint to fine-tune from.
            Defaults to None (the config's).
        finetuned (str, optional): Skip fine-tuning and quantize this
            fine-tuned checkpoint. Defaults to None.
        cfg_options (dict, optional): Overrides merged into the config.
            Defaults to None.
        arch_from_checkpoint (bool): Take the backbone architecture from
            ``pretrained`` (:func:`adopt_backbone`). Defaults to False.
        pretrain_config (str, optional): Config of ``pretrained`` when it
            stores none. Defaults to None.
        metric (str): The test metric reported. Defaults to
            ``'accuracy/top1'`` (``'coco/bbox_mAP'`` for mmdet, ``'mIoU'``
            for mmseg).

    Returns:
        SweepResult: ``top1[calibration][setting]``: the metric.
    """
    settings = parse_bit_settings(bits)
    names: List[str] = list(observers)
    if not names:
        raise ValueError('No observer given.')
    if len(set(names)) != len(names):
        raise ValueError(f'Observer(s) given twice: {names}.')
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f'Observers are given as strings, got {name!r}.')
        parse_calibration(name)
    cfg = _load_config(config, cfg_options, arch_from_checkpoint, pretrained,
                       pretrain_config)
    backbone = cfg.model.backbone
    if backbone.get('w_bits') or backbone.get('a_bits'):
        raise ValueError(
            f'{config} quantizes its backbone (w_bits={backbone.get("w_bits")},'
            f' a_bits={backbone.get("a_bits")}): PTQ starts from float '
            'fine-tuning. Use the float config, or --qat for a QAT config.')
    if finetuned is None:
        finetuned = finetune(cfg, osp.join(work_dir, 'finetune'), pretrained)
    logger = MMLogger.get_current_instance()
    result = SweepResult(names, [s.name for s in settings])
    ptq_dir = osp.join(work_dir, 'ptq')
    for setting in settings:
        for i, name in enumerate(names):
            if setting.is_float and i > 0:
                top1 = result.top1[names[0]][setting.name]
            else:
                observer, ptq = parse_calibration(name)
                metrics = ptq_test(cfg, finetuned, setting, observer,
                                   ptq_dir, ptq)
                top1 = _score(metrics, metric)
            result.top1.setdefault(name, {})[setting.name] = top1
            logger.info(f'transfer: {setting.name} {name}: {metric} '
                        f'{top1:.4g}')
    result.meta = dict(config=config, pretrained=pretrained,
                       finetuned=finetuned, cfg_options=cfg_options or {},
                       observers=names, metric=metric)
    return result
