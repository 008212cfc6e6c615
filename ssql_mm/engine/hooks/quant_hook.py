"""Draw the bit-widths of every SSQL training iteration."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.dist import broadcast_object_list
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ssql_mm.quantization import MAX_BITS, MIN_BITS, fake_quantizers, set_bits

__all__ = ['QuantHook', 'check_bit_range']

DATA_BATCH = Optional[dict]


def check_bit_range(bit_range: Sequence[int], name: str) -> Tuple[int, int]:
    """Validate an inclusive ``(low, high)`` bit-width range.

    Args:
        bit_range (Sequence[int]): The range.
        name (str): Argument name for error messages.

    Returns:
        tuple[int, int]: ``(low, high)``.
    """
    if (not isinstance(bit_range, (tuple, list)) or len(bit_range) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool)
                       for b in bit_range)):
        raise TypeError(f'{name} must be a pair of ints (low, high), '
                        f'got {bit_range!r}.')
    low, high = bit_range
    if low > high:
        raise ValueError(f'{name}={tuple(bit_range)} is empty: low must be '
                         f'<= high, e.g. ({high}, {low}).')
    if low < MIN_BITS or high > MAX_BITS:
        raise ValueError(f'{name}={tuple(bit_range)} is out of range: both '
                         f'ends must lie in [{MIN_BITS}, {MAX_BITS}] '
                         '(inclusive), e.g. (2, 8) for weights, (4, 8) for '
                         'activations.')
    return low, high


@HOOKS.register_module()
class QuantHook(Hook):
    """Before every training iteration, draw ``(w_bits, a_bits)`` uniformly
    from inclusive ranges and set them on the model.

    All ranks draw the same pair (one seed, broadcast from rank 0). The
    generator state is stored in checkpoints and restored on resume, so a
    resumed run sees the same bit sequence as an uninterrupted one. The
    drawn values are logged as ``w_bit`` and ``a_bit``.

    Args:
        w_bits_range (Sequence[int]): Inclusive weight bit range.
            Defaults to (2, 8).
        a_bits_range (Sequence[int]): Inclusive activation bit range.
            Defaults to (4, 8).
        seed (int, optional): Seed of the bit generator. Defaults to None,
            the runner's seed.
    """
    priority = 'NORMAL'
    _CKPT_KEY = 'quant_hook'

    def __init__(self,
                 w_bits_range: Sequence[int] = (2, 8),
                 a_bits_range: Sequence[int] = (4, 8),
                 seed: Optional[int] = None) -> None:
        self.w_bits_range = check_bit_range(w_bits_range, 'w_bits_range')
        self.a_bits_range = check_bit_range(a_bits_range, 'a_bits_range')
        if seed is not None and not isinstance(seed, int):
            raise TypeError(f'seed must be an int or None, got {seed!r}.')
        self.seed = seed
        self.generator: Optional[torch.Generator] = None

    @staticmethod
    def _model(runner) -> torch.nn.Module:
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        if not fake_quantizers(self._model(runner)):
            raise RuntimeError('QuantHook needs a quantized model (e.g. '
                               "type='SSQLSimSiam'); this one has no "
                               'quantized layer. Remove the hook or fix the '
                               'model config.')
        if self.generator is None:  # not restored from a checkpoint
            seed = [self.seed if self.seed is not None else runner.seed]
            broadcast_object_list(seed, src=0)
            self.generator = torch.Generator().manual_seed(int(seed[0]))

    def _draw(self, low: int, high: int) -> int:
        return low + int(torch.randint(high - low + 1, (1, ),
                                       generator=self.generator))

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        w_bits = self._draw(*self.w_bits_range)
        a_bits = self._draw(*self.a_bits_range)
        set_bits(self._model(runner), w_bits, a_bits)
        runner.message_hub.update_scalar('train/w_bit', w_bits)
        runner.message_hub.update_scalar('train/a_bit', a_bits)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.generator is not None:
            checkpoint[self._CKPT_KEY] = dict(
                generator_state=self.generator.get_state())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get(self._CKPT_KEY)
        if state is not None:
            self.generator = torch.Generator()
            self.generator.set_state(state['generator_state'])
