r"""Output reconstruction, the engine shared by AdaRound, BRECQ and QDrop.

A method splits the model into *units* (a layer, or a residual block) and
reconstructs them one after the other, in the order the model runs them.
For unit :math:`k`:

- **input**: what unit :math:`k` receives in the *quantized* model, in which
  units :math:`1..k-1` already use their learned rounding and step sizes
  and every other quantizer quantizes at its calibrated range (its inner
  quantizers included; the unit's output is its forward output, whatever
  quantizers it holds);
- **target**: the *float* model's output of unit :math:`k` on the same
  images (every quantizer off, original weights);
- **loss**: :math:`\frac{1}{|B|}\sum\|f_k^q(\hat x) - f_k(x)\|^2`, the squared
  error summed over channels (dim 1) and averaged over the rest, plus the
  penalties of the learned parameters (the rounding regularizer).

The model runs in eval mode (BatchNorm uses its running statistics); only
the learned rounding variables and step sizes receive gradients. Learned
quantities live in :class:`Learner` objects that take over a fake
quantizer's output through a forward hook; nothing is written into the
model until every unit is done, when each learner *bakes* its result into
the quantizer's ordinary state (rounded weights and frozen clipping values,
frozen activation ranges). A baked model needs no PTQ code to run, save,
load or export.
"""
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MMLogger
from torch import Tensor, nn

from ..convert import fake_quantizers, quant_layers, set_quant_mode
from ..fake_quantize import ActivationFakeQuantize, QuantMode, _FakeQuantize

__all__ = ['Learner', 'UnitResult', 'PTQReport', 'Reconstruction']

Forward = Callable[[nn.Module, Any], Any]


class Learner:
    """Learned state of one fake quantizer, applied through a forward hook.

    While :attr:`active`, the quantizer's output is replaced by
    :meth:`quantize` of its input (the engine keeps the quantizer itself in
    float mode then, so it passes its input through). :attr:`training`
    selects the relaxed form used during optimisation (soft rounding,
    dropped quantization) against the final one.

    Args:
        quantizer (_FakeQuantize): The quantizer to take over.
    """

    def __init__(self, quantizer: _FakeQuantize) -> None:
        self.quantizer = quantizer
        self.active = False
        self.training = False
        self._handle = quantizer.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: Tuple[Tensor, ...],
              output: Tensor) -> Tensor:
        return self.quantize(args[0]) if self.active else output

    def quantize(self, x: Tensor) -> Tensor:
        """The learned fake quantization of ``x``."""
        raise NotImplementedError

    def param_groups(self) -> List[Dict[str, Any]]:
        """Optimizer groups; a group with ``cosine=True`` has its learning
        rate annealed to 0 over the iterations."""
        raise NotImplementedError

    def penalty(self, step: int) -> Optional[Tensor]:
        """Term added to the loss at iteration ``step`` (None: nothing)."""
        return None

    def bake(self) -> None:
        """Write the final result into the quantizer's own state."""
        raise NotImplementedError

    def detach(self) -> None:
        """Remove the hook; the quantizer acts on its own again."""
        self._handle.remove()


@dataclass
class UnitResult:
    """Reconstruction loss of one unit before and after learning.

    Args:
        name (str): The unit's module name.
        loss_nearest (float): Loss with nearest rounding and the calibrated
            ranges, over all reconstruction images.
        loss_learned (float): Loss with the learned rounding and steps.
    """
    name: str
    loss_nearest: float
    loss_learned: float


@dataclass
class PTQReport:
    """What a reconstruction did.

    Args:
        method (str): The method's name.
        images (int): Images the units were reconstructed on.
        seconds (float): Wall time.
        units (list[UnitResult]): Per unit, in reconstruction order.
    """
    method: str
    images: int
    seconds: float
    units: List[UnitResult] = field(default_factory=list)


class _Stop(Exception):
    """Raised by a capture hook to end a forward pass early."""


def _rows(values: Sequence[Tensor]) -> int:
    return values[0].shape[0]


def _check_positive(name: str, value: Any, kind: type) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and isinstance(value, int)
    if not ok or value <= 0:
        raise ValueError(f'{name} must be a positive {kind.__name__}, got '
                         f'{value!r}.')


def _check_unit_interval(name: str, value: Any, high_open: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 <= value < 1 if high_open else 0 <= value <= 1):
        bound = '[0, 1)' if high_open else '[0, 1]'
        raise ValueError(f'{name} must be a number in {bound}, got '
                         f'{value!r}.')


