"""Distributed training on machines without CUDA (gloo), through MMEngine.

MMEngine 0.10.7 assumes GPUs in two places: ``init_dist`` calls
``torch.cuda.set_device`` (skipped when a process group already exists) and
the Runner passes ``device_ids=[LOCAL_RANK]`` to DDP, which torch rejects
for CPU modules. :func:`setup_cpu_distributed` handles both; with CUDA it
changes nothing.
"""
import logging

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS

__all__ = ['CPUDistributedDataParallel', 'setup_cpu_distributed']


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also takes modules on the CPU.

    For a CPU module, ``device_ids`` (which the Runner always passes) is
    dropped and ``SyncBatchNorm`` layers, which torch runs only on GPUs, are
    turned back into per-process BatchNorm (with a warning). A GPU module is
    wrapped exactly as by ``MMDistributedDataParallel``.
    """

    def __init__(self, module: torch.nn.Module, device_ids=None, **kwargs) -> None:
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu and any(isinstance(m, torch.nn.SyncBatchNorm)
                          for m in module.modules()):
            print_log('SyncBatchNorm cannot run on the CPU: using per-process '
                      'BatchNorm for this run.', logger='current',
                      level=logging.WARNING)
            module = revert_sync_batchnorm(module)
        super().__init__(
            module=module, device_ids=None if on_cpu else device_ids, **kwargs)


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Prepare a launched run for gloo on CPU when CUDA is unavailable.

    Creates the process group (from the ``torchrun`` environment) before the
    Runner would try ``torch.cuda.set_device``, and selects
    :class:`CPUDistributedDataParallel`. Does nothing for ``launcher='none'``
    or when CUDA is available.

    Args:
        cfg (Config): The training config; modified in place.
        launcher (str): The launcher given on the command line.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    wrapper_cfg = dict(cfg.get('model_wrapper_cfg') or {})
    if wrapper_cfg.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper_cfg['type'] = 'CPUDistributedDataParallel'
    wrapper_cfg.setdefault('broadcast_buffers', False)
    wrapper_cfg.setdefault('find_unused_parameters',
                           cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper_cfg
