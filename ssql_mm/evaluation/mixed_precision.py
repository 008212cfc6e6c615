"""Mixed precision from one checkpoint: a budget in, per-layer bits out.

The checkpoint's backbone is built with every quantizer that is not pinned
at the widest candidate bits and calibrated on a few images; each
quantizer's feature drift at every candidate bit-width is measured or
estimated (``ssql_mm.quantization.sensitivity``); an integer linear program
picks the bits that drift least under the budget
(``ssql_mm.quantization.bit_allocation``). The result is a per-layer
:class:`~ssql_mm.models.bit_setting.BitSetting` that every tool takes as
``mixed:FILE``. No weight changes: SSQL's one set of weights serves every
setting.
"""
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MMLogger

from ssql_mm.datasets import normalized_batches
from ssql_mm.models.backbones import check_placement
from ssql_mm.models.bit_setting import (BitSetting, LayerBits,
                                        parse_bit_setting, quantizer_names)
from ssql_mm.models.pretrained import (CalibrationOptions, PretrainedBackbone,
                                       load_pretrained, pooled_features)
from ssql_mm.quantization import check_bits, set_bits
from ssql_mm.quantization.bit_allocation import (Allocation, BitProblem,
                                                 Budget, allocate_bits,
                                                 check_budgets, format_cost,
                                                 parse_budget,
                                                 parse_constraint)
from ssql_mm.quantization.bit_cost import (BUDGET_KINDS, LayerCost,
                                           layer_costs, model_bits,
                                           model_cost)
from ssql_mm.quantization.sensitivity import (SENSITIVITY_METHODS,
                                              Sensitivity,
                                              hessian_sensitivity,
                                              measured_sensitivity,
                                              search_space)

__all__ = [
    'SearchOptions', 'SearchResult', 'search_bits', 'search_bits_per_budget',
    'format_search',
    'describe_quantizers', 'REFERENCE_SETTINGS'
]

# Uniform settings whose costs are printed next to the search's.
REFERENCE_SETTINGS = ('8/8', '4/4', '3/3', '2/4')


@dataclass
class SearchOptions:
    """Options of a search.

    Args:
        method (str): ``'hessian'`` (HAWQ-v2) or ``'measured'``. Defaults
            to 'hessian'.
        w_candidates (tuple[int]): Weight bits to choose from. Defaults to
            (2, 3, 4, 8).
        a_candidates (tuple[int]): Activation bits to choose from.
            Defaults to (4, 6, 8).
        constraints (Sequence[str]): ``'PATTERN:w=4,8'`` / ``'PATTERN:a=8'``
            restrictions. Defaults to ().
        placement (str, optional): Quantizer placement. Defaults to None
            (the checkpoint's).
        batch_size (int): Images per batch. Defaults to 32.
        num_samples (int): Hutchinson samples per quantizer and batch
            (``hessian``). Defaults to 16.
        seed (int): Seed of the Rademacher vectors. Defaults to 0.
        time_limit (float, optional): Solver time limit in seconds.
            Defaults to None.
        device (str, optional): Torch device. Defaults to None (cuda when
            available, else cpu).
    """
    method: str = 'hessian'
    w_candidates: Tuple[int, ...] = (2, 3, 4, 8)
    a_candidates: Tuple[int, ...] = (4, 6, 8)
    constraints: Sequence[str] = ()
    placement: Optional[str] = None
    batch_size: int = 32
    num_samples: int = 16
    seed: int = 0
    time_limit: Optional[float] = None
    device: Optional[str] = None


