"""The bit allocation: an integer linear program under budgets."""
import itertools
import random

import pytest

from ssql_mm.quantization.bit_allocation import (BitConstraint, BitProblem,
                                                 Budget, allocate_bits,
                                                 parse_budget,
                                                 parse_constraint)
from ssql_mm.quantization.bit_cost import LayerCost, assignment_cost


def toy(sens_a, sens_b):
    """Two layers of 100 weights each, reading float inputs."""
    costs = {'a': LayerCost('a', 1000, 100, None),
             'b': LayerCost('b', 1000, 100, None)}
    return BitProblem(costs, {'a': sens_a, 'b': sens_b}, {})


def test_meets_the_budget_exactly_and_lowers_the_insensitive_layer():
    sensitive = {2: 10., 4: 1., 8: 0.}
    robust = {2: 1., 4: 0.1, 8: 0.}
    # 8 + 4 bits on 100 weights each: 150 bytes.
    budget = Budget('size', 150.)
    result = allocate_bits(toy(sensitive, robust), [budget])
    assert result.w_bits == {'a': 8, 'b': 4}
    assert result.cost['size'] == 150.
    assert result.objective == pytest.approx(0.1)
    # The sensitivities say which layer gives up bits.
    swapped = allocate_bits(toy(robust, sensitive), [budget])
    assert swapped.w_bits == {'a': 4, 'b': 8}
    # avg-bits = 6 is the same budget.
    assert allocate_bits(toy(sensitive, robust),
                         [Budget('avg-bits', 6.)]).w_bits == {'a': 8, 'b': 4}


def test_bops_couple_weight_and_feeder_bits_and_pinned_layers_stay():
    costs = {'stem': LayerCost('stem', 50, 10, None),
             'a': LayerCost('a', 100, 10, 'q'),
             'b': LayerCost('b', 300, 10, 'q')}
    problem = BitProblem(
        costs, {'a': {4: 1., 8: 0.}, 'b': {4: 0.5, 8: 0.}},
        {'q': {4: 0.2, 8: 0.}}, pinned_w={'stem': 8})
    budget = Budget('bops', 50 * 8 * 32 + 100 * 8 * 4 + 300 * 4 * 4)
    result = allocate_bits(problem, [budget])
    # Only q at 4 bits fits: then a can keep 8 bits, b must drop to 4.
    assert result.w_bits == {'stem': 8, 'a': 8, 'b': 4}
    assert result.a_bits == {'q': 4}
    assert result.cost['bops'] == budget.value


def brute_force(problem, budgets):
    units = [('w', n, sorted(s)) for n, s in problem.w_sensitivity.items()]
    units += [('a', n, sorted(s)) for n, s in problem.a_sensitivity.items()]
    best = None
    for choice in itertools.product(*(bits for _, _, bits in units)):
        w = dict(problem.pinned_w)
        a = dict(problem.pinned_a)
        drift = 0.
        for (side, name, _), bits in zip(units, choice):
            (w if side == 'w' else a)[name] = bits
            table = problem.w_sensitivity if side == 'w' else \
                problem.a_sensitivity
            drift += table[name][bits]
        cost = assignment_cost(problem.costs, w, a)
        if all(cost[b.kind] <= b.value for b in budgets) and (
                best is None or drift < best):
            best = drift
    return best


@pytest.mark.parametrize('seed', range(4))
def test_optimum_equals_brute_force_on_random_problems(seed):
    rng = random.Random(seed)
    costs = {f'l{i}': LayerCost(f'l{i}', rng.randint(10, 500),
                                rng.randint(5, 50), rng.choice(['q0', 'q1']))
             for i in range(4)}
    w_sens = {n: {b: rng.random() / b for b in (2, 4, 8)} for n in costs}
    a_sens = {q: {b: rng.random() / b for b in (4, 8)} for q in ('q0', 'q1')}
    problem = BitProblem(costs, w_sens, a_sens)
    low = assignment_cost(costs, dict.fromkeys(costs, 2),
                          dict.fromkeys(a_sens, 4))
    high = assignment_cost(costs, dict.fromkeys(costs, 8),
                           dict.fromkeys(a_sens, 8))
    budgets = [Budget(kind, low[kind] + rng.random() * (high[kind] -
                                                        low[kind]))
               for kind in ('bops', 'size')]
    result = allocate_bits(problem, budgets)
    assert all(result.cost[b.kind] <= b.value for b in budgets)
    assert result.objective == pytest.approx(brute_force(problem, budgets))


def test_budget_below_the_cheapest_assignment_is_one_line_naming_the_fix():
    problem = toy({2: 1., 8: 0.}, {2: 1., 8: 0.})
    with pytest.raises(ValueError, match=r'Budget size=49 is below the '
                       r'cheapest assignment .*size=50.*raise it to at '
                       r'least 50 or allow fewer bits') as err:
        allocate_bits(problem, [Budget('size', 49.)])
    assert '\n' not in str(err.value)


def test_constraints_restrict_the_candidates():
    problem = toy({2: 1., 4: 0.5, 8: 0.}, {2: 1., 4: 0.5, 8: 0.})
    result = allocate_bits(problem, [Budget('size', 200.)],
                           [parse_constraint('a:w=2,4')])
    assert result.w_bits == {'a': 4, 'b': 8}
    with pytest.raises(ValueError, match="'zzz:w=...' matches no"):
        allocate_bits(problem, [Budget('size', 200.)],
                      [BitConstraint('zzz', 'w', (4, ))])
    with pytest.raises(ValueError, match="leaves 'a' no candidate.*--w-bits"):
        allocate_bits(problem, [Budget('size', 200.)],
                      [BitConstraint('a', 'w', (3, ))])


@pytest.mark.parametrize('text,expected', [
    ('bops=1.5G', Budget('bops', 1.5e9)),
    ('size=300k', Budget('size', 3e5)),
    ('avg-bits=3', Budget('avg-bits', 3.)),
    ('BOPS = 3/3', Budget('bops', None, '3/3')),
])
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize('text', ['bops', 'flops=3', 'size=-1', 'size=0',
                                  'avg-bits=three', 'bops=3/3/3'])
def test_bad_budgets_are_refused_with_the_syntax(text):
    with pytest.raises(ValueError, match='KIND=VALUE'):
        parse_budget(text)


@pytest.mark.parametrize('text', ['layer1:x=4', 'w=4', 'layer1:w=', 'l:w=a'])
def test_bad_constraints_are_refused_with_the_syntax(text):
    with pytest.raises(ValueError, match='PATTERN:w=BITS'):
        parse_constraint(text)