@dataclass
class Reconstruction:
    """Base of the reconstruction methods: settings, units and the loop.

    Subclasses set :attr:`name` and implement :meth:`units` and
    :meth:`learners`. Calling the method reconstructs a model in place.

    Args:
        iters (int): Optimisation steps per unit.
        images (int): Reconstruction images: the first ``images`` rows of
            the calibration batches (fewer when the batches hold fewer).
        batch_size (int): Images per optimisation step, drawn without
            replacement from the reconstruction images at every step.
        lr (float): Adam learning rate of the rounding variables.
        reg_weight (float): Weight :math:`\\lambda` of the rounding
            regularizer.
        beta_start (float): Regularizer exponent :math:`\\beta` after the
            warm-up.
        beta_end (float): :math:`\\beta` at the last step (linear decay).
        warmup (float): Fraction of ``iters`` without the regularizer.
        seed (int): Seed of the image draws (and of QDrop's drops).
    """
    iters: int = 400
    images: int = 256
    batch_size: int = 32
    lr: float = 1e-2
    reg_weight: float = 0.01
    beta_start: float = 20.
    beta_end: float = 2.
    warmup: float = 0.2
    seed: int = 0

    name: ClassVar[str] = ''

    def __post_init__(self) -> None:
        for key in ('iters', 'images', 'batch_size'):
            _check_positive(key, getattr(self, key), int)
        for key in ('lr', 'reg_weight', 'beta_start', 'beta_end'):
            _check_positive(key, getattr(self, key), float)
        if self.beta_end > self.beta_start:
            raise ValueError(f'beta_end ({self.beta_end}) must not exceed '
                             f'beta_start ({self.beta_start}): the exponent '
                             'decays.')
        _check_unit_interval('warmup', self.warmup, high_open=True)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f'seed must be an int, got {self.seed!r}.')

    def units(self, model: nn.Module) -> List[Tuple[str, nn.Module]]:
        """The modules reconstructed one by one (any order)."""
        raise NotImplementedError

    def learners(self, unit: nn.Module) -> List[Learner]:
        """Attach learners to the quantizers of ``unit`` (inactive)."""
        raise NotImplementedError

    def start(self, model: nn.Module) -> None:
        """Called once before the first unit (e.g. to seed generators)."""

    def __call__(self, model: nn.Module, batches: Sequence[Any],
                 forward: Optional[Forward] = None) -> PTQReport:
        """Reconstruct ``model`` in place and bake the result.

        Args:
            model (nn.Module): A model holding quantized layers whose
                active activation ranges are calibrated (frozen), e.g. by
                ``ssql_mm.quantization.calibrate``.
            batches (Sequence): Unlabeled calibration batches; each is
                passed to ``forward``. Iterated several times, so pass a
                list (``calibrate(..., ptq=...)`` does).
            forward (Callable, optional): ``forward(model, batch)``.
                Defaults to ``model(batch)``.

        Returns:
            PTQReport: Losses per unit and the wall time.
        """
        forward = forward or (lambda m, batch: m(batch))
        batches = list(batches)
        self._check(model, batches)
        logger = MMLogger.get_current_instance()
        start = time.perf_counter()
        report = PTQReport(self.name, 0, 0.)
        learners: List[Learner] = []
        with _prepared(model):
            self.start(model)
            units = self._ordered_units(model, batches[0], forward)
            logger.info(f'{self.name}: {len(units)} units, {self.iters} '
                        f'iterations of {self.batch_size} images each.')
            generator = torch.Generator().manual_seed(self.seed)
            try:
                for index, (name, unit) in enumerate(units):
                    tic = time.perf_counter()
                    inputs = self._capture(model, unit, batches, forward,
                                           learners, output=False)
                    target = self._capture(model, unit, batches, forward,
                                           learners, output=True)[0]
                    report.images = _rows(inputs)
                    new = self.learners(unit)
                    learners += new
                    self._set_pass(model, learners, quantized=True)
                    result = self._optimize(name, unit, new, inputs, target,
                                            generator)
                    report.units.append(result)
                    logger.info(
                        f'{self.name}: unit {index + 1}/{len(units)} {name}: '
                        f'loss {result.loss_nearest:.4g} (nearest) -> '
                        f'{result.loss_learned:.4g} '
                        f'({time.perf_counter() - tic:.1f} s)')
                for learner in learners:
                    learner.bake()
            finally:
                for learner in learners:
                    learner.detach()
        report.seconds = time.perf_counter() - start
        logger.info(f'{self.name}: reconstructed {len(units)} units on '
                    f'{report.images} images in {report.seconds:.1f} s.')
        return report

    def _check(self, model: nn.Module, batches: List[Any]) -> None:
        if not any(True for _ in quant_layers(model)):
            raise ValueError(f'{self.name} found no quantized layer in the '
                             'model; convert it first (quantize_model or '
                             'QuantResNet).')
        if not batches:
            raise ValueError(f'{self.name} received no batch: pass the '
                             'calibration batches.')
        unmeasured = [
            q for q in fake_quantizers(model)
            if isinstance(q, ActivationFakeQuantize) and q.bits is not None
            and not q.frozen
        ]
        if unmeasured:
            raise RuntimeError(
                f'{self.name} starts from calibrated activation ranges: run '
                'ssql_mm.quantization.calibrate first, or calibrate(..., '
                f"ptq='{self.name}').")

    def _ordered_units(self, model: nn.Module, batch: Any,
                       forward: Forward) -> List[Tuple[str, nn.Module]]:
        """The units in the order a forward pass first calls them."""
        units = self.units(model)
        order: Dict[int, int] = {}

        def record(index: int) -> Callable:

            def hook(module: nn.Module, args: Tuple) -> None:
                order.setdefault(index, len(order))

            return hook

        handles = [
            unit.register_forward_pre_hook(record(i))
            for i, (_, unit) in enumerate(units)
        ]
        try:
            set_quant_mode(model, QuantMode.FLOAT)
            with torch.no_grad():
                forward(model, batch)
        finally:
            for handle in handles:
                handle.remove()
        unused = [name for i, (name, _) in enumerate(units) if i not in order]
        if unused:
            MMLogger.get_current_instance().warning(
                f'{self.name}: skipping units the forward never calls: '
                f'{unused}.')
        if not order:
            raise ValueError(f'{self.name} found nothing to reconstruct: no '
                             'quantized layer with active quantizers runs '
                             'in the forward pass; set the bits first.')
        return [units[i] for i in sorted(order, key=order.get)]

    @staticmethod
    def _set_pass(model: nn.Module, learners: List[Learner],
                  quantized: bool) -> None:
        set_quant_mode(model,
                       QuantMode.QUANTIZE if quantized else QuantMode.FLOAT)
        for learner in learners:
            learner.quantizer.set_mode(QuantMode.FLOAT)
            learner.active = quantized

    def _capture(self, model: nn.Module, unit: nn.Module, batches: List[Any],
                 forward: Forward, learners: List[Learner],
                 output: bool) -> List[Tensor]:
        """Inputs of ``unit`` in the quantized model, or its outputs in the
        float model, over the first :attr:`images` rows of ``batches``."""
        store: List[Tuple[Tensor, ...]] = []

        def keep(values) -> None:
            values = tuple(values)
            if not all(isinstance(v, Tensor) for v in values) or not values:
                raise TypeError(
                    f'{self.name} reconstructs units that take and return '
                    f'tensors; {type(unit).__name__} got '
                    f'{[type(v).__name__ for v in values]}.')
            store.append(tuple(v.detach() for v in values))
            raise _Stop

        if output:
            handle = unit.register_forward_hook(lambda m, a, out: keep((out, )))
        else:
            handle = unit.register_forward_pre_hook(lambda m, a: keep(a))
        self._set_pass(model, learners, quantized=not output)
        rows = 0
        try:
            with torch.no_grad():
                for batch in batches:
                    if rows >= self.images:
                        break
                    try:
                        forward(model, batch)
                    except _Stop:
                        rows += _rows(store[-1])
        finally:
            handle.remove()
        return [torch.cat(v)[:self.images] for v in zip(*store)]

    def _optimize(self, name: str, unit: nn.Module, learners: List[Learner],
                  inputs: List[Tensor], target: Tensor,
                  generator: torch.Generator) -> UnitResult:
        before = self._loss(unit, inputs, target)
        groups = [g for learner in learners for g in learner.param_groups()]
        if groups:
            optimizer = torch.optim.Adam(
                [{k: v for k, v in g.items() if k != 'cosine'} for g in groups])
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, [
                self._cosine if g.get('cosine') else _constant for g in groups
            ])
            for learner in learners:
                learner.training = True
            with torch.enable_grad():
                for step in range(self.iters):
                    idx = torch.randperm(
                        len(target), generator=generator)[:self.batch_size]
                    idx = idx.to(target.device)
                    out = unit(*(x[idx] for x in inputs))
                    loss = _reconstruction_loss(out, target[idx])
                    for learner in learners:
                        penalty = learner.penalty(step)
                        if penalty is not None:
                            loss = loss + penalty
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
            for learner in learners:
                learner.training = False
        after = self._loss(unit, inputs, target)
        return UnitResult(name, before, after)

    def _cosine(self, step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * step / self.iters))

    @torch.no_grad()
    def _loss(self, unit: nn.Module, inputs: List[Tensor],
              target: Tensor) -> float:
        total = 0.
        for start in range(0, len(target), self.batch_size):
            rows = slice(start, start + self.batch_size)
            out = unit(*(x[rows] for x in inputs))
            total += float(_reconstruction_loss(out, target[rows])) * len(
                target[rows])
        return total / len(target)


def _constant(step: int) -> float:
    return 1.


def _reconstruction_loss(out: Tensor, target: Tensor) -> Tensor:
    """Squared error summed over channels (dim 1), averaged over the rest."""
    if not isinstance(out, Tensor) or out.shape != target.shape:
        raise TypeError('A reconstructed unit must return one tensor of the '
                        'shape its float twin returns.')
    err = (out - target).pow(2)
    return err.sum(1).mean() if err.dim() > 1 else err.mean()


class _prepared:
    """Eval mode, no parameter gradients, quantizer modes restored on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        model = self.model
        self.training = model.training
        self.grads = [(p, p.requires_grad) for p in model.parameters()]
        self.modes = [(q, q.mode) for q in fake_quantizers(model)]
        model.eval()
        for p, _ in self.grads:
            p.requires_grad_(False)

    def __exit__(self, *exc) -> None:
        self.model.train(self.training)
        for p, flag in self.grads:
            p.requires_grad_(flag)
        for q, mode in self.modes:
            q.set_mode(mode)
