r"""Per-layer bit-widths under a budget: an integer linear program.

Given, for every quantizer that is not pinned, its feature drift at each
candidate bit-width (:mod:`.sensitivity`), choose one bit-width per
quantizer to minimise the summed drift subject to budgets on the cost
(:mod:`.bit_cost`): bit operations, model size or average weight bits.
Pinned quantizers keep their bits and count in the cost.

Variables (all binary): :math:`z_{i,w}` (layer ``i``'s weight at ``w``
bits), :math:`y_{j,a}` (activation quantizer ``j`` at ``a`` bits), one
choice each. A layer whose weight and feeder both vary costs
:math:`\mathrm{MACs}_i\, w\, a` in bit operations, a product of two choices;
it is linearised with :math:`x_{i,w,a}` and
:math:`\sum_a x_{i,w,a} = z_{i,w}`, :math:`\sum_w x_{i,w,a} = y_{j,a}`
(HAWQ-v3, https://arxiv.org/abs/2011.10680, solves the same program with
one variable per layer). The solver is CBC, shipped in the ``pulp`` wheel.
"""
import fnmatch
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import pulp

from .bit_cost import (BUDGET_KINDS, FLOAT_COST_BITS, LayerCost,
                       assignment_cost)

__all__ = [
    'Budget', 'BitConstraint', 'BitProblem', 'Allocation', 'parse_budget',
    'parse_constraint', 'check_budgets', 'allocate_bits', 'format_cost'
]

_SUFFIXES = {'': 1., 'k': 1e3, 'm': 1e6, 'g': 1e9, 't': 1e12}
_NUMBER = re.compile(r'^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]?)\s*$',
                     re.IGNORECASE)
_UNIFORM = re.compile(r'^\s*\d+\s*/\s*\d+\s*$')
# Relative slack for float rounding when a budget is met exactly.
_TOLERANCE = 1e-9


@dataclass
class Budget:
    """An upper bound on one cost.

    Args:
        kind (str): ``'bops'``, ``'size'`` (bytes) or ``'avg-bits'``.
        value (float, optional): The bound; None until a ``uniform``
            reference is resolved.
        uniform (str, optional): ``'W/A'``: the bound is that uniform
            setting's cost. Defaults to None.
        written (str, optional): How the value was written; not part of
            equality. Defaults to None.
    """
    kind: str
    value: Optional[float]
    uniform: Optional[str] = None
    written: Optional[str] = field(default=None, compare=False)

    @property
    def text(self) -> str:
        """How the budget was written (``'bops=3/3'``, ``'size=1.2M'``)."""
        shown = self.uniform or self.written or format_cost(
            self.kind, self.value)
        return f'{self.kind}={shown}'


def format_cost(kind: str, value: Optional[float]) -> str:
    """A cost for people: ``'1.23G'`` BOPs, ``'312.5k'`` bytes, ``'3.50'``
    bits."""
    if value is None:
        return '?'
    if kind == 'avg-bits':
        return f'{value:.2f}'
    for suffix, scale in (('T', 1e12), ('G', 1e9), ('M', 1e6), ('k', 1e3)):
        if abs(value) >= scale:
            return f'{value / scale:.4g}{suffix}'
    return f'{value:.4g}'


def parse_budget(text: str) -> Budget:
    """Parse ``'bops=VALUE'``, ``'size=VALUE'`` or ``'avg-bits=VALUE'``.

    ``VALUE`` is a number with an optional ``k``/``M``/``G``/``T`` suffix
    (``size`` in bytes), or ``W/A``: the cost of that uniform setting.

    Args:
        text (str): The budget.

    Returns:
        Budget: The parsed budget.
    """
    kind, sep, value = str(text).partition('=')
    kind = kind.strip().lower()
    hint = (f"Write a budget as KIND=VALUE with KIND in "
            f"{', '.join(BUDGET_KINDS)} and VALUE a number (k/M/G suffixes; "
            "size in bytes) or W/A for the cost of that uniform setting, e.g. "
            'bops=3/3, size=2.5M, avg-bits=3.')
    if not sep or kind not in BUDGET_KINDS:
        raise ValueError(f'Unknown budget {text!r}. {hint}')
    if _UNIFORM.match(value):
        return Budget(kind, None, value.replace(' ', ''))
    match = _NUMBER.match(value)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f'Bad budget value in {text!r}. {hint}')
    number = float(match.group(1)) * _SUFFIXES[match.group(2).lower()]
    return Budget(kind, number, written=value.strip())