@dataclass
class SearchResult:
    """What a search found.

    Args:
        setting (BitSetting): The per-layer setting.
        allocation (Allocation): The chosen bits and their cost.
        sensitivity (Sensitivity): Drift per quantizer and bit-width.
        costs (dict[str, LayerCost]): Per-layer MACs, weights, feeders.
        budgets (list[Budget]): The budgets, resolved.
        references (dict): Uniform setting -> its costs.
        seconds (dict): ``sensitivity``, ``allocation``, ``total``.
        checkpoint (str): The checkpoint's name.
    """
    setting: BitSetting
    allocation: Allocation
    sensitivity: Sensitivity
    costs: Dict[str, LayerCost]
    budgets: List[Budget]
    references: Dict[str, Dict[str, float]] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)
    checkpoint: str = ''

    def info(self) -> dict:
        """Facts stored with the bits file (what made it)."""
        return dict(
            checkpoint=self.checkpoint, method=self.sensitivity.method,
            budgets=[b.text for b in self.budgets],
            cost={k: float(v) for k, v in self.allocation.cost.items()},
            drift=float(self.allocation.objective),
            seconds={k: round(v, 2) for k, v in self.seconds.items()})


def _candidates(values: Sequence[int], name: str) -> Tuple[int, ...]:
    if not values:
        raise ValueError(f'No {name} candidate given.')
    for value in values:
        if check_bits(value, f'{name} candidate') is None:
            raise ValueError(f'{name} candidates must be bit-widths, got 0; '
                             'pin float layers in a bits file instead.')
    return tuple(sorted(set(values)))


def _uniform_cost(model: torch.nn.Module, costs: Dict[str, LayerCost],
                  text: str, base: BitSetting) -> Dict[str, float]:
    setting = parse_bit_setting(text)
    if setting.is_mixed:
        raise ValueError(f'A budget reference must be uniform W/A, got '
                         f'{text!r}.')
    set_bits(model, setting.w_bits, setting.a_bits)
    try:
        return model_cost(model, costs)
    finally:
        set_bits(model, base.w_bits, base.a_bits)


def _sensitivity(model: torch.nn.Module, batches: List[torch.Tensor],
                 options: SearchOptions, w_cand: Tuple[int, ...],
                 a_cand: Tuple[int, ...]) -> Sensitivity:
    if options.method == 'hessian':
        return hessian_sensitivity(model, batches, w_cand, a_cand,
                                   pooled_features, options.num_samples,
                                   options.seed)
    return measured_sensitivity(model, batches, w_cand, a_cand,
                                pooled_features)


def _setting(model: torch.nn.Module, allocation: Allocation,
             base: BitSetting, placement: str) -> BitSetting:
    layers, acts = search_space(model)
    entries = []
    for name in quantizer_names(model):
        w = allocation.w_bits[name] if name in layers else None
        a = allocation.a_bits[name] if name in acts else None
        if w is not None or a is not None:
            entries.append(LayerBits(name, w, a))
    return BitSetting(base.w_bits, base.a_bits, tuple(entries), placement)


def search_bits(checkpoint: str,
                budgets: Sequence[str],
                calib_images: torch.Tensor,
                options: Optional[SearchOptions] = None,
                config: Optional[str] = None) -> SearchResult:
    """Search per-layer bits for ``checkpoint`` under ``budgets``.

    Args:
        checkpoint (str): A checkpoint ``load_pretrained`` reads.
        budgets (Sequence[str]): ``'bops=...'``, ``'size=...'``,
            ``'avg-bits=...'`` (see ``parse_budget``); all are met.
        calib_images (Tensor): uint8 ``(N, 3, H, W)`` images: calibration,
            sensitivities and the input size of the costs.
        options (SearchOptions, optional): Defaults to None (defaults).
        config (str, optional): Pretraining config. Defaults to None (the
            one stored in the checkpoint).

    Returns:
        SearchResult: The setting, its cost and the sensitivities.
    """
    return search_bits_per_budget(checkpoint, [budgets], calib_images,
                                  options, config)[0]


