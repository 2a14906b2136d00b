"""mmrec_nb.repro: result schema, atomic writes, provenance, skip rule, loading and summarising."""
import json
import math
import subprocess

import numpy as np
import pytest

from mmrec_nb import records, repro, tables


def make_record(model='bprmf', seed=0, recall20=0.2, *, dataset='toy', profile='quick', notebook='baselines',
                commit='a' * 40, curve=(0.1, 0.2, 0.15), date='2026-01-01T00:00:00+00:00'):
    "A hand-made record in the result schema; every metric is recall20 / 2 except recall@20 itself."
    metrics = {name: recall20 / 2 for name in repro.METRICS} | {'recall@20': recall20}
    config = {'model': model, 'model_config': {'dim': 64}, 'train': {'seed': seed}, 'data': {'name': dataset}}
    return {'schema_version': repro.SCHEMA_VERSION, 'task': 'ranking', 'notebook': notebook, 'dataset': dataset,
            'model': model, 'variant': None, 'seed': seed, 'profile': profile, 'config_hash': repro.config_hash(config), 'config': config,
            'metrics': {'valid': dict(metrics), 'test': dict(metrics)}, 'best_epoch': 2, 'epochs_run': len(curve),
            'stopped_early': False, 'train_seconds_per_epoch': 0.5, 'eval_seconds': 0.1, 'peak_memory_mb': 10.0,
            'valid_curve': {'metric': 'recall@20', 'epoch': list(range(1, len(curve) + 1)), 'value': list(curve)},
            'provenance': {'commit': commit, 'date': date, 'wall_seconds': 2.0,
                           'versions': {'python': '3', 'torch': '2', 'numpy': '2', 'mmrec_nb': '0'},
                           'platform': {'machine': 'x86_64', 'device': 'cpu'}}}


def write(root, record):
    path = repro.result_path(root, record['profile'], record['notebook'], record['dataset'], record['model'],
                             record['seed'])
    return repro.write_json_atomic(path, record)


# --- schema and atomic writes -------------------------------------------------------------------

def test_schema_round_trip(tmp_path):
    record = make_record()
    path = write(tmp_path, record)
    assert path == tmp_path / 'quick' / 'baselines' / 'toy' / 'bprmf' / 'seed0.json'
    assert repro.read_result(path) == record
    assert json.loads(path.read_text())['schema_version'] == repro.SCHEMA_VERSION
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.parametrize('change, message', [
    (lambda r: r.pop('provenance'), "missing 'provenance'"),
    (lambda r: r.update(schema_version=0), 'schema_version 0'),
    (lambda r: r['metrics']['test'].pop('ndcg@10'), "metrics.test lacks ['ndcg@10']"),
    (lambda r: r['provenance'].pop('commit'), "provenance lacks 'commit'"),
    (lambda r: r['valid_curve']['value'].pop(), 'valid_curve'),
    (lambda r: r.update(seed='0'), "'seed' is str"),
])
def test_validate_names_the_problem(change, message):
    record = make_record()
    change(record)
    with pytest.raises(ValueError, match='where.json') as err:
        repro.validate_result(record, 'where.json')
    assert message in str(err.value)


def test_read_result_rejects_bad_json(tmp_path):
    path = tmp_path / 'seed0.json'
    path.write_text('{"metrics": ')
    with pytest.raises(ValueError, match='invalid JSON'):
        repro.read_result(path)
    path.write_text('[1, 2]')
    with pytest.raises(ValueError, match='a JSON list'):
        repro.read_result(path)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / 'out' / 'seed0.json'

    def dump_half_then_fail(obj, stream, **kwargs):
        stream.write('{"metrics": {"recall@20": 0.')  # a prefix reaches the temp file, then the write dies
        raise OSError('disk full')

    monkeypatch.setattr(records.json, 'dump', dump_half_then_fail)
    with pytest.raises(OSError, match='disk full'):
        repro.write_json_atomic(target, make_record())
    assert list(target.parent.iterdir()) == []            # neither the target nor a temp file
    monkeypatch.undo()

    good = make_record()
    repro.write_json_atomic(target, good)
    monkeypatch.setattr(records.json, 'dump', dump_half_then_fail)
    with pytest.raises(OSError):
        repro.write_json_atomic(target, make_record(recall20=0.9))
    assert repro.read_result(target) == good               # the old file survives intact
    assert [p.name for p in target.parent.iterdir()] == ['seed0.json']


