"""mmrec_nb.claims (nbs/04b_claims.ipynb): the paired test against scipy, the verdict rule's corners, the files."""
import json
import math

import numpy as np
import pytest
from scipy import stats

from mmrec_nb import claims


def test_paired_test_matches_scipy_and_signs_the_effect():
    a, b = [0.31, 0.30, 0.35, 0.29, 0.33], [0.33, 0.30, 0.36, 0.32, 0.33]
    higher = claims.paired_test(a, b)
    assert abs(higher['p'] - stats.ttest_rel(a, b).pvalue) < 1e-12 and higher['effect'] < 0
    lower = claims.paired_test(a, b, higher_is_better=False)           # an error: lower is the claimed direction
    assert lower['p'] == higher['p'] and lower['effect'] == pytest.approx(-higher['effect'])
    assert lower['outcome'] == ('win' if lower['p'] < 0.05 else 'tie')


@pytest.mark.parametrize('ours, reference, outcome', [
    ([1.0, 1.1, 0.9, 1.0, 1.05], [1.2, 1.3, 1.0, 1.25, 1.2], 'loss'),   # higher is better: ours is lower
    ([1.2, 1.3, 1.0, 1.25, 1.2], [1.0, 1.1, 0.9, 1.0, 1.05], 'win'),
    ([1.0, 1.2, 0.9, 1.3, 1.0], [1.1, 1.1, 1.0, 1.2, 1.0], 'tie'),
    ([0.5] * 4, [0.5] * 4, 'tie'),                                     # no difference, no variance
    ([0.6] * 4, [0.5] * 4, 'win'),                                     # a constant difference: p = 0
    ([0.6], [0.5], 'untested'),
])
def test_outcomes(ours, reference, outcome):
    assert claims.paired_test(ours, reference)['outcome'] == outcome


def test_pairs_only_shared_seeds():
    cell = claims.paired_test({0: 0.3, 1: 0.4, 5: 0.9}, {1: 0.35, 0: 0.2, 7: 0.0})
    assert cell['seeds'] == [0, 1] and cell['n'] == 2 and cell['effect'] == pytest.approx(0.075)


@pytest.mark.parametrize('outcomes, kind, verdict', [
    (['win', 'win', 'win'], 'superiority', 'holds'),
    (['win', 'win', 'tie', 'loss'], 'superiority', 'partly'),
    (['win', 'tie', 'tie'], 'superiority', 'partly'),
    (['tie', 'tie'], 'superiority', 'does not hold'),
    (['tie', 'loss'], 'superiority', 'contradicted'),
    (['untested', 'untested'], 'superiority', 'not tested'),
    (['tie', 'win'], 'non-inferiority', 'holds'),
    (['loss', 'tie', 'win'], 'non-inferiority', 'partly'),
    (['loss', 'loss'], 'non-inferiority', 'contradicted'),
])
def test_verdict_rule(outcomes, kind, verdict):
    assert claims.verdict(outcomes, kind) == verdict


def test_verdict_refuses_unknown_words():
    with pytest.raises(ValueError, match='outcomes'):
        claims.verdict(['draw'])
    with pytest.raises(ValueError, match='kind'):
        claims.verdict(['win'], 'equivalence')


def test_trend():
    assert claims.trend_test([1, 2, 4, 8] * 3, [0.0, 0.1, 0.2, 0.4] * 3)['outcome'] == 'win'
    assert claims.trend_test([1, 2, 4, 8] * 3, [0.4, 0.2, 0.1, 0.0] * 3)['outcome'] == 'loss'
    assert claims.trend_test([1, 2, 3], [0.1, 0.1, 0.1])['outcome'] == 'tie'
    with pytest.raises(ValueError):
        claims.trend_test([1, 2], [0.1, 0.2])


def test_claims_file_round_trip(tmp_path):
    cells = [{'dataset': 'd', **claims.paired_test([0.3, 0.31, 0.32], [0.2, 0.22, 0.21])},
             {'dataset': 'e', **claims.paired_test([0.3], [0.2])}]
    stored = claims.claim(7, 'A beats B', cells, metric='test_recall@20')
    assert stored['verdict'] == 'holds'                                  # the untested cell does not count
    path = claims.write_claims('toy', [stored], root=tmp_path)
    document = json.loads(path.read_text())
    assert document['claims'][0]['cells'][1]['p'] is None                 # NaN is stored as null
    shown = claims.verdict_table(document['claims'])
    assert list(shown['outcome']) == ['win', 'untested'] and shown['test'].iloc[1] == '— (n = 1)'
    assert claims.read_claims('toy', root=tmp_path) == [document]