def search_bits_per_budget(checkpoint: str,
                           budget_sets: Sequence[Sequence[str]],
                           calib_images: torch.Tensor,
                           options: Optional[SearchOptions] = None,
                           config: Optional[str] = None
                           ) -> List[SearchResult]:
    """One search per set of budgets, on one measurement of the
    sensitivities (a Pareto front costs one sensitivity pass).

    Args:
        checkpoint (str): A checkpoint ``load_pretrained`` reads.
        budget_sets (Sequence[Sequence[str]]): For each search, the
            budgets it meets (as in :func:`search_bits`).
        calib_images (Tensor): As in :func:`search_bits`.
        options (SearchOptions, optional): Defaults to None (defaults).
        config (str, optional): Pretraining config. Defaults to None.

    Returns:
        list[SearchResult]: One per budget set, in order; their
        ``seconds['sensitivity']`` is the shared measurement's.
    """
    start = time.perf_counter()
    options = options or SearchOptions()
    if options.method not in SENSITIVITY_METHODS:
        raise ValueError(f'Unknown sensitivity method {options.method!r}; '
                         f"use one of {', '.join(SENSITIVITY_METHODS)}.")
    parsed_sets = [[parse_budget(text) for text in budgets]
                   for budgets in budget_sets]
    if not parsed_sets or not all(parsed_sets):
        raise ValueError('No budget given; pass e.g. --budget bops=3/3.')
    constraints = [parse_constraint(text) for text in options.constraints]
    w_cand = _candidates(options.w_candidates, 'weight')
    a_cand = _candidates(options.a_candidates, 'activation')
    if len(calib_images) == 0:
        raise ValueError('No calibration image given.')
    pretrained = load_pretrained(checkpoint, config)
    placement = check_placement(options.placement or pretrained.placement)
    device = torch.device(options.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    base = BitSetting(max(w_cand), max(a_cand))
    calibration = CalibrationOptions(
        math.ceil(len(calib_images) / options.batch_size), options.batch_size,
        options.seed)
    model = pretrained.at_setting(base, calib_images, calibration, placement,
                                  device)
    batches = list(normalized_batches(calib_images, pretrained.mean,
                                      pretrained.std, options.batch_size,
                                      device))
    costs = layer_costs(model, batches[0])
    uniform = [b.uniform for parsed in parsed_sets for b in parsed
               if b.uniform]
    references = {text: _uniform_cost(model, costs, text, base)
                  for text in dict.fromkeys(list(REFERENCE_SETTINGS) +
                                            uniform)}
    w_bits, a_bits = model_bits(model)
    layers, acts = search_space(model)
    pinned_w = {n: b for n, b in w_bits.items() if n not in layers}
    pinned_a = {n: b for n, b in a_bits.items() if n not in acts}
    unmeasured = BitProblem(costs,
                            {n: dict.fromkeys(w_cand, 0.) for n in layers},
                            {n: dict.fromkeys(a_cand, 0.) for n in acts},
                            pinned_w, pinned_a)
    for parsed in parsed_sets:
        for budget in parsed:
            if budget.uniform:
                budget.value = references[budget.uniform][budget.kind]
        # before the sensitivities are paid for
        check_budgets(unmeasured, parsed, constraints)
    logger = MMLogger.get_current_instance()
    logger.info(f'mixed precision: {pretrained.name}, {options.method} '
                f'sensitivity on {len(calib_images)} images')
    sensitivity = _sensitivity(model, batches, options, w_cand, a_cand)
    problem = BitProblem(costs, sensitivity.weights, sensitivity.activations,
                         pinned_w, pinned_a)
    prepared = time.perf_counter() - start
    results = []
    for parsed in parsed_sets:
        allocation = allocate_bits(problem, parsed, constraints,
                                   options.time_limit)
        setting = _setting(model, allocation, base, placement)
        _check_reproduces(pretrained, setting, placement, batches[0],
                          allocation)
        results.append(SearchResult(
            setting, allocation, sensitivity, costs, parsed, references,
            dict(sensitivity=sensitivity.seconds,
                 allocation=allocation.seconds,
                 total=prepared + allocation.seconds), pretrained.name))
    return results


def _check_reproduces(pretrained: PretrainedBackbone, setting: BitSetting,
                      placement: str, example: torch.Tensor,
                      allocation: Allocation) -> None:
    """The written setting must build the model whose cost was optimised."""
    model = pretrained.build(setting, placement).to(example.device)
    cost = model_cost(model, layer_costs(model, example))
    for kind in BUDGET_KINDS:
        if not math.isclose(cost[kind], allocation.cost[kind], rel_tol=1e-9):
            raise RuntimeError(
                f'The per-layer setting builds a model with {kind} '
                f'{cost[kind]} instead of the allocated '
                f'{allocation.cost[kind]}; please report this.')


def _bits(value: Optional[int]) -> str:
    return 'fp' if value is None else str(value)


def format_search(result: SearchResult) -> str:
    """The per-layer table, the budgets used vs allowed and the time.

    Args:
        result (SearchResult): A search's result.

    Returns:
        str: Plain text.
    """
    alloc, sens = result.allocation, result.sensitivity
    rows = [('quantizer', 'MACs', 'weights', 'w', 'a (reads)', 'drift')]
    for name, cost in result.costs.items():
        feeder = cost.feeder
        a = 'fp' if feeder is None else _bits(alloc.a_bits.get(feeder))
        reads = '' if feeder in (None, name) else f' ({feeder})'
        drift = sens.weights.get(name, {}).get(alloc.w_bits[name], 0.) + \
            sens.activations.get(name, {}).get(alloc.a_bits.get(name), 0.)
        pinned = '' if name in sens.weights else '*'
        rows.append((name, format_cost('bops', cost.macs),
                     format_cost('bops', cost.params),
                     _bits(alloc.w_bits[name]) + pinned, a + reads,
                     f'{drift:.3g}'))
    for name, drifts in sens.activations.items():
        if name not in result.costs:
            rows.append((name, '', '', '', _bits(alloc.a_bits[name]),
                         f'{drifts[alloc.a_bits[name]]:.3g}'))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ['  '.join(cell.ljust(w) for cell, w in zip(row, widths))
             for row in rows]
    lines.append('(* pinned by the placement; drift: feature drift of the '
                 'quantizer alone at its bits)')
    for budget in result.budgets:
        used = alloc.cost[budget.kind]
        lines.append(
            f'budget {budget.text}: used {format_cost(budget.kind, used)} '
            f'of {format_cost(budget.kind, budget.value)} allowed '
            f'({100 * used / budget.value:.1f} %)')
    lines.append('cost: ' + ', '.join(
        f'{kind}={format_cost(kind, alloc.cost[kind])}'
        for kind in BUDGET_KINDS) + f'; summed drift {alloc.objective:.4g}')
    for text, cost in result.references.items():
        lines.append(f'uniform {text}: ' + ', '.join(
            f'{kind}={format_cost(kind, cost[kind])}'
            for kind in BUDGET_KINDS))
    seconds = result.seconds
    lines.append(f"time: sensitivity ({sens.method}) "
                 f"{seconds['sensitivity']:.1f} s, allocation "
                 f"{seconds['allocation']:.1f} s, total "
                 f"{seconds['total']:.1f} s")
    return '\n'.join(lines)


def describe_quantizers(checkpoint: str,
                        placement: Optional[str] = None,
                        config: Optional[str] = None) -> str:
    """The names a bits file may use for ``checkpoint``'s backbone, with
    what the placement pins.

    Args:
        checkpoint (str): A checkpoint ``load_pretrained`` reads.
        placement (str, optional): Defaults to None (the checkpoint's).
        config (str, optional): Pretraining config. Defaults to None.

    Returns:
        str: One line per name.
    """
    pretrained = load_pretrained(checkpoint, config)
    placement = check_placement(placement or pretrained.placement)
    model = pretrained.build(BitSetting(8, 8), placement)
    layers, acts = search_space(model)
    w_bits, a_bits = model_bits(model)
    lines = [f'# {pretrained.name}, placement {placement}: name, kind, '
             'weight / activation bits (pinned values shown, free = follows '
             'the setting)']
    for name, kind in quantizer_names(model).items():
        w = '' if kind != 'layer' else (
            'w=free' if name in layers else f'w={_bits(w_bits[name])}')
        a = 'a=free' if name in acts else f'a={_bits(a_bits[name])}'
        lines.append(f'{name}  {kind}  {w}  {a}'.replace('    ', '  '))
    return '\n'.join(lines)