def test_strict_json_and_jsonable():
    assert repro.to_jsonable({'x': float('inf'), 'y': np.arange(3), 'z': (np.float64(0.5),)}) == \
        {'x': None, 'y': [0, 1, 2], 'z': [0.5]}
    with pytest.raises(ValueError):  # NaN is not JSON: the writer refuses it rather than writing 'NaN'
        repro.write_json_atomic('/dev/null', {'x': float('nan')})


# --- identity, provenance, profiles ---------------------------------------------------------------

def test_config_hash_ignores_order_and_volatile_keys():
    config = {'model': 'vbpr', 'train': {'lr': 0.001, 'epochs': 5, 'device': 'cpu', 'checkpoint_dir': '/a'},
              'data': {'name': 'ml100k', 'options': {'normalize': 'l2', 'data_root': '/x'}, 'info': {'path': '/p'}}}
    moved = {'data': {'info': {'path': '/q'}, 'options': {'data_root': '/y', 'normalize': 'l2'}, 'name': 'ml100k'},
             'train': {'checkpoint_dir': '/b', 'device': 'cuda', 'epochs': 5, 'lr': 0.001}, 'model': 'vbpr'}
    assert repro.config_hash(config) == repro.config_hash(moved)
    changed = json.loads(json.dumps(config))
    changed['data']['options']['normalize'] = 'standard'
    assert repro.config_hash(changed) != repro.config_hash(config)


def test_profiles():
    full, quick = repro.get_profile('full'), repro.get_profile('quick')
    assert (full.epochs, full.eval_every, full.seeds) == (1000, 5, (0, 1, 2, 3, 4)) and full.patience * full.eval_every == 400
    assert quick.epochs <= 5 and quick.seeds == (0,)
    with pytest.raises(ValueError, match='unknown profile'):
        repro.get_profile('slow')


def _git(cwd, *args):
    subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *args], cwd=cwd, check=True,
                   capture_output=True)


def test_git_commit_dirty_only_for_code(tmp_path):
    assert repro.git_commit(tmp_path) == 'unknown'
    (tmp_path / 'nbs').mkdir()
    (tmp_path / 'nbs' / 'a.ipynb').write_text('{}')
    (tmp_path / 'notes.txt').write_text('x')
    _git(tmp_path, 'init', '-q')
    _git(tmp_path, 'add', '.')
    _git(tmp_path, 'commit', '-q', '-m', 'init')
    head = repro.git_commit(tmp_path)
    assert len(head) == 40 and not head.endswith('-dirty')
    (tmp_path / 'notes.txt').write_text('changed')           # outside mmrec_nb/ and nbs/: still clean
    assert repro.git_commit(tmp_path) == head
    (tmp_path / 'nbs' / 'a.ipynb').write_text('{"changed": 1}')
    assert repro.git_commit(tmp_path) == head + '-dirty'
    assert repro.same_commit(head + '-dirty', head)


def test_provenance_fields():
    prov = repro.provenance(wall_seconds=3.14159)
    assert prov['wall_seconds'] == 3.142 and prov['platform']['device'] == 'cpu'
    assert set(prov['versions']) == {'python', 'torch', 'numpy', 'mmrec_nb'}
    assert prov['platform']['cpu_count'] >= 1 and prov['date'].endswith('+00:00')


def test_paths_and_lists(tmp_path):
    root = repro.project_root()
    assert (root / 'settings.ini').is_file()
    assert repro.project_root(root / 'nbs') == root
    assert repro.resolve_path('results') == root / 'results'
    assert repro.as_list('[0, 1]') == [0, 1] and repro.as_list('a, b') == ['a', 'b'] and repro.as_list(None) is None


# --- skip rule ------------------------------------------------------------------------------------

def test_reusable_result(tmp_path):
    record = make_record()
    path = write(tmp_path, record)
    assert repro.reusable_result(path, record['config_hash'], 'quick') == record
    assert repro.reusable_result(path, 'f' * 16, 'quick') is None
    assert repro.reusable_result(path, record['config_hash'], 'full') is None
    assert repro.reusable_result(tmp_path / 'absent.json', record['config_hash'], 'quick') is None
    path.write_text(path.read_text()[:50])
    assert repro.reusable_result(path, record['config_hash'], 'quick') is None


@pytest.fixture(scope='module')
def tiny_data():
    from mmrec_nb.data import load_dataset
    return load_dataset('synthetic')


