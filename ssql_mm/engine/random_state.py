"""The random streams a training step draws from: capture, restore, and
per-sample seeds for the data pipeline.

A step draws from python's ``random``, NumPy's and torch's global generators
(data pipelines, torch's global generator for the views of a
``BatchViewPreprocessor`` without a seed, dropout), from CUDA's generators,
and from ``torch.Generator`` objects a model keeps as attributes (a seeded
``BatchViewPreprocessor``). :func:`capture_random_state` and
:func:`restore_random_state` move all of them in and out of a checkpoint in
types ``weights_only`` loading accepts. :class:`SeededSamples` makes a
pipeline's draws depend on the sample, not on the process that loads it.
"""
import hashlib
import random
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ['capture_random_state', 'restore_random_state', 'SeededSamples']


def _generators(model: nn.Module) -> Dict[str, torch.Generator]:
    """The ``torch.Generator`` attributes of ``model``'s modules, by name
    (``'data_preprocessor.generator'``)."""
    found = {}
    for prefix, module in model.named_modules():
        for name, value in vars(module).items():
            if isinstance(value, torch.Generator):
                found[f'{prefix}.{name}' if prefix else name] = value
    return found


def _cpu_state() -> dict:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return dict(
        python=random.getstate(),
        numpy=(name, torch.from_numpy(keys.astype(np.int64)), int(pos),
               int(has_gauss), float(gauss)),
        torch=torch.get_rng_state())


def _set_cpu_state(state: dict) -> None:
    random.setstate(state['python'])
    name, keys, pos, has_gauss, gauss = state['numpy']
    np.random.set_state(
        (name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state['torch'].cpu())


def capture_random_state(model: Optional[nn.Module] = None) -> dict:
    """The state of every generator a training step of this process draws
    from.

    Args:
        model (nn.Module, optional): Its ``torch.Generator`` attributes are
            included. Defaults to None.

    Returns:
        dict: ``python``, ``numpy`` (the key as an int64 tensor), ``torch``,
        ``cuda`` (None when CUDA is not in use) and ``generators`` (name ->
        state). Tensors, tuples and numbers only.
    """
    state = _cpu_state()
    in_use = torch.cuda.is_available() and torch.cuda.is_initialized()
    state['cuda'] = torch.cuda.get_rng_state_all() if in_use else None
    state['generators'] = ({name: gen.get_state()
                            for name, gen in _generators(model).items()}
                           if model is not None else {})
    return state


def restore_random_state(state: dict,
                         model: Optional[nn.Module] = None) -> List[str]:
    """Set the generators to a state of :func:`capture_random_state`.

    Args:
        state (dict): The captured state (tensors may be on any device).
        model (nn.Module, optional): Whose ``torch.Generator`` attributes to
            set. Defaults to None.

    Returns:
        list[str]: What could not be restored: names of generators of
        ``model`` the state does not hold, ``'cuda'`` when the CUDA states
        do not match the devices here. Empty when everything was.
    """
    _set_cpu_state(state)
    missing = []
    cuda = state.get('cuda')
    if cuda is not None:
        devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if len(cuda) == devices:
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
        else:
            missing.append('cuda')
    if model is not None:
        saved = state.get('generators', {})
        for name, gen in _generators(model).items():
            if name in saved:
                gen.set_state(saved[name].cpu())
            else:
                missing.append(name)
    return missing


class SeededSamples:
    """Draw every sample's random augmentation from python's, NumPy's and
    torch's CPU generators seeded by ``(seed, epoch, index)``.

    Installed as the dataset's ``__getitems__``, which torch's dataloader
    calls with a batch's indices in whichever process loads it (a worker or
    the main process). The augmentation of a sample then depends only on the
    seed, the epoch and the dataset index: not on the number of workers, on
    whether they persist across epochs (their own generators would carry
    on), on the number of ranks, or on where a run was resumed. The calling
    process's generators are left as they were.

    Args:
        dataset (Dataset): A map-style dataset.
        seed (int): The run's seed.
    """

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset = dataset
        self.seed = int(seed)
        # Shared with the worker processes (forked or spawned).
        self.epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @classmethod
    def install(cls, dataset: Any, seed: int) -> 'SeededSamples':
        """Make ``dataset``'s batched fetch seeded.

        Args:
            dataset (Dataset): The dataset of a dataloader whose workers have
                not started yet.
            seed (int): The run's seed.

        Returns:
            SeededSamples: Set its epoch with :meth:`set_epoch`.
        """
        seeded = cls(dataset, seed)
        dataset.__getitems__ = seeded
        return seeded

    def set_epoch(self, epoch: int) -> None:
        """Seed the samples loaded from now on with ``epoch``."""
        self.epoch.fill_(epoch)

    def sample_seed(self, epoch: int, index: int) -> int:
        """The 64-bit seed of one sample."""
        text = f'{self.seed}/{epoch}/{index}'.encode()
        return int.from_bytes(
            hashlib.blake2b(text, digest_size=8).digest(), 'little')

    def __call__(self, indices: Sequence[int]) -> list:
        epoch = int(self.epoch)
        outer = _cpu_state()
        try:
            samples = []
            for index in indices:
                seed = self.sample_seed(epoch, int(index))
                random.seed(seed)
                np.random.seed(seed % 2**32)
                torch.random.default_generator.manual_seed(seed)
                samples.append(self.dataset[index])
            return samples
        finally:
            _set_cpu_state(outer)