@dataclass(frozen=True)
class BitConstraint:
    """Restrict the candidate bits of the quantizers matching a pattern.

    Args:
        pattern (str): ``fnmatch`` pattern over quantizer names.
        side (str): ``'w'`` (weights) or ``'a'`` (activations).
        bits (tuple[int]): The allowed bit-widths.
    """
    pattern: str
    side: str
    bits: Tuple[int, ...]


def parse_constraint(text: str) -> BitConstraint:
    """Parse ``'PATTERN:w=4,8'`` or ``'PATTERN:a=8'``.

    Args:
        text (str): The constraint.

    Returns:
        BitConstraint: The parsed constraint.
    """
    pattern, sep, rest = str(text).rpartition(':')
    side, eq, values = rest.partition('=')
    hint = ("Write a constraint as PATTERN:w=BITS or PATTERN:a=BITS with "
            "comma-separated bits, e.g. 'layer4.*:w=4,8' or 'conv1:a=8'.")
    try:
        bits = tuple(int(v) for v in values.split(','))
    except ValueError:
        bits = ()
    if not (sep and pattern and eq and side.strip() in ('w', 'a') and bits):
        raise ValueError(f'Unknown constraint {text!r}. {hint}')
    return BitConstraint(pattern.strip(), side.strip(), bits)


@dataclass
class BitProblem:
    """What the program chooses from.

    Args:
        costs (dict[str, LayerCost]): Every quantized layer's cost.
        w_sensitivity (dict): Layer -> bits -> drift, for the layers whose
            weight bits are chosen; the keys are the candidates.
        a_sensitivity (dict): Activation quantizer -> bits -> drift, for
            the quantizers whose bits are chosen.
        pinned_w (dict): Weight bits (None = float) of the other layers.
        pinned_a (dict): Bits (None = float) of the other activation
            quantizers that feed a layer.
    """
    costs: Dict[str, LayerCost]
    w_sensitivity: Dict[str, Dict[int, float]]
    a_sensitivity: Dict[str, Dict[int, float]]
    pinned_w: Dict[str, Optional[int]] = field(default_factory=dict)
    pinned_a: Dict[str, Optional[int]] = field(default_factory=dict)


@dataclass
class Allocation:
    """The chosen bits.

    Args:
        w_bits (dict): Weight bits of every layer (pinned included).
        a_bits (dict): Bits of every activation quantizer the problem
            names (pinned included).
        cost (dict): ``{'bops', 'size', 'avg-bits'}`` of the choice.
        objective (float): The summed drift of the chosen bits.
        seconds (float): Time the solver took.
    """
    w_bits: Dict[str, Optional[int]]
    a_bits: Dict[str, Optional[int]]
    cost: Dict[str, float]
    objective: float
    seconds: float


def _candidates(sensitivity: Dict[str, Dict[int, float]], side: str,
                constraints: Sequence[BitConstraint]) -> Dict[str, List[int]]:
    allowed = {name: sorted(bits) for name, bits in sensitivity.items()}
    for rule in constraints:
        if rule.side != side:
            continue
        matched = fnmatch.filter(allowed, rule.pattern)
        if not matched:
            raise ValueError(
                f"Constraint '{rule.pattern}:{side}=...' matches no "
                f"quantizer whose {'weight' if side == 'w' else 'activation'}"
                f' bits are searched (e.g. {list(allowed)[:4]}); fix the '
                'pattern (pinned layers are not searched).')
        for name in matched:
            kept = [b for b in allowed[name] if b in rule.bits]
            if not kept:
                raise ValueError(
                    f"Constraint '{rule.pattern}:{side}="
                    f"{','.join(map(str, rule.bits))}' leaves '{name}' no "
                    f'candidate (searched: {sorted(sensitivity[name])}); add '
                    'the bits to the candidates (--w-bits / --a-bits).')
            allowed[name] = kept
    return allowed