def test_run_experiment_skip_and_force(tmp_path, tiny_data):
    kwargs = dict(notebook='baselines', profile='quick', seed=0, out_dir=tmp_path / 'results', epochs=1,
                  checkpoint_root=tmp_path / 'ckpt', log=lambda line: None)
    first = repro.run_experiment(tiny_data, 'bprmf', **kwargs)
    assert not first.skipped and first.path.is_file()
    record = repro.read_result(first.path)
    assert record['epochs_run'] == 1 and record['config']['train']['epochs'] == 1
    assert record['config']['data']['n_users'] == tiny_data.n_users
    assert not any((tmp_path / 'ckpt').rglob('*.pt'))  # checkpoint removed once the record exists

    again = repro.run_experiment(tiny_data, 'bprmf', **kwargs)
    assert again.skipped and again.record == record

    forced = repro.run_experiment(tiny_data, 'bprmf', **kwargs | {'force': True})
    assert not forced.skipped and forced.record['provenance']['date'] >= record['provenance']['date']
    assert forced.record['metrics']['test'] == pytest.approx(record['metrics']['test'], abs=1e-6)  # same seed

    changed = repro.run_experiment(tiny_data, 'bprmf', **kwargs | {'train_config': {'lr': 0.01}})
    assert not changed.skipped and changed.record['config_hash'] != record['config_hash']


def test_unavailable_dataset_is_a_note(tmp_path):
    notes = []
    assert repro.load_dataset_or_none('lastfm2k', log=notes.append, data_root=str(tmp_path)) is None
    assert 'lastfm2k' in notes[0] and 'skipped' in notes[0]


# --- loading and summarising ---------------------------------------------------------------------

def test_load_results_and_summarize(tmp_path):
    values = {'bprmf': [0.10, 0.14, 0.15], 'lightgcn': [0.20, 0.22, 0.27]}
    for model, recalls in values.items():
        for seed, value in enumerate(recalls):
            write(tmp_path, make_record(model, seed, value, profile='full', curve=(value / 2, value)))
    write(tmp_path, make_record('vbpr', 0, 0.3, profile='quick'))
    runs = tables.load_results(tmp_path)
    assert len(runs) == 7 and set(runs['profile']) == {'full', 'quick'}
    assert runs.loc[runs['model'] == 'vbpr', 'test_recall@20'].item() == 0.3
    assert len(tables.load_results(tmp_path, profile='full')) == 6

    summary = tables.summarize(runs, metrics=['test_recall@20', 'valid_ndcg@10']).set_index('model')
    for model, recalls in values.items():
        assert math.isclose(summary.loc[model, 'test_recall@20_mean'], np.mean(recalls))
        assert math.isclose(summary.loc[model, 'test_recall@20_std'], np.std(recalls, ddof=1))
        assert math.isclose(summary.loc[model, 'valid_ndcg@10_mean'], np.mean(recalls) / 2)
        assert summary.loc[model, 'n_seeds'] == 3 and summary.loc[model, 'seeds'] == (0, 1, 2)
    assert math.isnan(summary.loc['vbpr', 'test_recall@20_std'])
    with pytest.raises(KeyError, match='unknown metric'):
        tables.summarize(runs, metrics=['test_recall@50'])

    curves = tables.mean_curves(runs[runs['profile'] == 'full'])
    assert curves.loc[2, 'lightgcn'] == pytest.approx(np.mean(values['lightgcn']))


def test_load_results_empty_and_bad_files(tmp_path):
    assert tables.load_results(tmp_path / 'missing').empty
    assert tables.summarize(tables.load_results(tmp_path)).empty
    write(tmp_path, make_record())
    bad = tmp_path / 'quick' / 'baselines' / 'toy' / 'bprmf' / 'seed1.json'
    bad.write_text('{"schema_version": 99}')
    with pytest.warns(UserWarning, match='seed1.json'):
        runs = tables.load_results(tmp_path)
    assert list(runs['seed']) == [0]


def test_leaderboard_helpers(tmp_path):
    head = 'b' * 40
    for seed in range(3):
        write(tmp_path, make_record('lightgcn', seed, 0.2 + 0.01 * seed, profile='full', commit=head))
    write(tmp_path, make_record('lightgcn', 0, 0.05, profile='quick', commit=head))
    write(tmp_path, make_record('vbpr', 0, 0.25, profile='quick', commit='c' * 40 + '-dirty'))
    chosen = tables.prefer_profile(tables.summarize(tables.load_results(tmp_path)))
    assert dict(zip(chosen['model'], chosen['profile'])) == {'lightgcn': 'full', 'vbpr': 'quick'}
    html = tables.leaderboard_table(chosen).to_html()
    assert '0.2100 ± 0.0100 ★' in html and '0.2500 ★' not in html      # a quick row is never starred
    assert html.count('font-weight: bold') == 1
    note = tables.provenance_note(chosen, head=head)
    assert 'bbbbbbbbbb (HEAD)' in note and 'from commit cccccccccc-dirty' in note
