"""Carry every random stream of a training run through its checkpoints, so a
resumed run continues exactly as the uninterrupted one would have."""
import logging
from typing import Callable, List, Optional, Tuple

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop, EpochBasedTrainLoop, IterBasedTrainLoop
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

from ssql_mm.engine.random_state import (SeededSamples, capture_random_state,
                                         restore_random_state)

__all__ = ['RandomStateHook']

DATA_BATCH = Optional[dict]


class _RestoreAfterSkip:
    """Stands in for an ``IterBasedTrainLoop``'s dataloader iterator while
    MMEngine skips the batches trained before the checkpoint (loading them
    draws random numbers), then calls ``restore`` and puts the iterator
    back, right before the first new batch is loaded."""

    def __init__(self, loop: IterBasedTrainLoop, skip: int,
                 restore: Callable[[], None]) -> None:
        self.loop, self.iterator = loop, loop.dataloader_iterator
        self.left, self.restore = skip, restore

    def __iter__(self) -> '_RestoreAfterSkip':
        return self

    def __next__(self):
        batch = next(self.iterator)
        self.left -= 1
        if self.left == 0:
            self.loop.dataloader_iterator = self.iterator
            self.restore()
        return batch


def _warn(message: str) -> None:
    print_log(f'RandomStateHook: {message}', logger='current',
              level=logging.WARNING)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random state of every rank in each checkpoint and restore it
    on resume, so that a resumed run ends with the same weights, bit for
    bit, as an uninterrupted one.

    What a step draws from, and how it is kept:

    - python's, NumPy's, torch's and CUDA's global generators of every rank
      (torch's draws the views of a ``BatchViewPreprocessor`` without seed,
      and dropout) and the ``torch.Generator`` attributes of the model (a
      seeded ``BatchViewPreprocessor``): captured at the end of every epoch
      (``EpochBasedTrainLoop``) or iteration (``IterBasedTrainLoop``),
      gathered from all ranks, saved under ``random_state``, restored on
      resume right before the first new batch is loaded (in an iteration
      loop after MMEngine has skipped the batches already trained);
    - the data pipeline of an epoch loop: each sample is drawn with
      generators seeded by ``(seed, epoch, index)`` (:class:`SeededSamples`),
      so persistent workers, which keep their generators across epochs, and
      a resumed run, which starts new ones, load the same views. In an
      iteration loop the workers live through the whole run and MMEngine's
      skip replays their draws;
    - the training loader's iterators draw their base seed from an own
      generator, so an iterator created by one run and not the other
      (persistent workers are created once) leaves torch's global stream
      alone;
    - validation runs between a capture and the next step, in the
      uninterrupted run only: it leaves the generators as it found them.

    The bit-widths (:class:`QuantHook`), data order (samplers seeded by
    seed and epoch), optimizer, schedulers and model are restored by their
    own state. ``tools/train.py`` adds this hook to every run.
    """
    # After the other hooks of a stage, before CheckpointHook (VERY_LOW, 90).
    priority = 85
    _CKPT_KEY = 'random_state'

    def __init__(self) -> None:
        self._states: Optional[List[dict]] = None  # latest capture, per rank
        self._loaded: Optional[Tuple[Optional[int], Optional[dict]]] = None
        self._seeded: Optional[SeededSamples] = None
        self._outside_val: Optional[dict] = None

    def before_run(self, runner) -> None:
        # runner.val() and runner.test() call before_run too: only a built
        # train loop means training.
        loop = getattr(runner, '_train_loop', None)
        if not isinstance(loop, BaseLoop):
            return
        if not isinstance(loop, (EpochBasedTrainLoop, IterBasedTrainLoop)):
            _warn(f'{type(loop).__name__} is neither an epoch nor an '
                  'iteration loop: a resumed run is not an exact '
                  'continuation.')
            return
        loop.dataloader.generator = torch.Generator().manual_seed(runner.seed)
        if isinstance(loop, EpochBasedTrainLoop):
            self._seeded = SeededSamples.install(loop.dataloader.dataset,
                                                 runner.seed)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            self._capture(runner, runner.iter + 1)

    def after_train_epoch(self, runner) -> None:
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            self._capture(runner, runner.iter)

    def _capture(self, runner, at_iter: int) -> None:
        state = capture_random_state(get_ori_model(runner.model))
        state['iter'] = at_iter
        self._states = (all_gather_object(state)
                        if get_world_size() > 1 else [state])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._states is not None:
            checkpoint[self._CKPT_KEY] = dict(ranks=self._states)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = (checkpoint.get('meta', {}).get('iter'),
                        checkpoint.get(self._CKPT_KEY))

    def before_train_epoch(self, runner) -> None:
        if self._seeded is not None:
            self._seeded.set_epoch(runner.epoch)
        if self._loaded is None:
            return
        at_iter, saved = self._loaded
        self._loaded = None
        if not at_iter or at_iter != runner.iter:  # load_from, not a resume
            return
        state = self._saved_state(saved, runner.iter)
        if state is None:
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreAfterSkip(
                loop, runner.iter, lambda: self._restore(runner, state))
        else:
            self._restore(runner, state)

    @staticmethod
    def _saved_state(saved: Optional[dict], at_iter: int) -> Optional[dict]:
        """This rank's state in a checkpoint saved at ``at_iter``; None,
        with a warning, when there is none to continue exactly."""
        if saved is None:
            _warn('the checkpoint holds no random state (saved without this '
                  'hook): the resumed run draws other random numbers than '
                  'an uninterrupted one would.')
            return None
        ranks = saved['ranks']
        world_size = get_world_size()
        if len(ranks) != world_size:
            _warn(f'the checkpoint was saved by {len(ranks)} rank(s), this '
                  f'run has {world_size}: a resumed run is an exact '
                  'continuation only with the same number of ranks.')
        state = ranks[get_rank() % len(ranks)]
        if state['iter'] != at_iter:
            _warn(f'the checkpoint was saved at iteration {at_iter}, inside '
                  'an epoch; MMEngine starts that epoch again, so the '
                  'resumed run is not an exact continuation (resume from a '
                  'checkpoint saved at the end of an epoch).')
            return None
        return state

    def _restore(self, runner, state: dict) -> None:
        missing = restore_random_state(state, get_ori_model(runner.model))
        if missing:
            _warn(f'no saved random state for {missing}; those draw other '
                  'numbers than in the uninterrupted run.')

    def before_val(self, runner) -> None:
        self._outside_val = capture_random_state(get_ori_model(runner.model))

    def after_val(self, runner) -> None:
        if self._outside_val is not None:
            restore_random_state(self._outside_val,
                                 get_ori_model(runner.model))
            self._outside_val = None