def _unit_cost(bits: Optional[int]) -> int:
    return FLOAT_COST_BITS if bits is None else bits


def _fix_candidates(problem: BitProblem, w_cand: Dict[str, List[int]],
                    a_cand: Dict[str, List[int]], pick) -> Tuple[dict, dict]:
    w_bits = dict(problem.pinned_w)
    w_bits.update((name, pick(c)) for name, c in w_cand.items())
    a_bits = dict(problem.pinned_a)
    a_bits.update((name, pick(c)) for name, c in a_cand.items())
    return w_bits, a_bits


def _check_problem(problem: BitProblem) -> None:
    for name, cost in problem.costs.items():
        if name not in problem.w_sensitivity and name not in problem.pinned_w:
            raise ValueError(f"Layer '{name}' has neither candidates nor "
                             'pinned weight bits.')
        feeder = cost.feeder
        if feeder is not None and feeder not in problem.a_sensitivity and \
                feeder not in problem.pinned_a:
            raise ValueError(f"Activation quantizer '{feeder}' feeding "
                             f"'{name}' has neither candidates nor pinned "
                             'bits.')


def check_budgets(problem: BitProblem, budgets: Sequence[Budget],
                  constraints: Sequence[BitConstraint] = ()
                  ) -> Tuple[Dict[str, List[int]], Dict[str, List[int]]]:
    """Check that every budget admits a solution: the cheapest assignment
    (every chosen quantizer at its fewest allowed bits) must meet it.

    Args:
        problem (BitProblem): Costs, candidates (the sensitivities' keys;
            their values are not read), pinned bits.
        budgets (Sequence[Budget]): Upper bounds (values resolved).
        constraints (Sequence[BitConstraint]): Candidate restrictions.
            Defaults to ().

    Returns:
        tuple[dict, dict]: The allowed weight and activation candidates.
    """
    _check_problem(problem)
    w_cand = _candidates(problem.w_sensitivity, 'w', constraints)
    a_cand = _candidates(problem.a_sensitivity, 'a', constraints)
    cheapest = assignment_cost(problem.costs,
                               *_fix_candidates(problem, w_cand, a_cand, min))
    for budget in budgets:
        if budget.value is None:
            raise ValueError(f'Budget {budget.text} is not resolved to a '
                             'number.')
        if cheapest[budget.kind] > budget.value * (1 + _TOLERANCE):
            low = format_cost(budget.kind, cheapest[budget.kind])
            raise ValueError(
                f'Budget {budget.text} is below the cheapest assignment the '
                f'candidates allow ({budget.kind}={low}: every searched '
                'quantizer at its fewest bits, pinned layers as pinned); '
                f'raise it to at least {low} or allow fewer bits '
                '(--w-bits / --a-bits / --allow).')
    return w_cand, a_cand


def allocate_bits(problem: BitProblem,
                  budgets: Sequence[Budget],
                  constraints: Sequence[BitConstraint] = (),
                  time_limit: Optional[float] = None) -> Allocation:
    """Minimise the summed drift under every budget.

    Args:
        problem (BitProblem): Costs, sensitivities, pinned bits.
        budgets (Sequence[Budget]): Upper bounds (values resolved).
        constraints (Sequence[BitConstraint]): Candidate restrictions.
            Defaults to ().
        time_limit (float, optional): Solver time limit in seconds.
            Defaults to None.

    Returns:
        Allocation: The optimal bits.
    """
    start = time.perf_counter()
    w_cand, a_cand = check_budgets(problem, budgets, constraints)
    prob = pulp.LpProblem('bits', pulp.LpMinimize)
    z = {(i, w): prob.add_variable(f'z_{k}_{w}', cat='Binary')
         for k, i in enumerate(w_cand) for w in w_cand[i]}
    y = {(j, a): prob.add_variable(f'y_{k}_{a}', cat='Binary')
         for k, j in enumerate(a_cand) for a in a_cand[j]}
    for i in w_cand:
        prob += pulp.lpSum(z[i, w] for w in w_cand[i]) == 1
    for j in a_cand:
        prob += pulp.lpSum(y[j, a] for a in a_cand[j]) == 1

    scale = max([abs(v) for s in (problem.w_sensitivity,
                                  problem.a_sensitivity)
                 for d in s.values() for v in d.values()] + [1e-30])
    prob += (pulp.lpSum(problem.w_sensitivity[i][w] / scale * z[i, w]
                        for i, w in z) +
             pulp.lpSum(problem.a_sensitivity[j][a] / scale * y[j, a]
                        for j, a in y))

    terms = _cost_terms(problem, w_cand, a_cand, z, y, prob,
                        any(b.kind == 'bops' for b in budgets))
    for budget in budgets:  # normalised: coefficients near 1 for CBC
        prob += terms[budget.kind] * (1. / budget.value) <= 1 + _TOLERANCE

    status = prob.solve(_cbc(time_limit))
    if pulp.LpStatus[status] != 'Optimal':
        raise ValueError(f'The bit allocation found no solution '
                         f'({pulp.LpStatus[status]}); relax the budget or '
                         'the constraints.')
    w_bits = dict(problem.pinned_w)
    w_bits.update((i, w) for (i, w), var in z.items() if var.value() > 0.5)
    a_bits = dict(problem.pinned_a)
    a_bits.update((j, a) for (j, a), var in y.items() if var.value() > 0.5)
    objective = sum(problem.w_sensitivity[i][w_bits[i]] for i in w_cand) + \
        sum(problem.a_sensitivity[j][a_bits[j]] for j in a_cand)
    return Allocation(w_bits, a_bits,
                      assignment_cost(problem.costs, w_bits, a_bits),
                      objective, time.perf_counter() - start)


def _cbc(time_limit: Optional[float]) -> pulp.LpSolver:
    """The CBC solver shipped in the pulp wheel (pinned in
    requirements/runtime.txt)."""
    with warnings.catch_warnings():
        # pulp 3.3 ships CBC only behind PULP_CBC_CMD, which it announces
        # will move to an extra in pulp 4.
        warnings.filterwarnings('ignore', 'PULP_CBC_CMD is deprecated',
                                DeprecationWarning)
        return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, threads=1)


def _cost_terms(problem: BitProblem, w_cand, a_cand, z, y, prob,
                with_bops: bool) -> Dict[str, Union[pulp.LpAffineExpression,
                                                    float]]:
    """Linear expressions of BOPs, size (bytes) and average bits (adds the
    linearisation constraints to ``prob`` when BOPs are bounded)."""
    bops: List = []
    size_bits: List = []
    total_params = sum(c.params for c in problem.costs.values()) or 1
    for k, (i, cost) in enumerate(problem.costs.items()):
        if i in w_cand:
            w_terms = [(w, z[i, w]) for w in w_cand[i]]
        else:
            w_terms = [(_unit_cost(problem.pinned_w[i]), 1)]
        size_bits += [cost.params * w * var for w, var in w_terms]
        if not with_bops:
            continue
        j = cost.feeder
        if j in a_cand and i in w_cand:
            x = {(w, a): prob.add_variable(f'x_{k}_{w}_{a}', cat='Binary')
                 for w in w_cand[i] for a in a_cand[j]}
            for w in w_cand[i]:
                prob += pulp.lpSum(x[w, a] for a in a_cand[j]) == z[i, w]
            for a in a_cand[j]:
                prob += pulp.lpSum(x[w, a] for w in w_cand[i]) == y[j, a]
            bops += [cost.macs * w * a * var for (w, a), var in x.items()]
        elif j in a_cand:
            bops += [cost.macs * w * a * y[j, a] for w, _ in w_terms
                     for a in a_cand[j]]
        else:
            a = FLOAT_COST_BITS if j is None else _unit_cost(
                problem.pinned_a[j])
            bops += [cost.macs * w * a * var for w, var in w_terms]
    size = pulp.lpSum(size_bits)
    return {'bops': pulp.lpSum(bops), 'size': size / 8.,
            'avg-bits': size / total_params}
