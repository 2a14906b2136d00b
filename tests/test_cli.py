"""mmrec-nb command line: argument errors, results summary, and a real papermill run of nbs/repro/baselines."""
import sys
import time

import pytest

from mmrec_nb import cli, repro, tables

sys.path.insert(0, str(repro.project_root() / 'tests'))
from test_repro import make_record, write  # noqa: E402


@pytest.mark.parametrize('argv, message', [
    (['repro', '--profile', 'medium'], "invalid choice: 'medium'"),
    (['repro', '--only', 'nosuch'], "unknown reproduction notebook 'nosuch'; available: stopping, tuning, baselines"),
    (['repro', '--dataset', 'ml1m'], "unknown dataset 'ml1m'"),
    (['repro', '--epochs', '0'], 'must be a positive integer'),
    (['repro', '--seeds', 'one'], "invalid int value: 'one'"),
    (['results', '--profile', 'medium'], "invalid choice: 'medium'"),
    ([], 'required: {repro,results}'),
    (['train'], "invalid choice: 'train'"),
])
def test_usage_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_model(capsys):
    assert cli.main(['repro', '--model', 'bprmf', 'nosuchmodel']) == 2
    err = capsys.readouterr().err
    assert 'unknown model(s) nosuchmodel; registered: ' in err
    registered = err.split('registered: ')[1].strip().split(', ')   # every model module was imported to list them
    assert {'bprmf', 'lightgcn', 'vbpr', 'metammf_mf', 'metammf_gcn'} <= set(registered)


def test_help_and_list(capsys):
    assert cli.main(['--help']) == 0
    assert 'repro' in capsys.readouterr().out
    assert cli.main(['repro', '--list']) == 0
    assert "baselines: profile='quick'" in capsys.readouterr().out


def test_discovery_and_parameters():
    notebooks = cli.discover_notebooks()
    assert 'baselines' in notebooks
    declared = cli.notebook_parameters(notebooks['baselines'])
    expected = {'profile', 'datasets', 'models', 'seeds', 'epochs', 'out_dir', 'data_root', 'force',
                'checkpoint_root', 'progress_file'}
    assert expected <= set(declared)
    args = cli.build_parser().parse_args(['repro', '--profile', 'full', '--seeds', '3', '4', '--out', '/tmp/r'])
    passed = cli._papermill_parameters(args, declared, repro.resolve_path('_build/x.log'))
    assert passed['seeds'] == [3, 4] and passed['profile'] == 'full' and passed['out_dir'] == '/tmp/r'
    assert 'datasets' not in passed and 'epochs' not in passed       # not given: the notebook's defaults hold
    with pytest.raises(cli.UsageError, match='no parameter'):
        cli._papermill_parameters(args, {'profile': 'quick'}, repro.resolve_path('_build/x.log'))


def test_datasets_accepted(tmp_path):
    folder = tmp_path / 'baby'
    folder.mkdir()
    assert cli.check_datasets(['ml100k', 'baby', str(folder)], data_root=str(tmp_path)) == \
        ['ml100k', 'baby', str(folder.resolve())]  # a folder under the data root by name, or any folder by path
    assert cli.check_datasets(['lastfm2k'], data_root=str(tmp_path)) == ['lastfm2k']  # skipped later, with a note


def test_results_command(tmp_path, capsys):
    for seed, value in enumerate([0.30, 0.34, 0.32]):
        write(tmp_path, make_record('lightgcn', seed, value, profile='full'))
    write(tmp_path, make_record('bprmf', 0, 0.1, profile='quick'))
    assert cli.main(['results', '--root', str(tmp_path), '--metric', 'recall@20', 'valid_hit@10']) == 0
    out = capsys.readouterr().out
    assert '== toy (full profile) ==' in out and '== toy (quick profile) ==' in out
    assert '0.3200 ± 0.0200' in out and '0.1600 ± 0.0100' in out and '0,1,2' in out
    assert cli.main(['results', '--root', str(tmp_path), '--profile', 'quick']) == 0
    out = capsys.readouterr().out
    assert 'bprmf' in out and 'lightgcn' not in out
    assert cli.main(['results', '--root', str(tmp_path / 'none')]) == 0
    assert 'no results under' in capsys.readouterr().out
    assert cli.main(['results', '--root', str(tmp_path), '--metric', 'recall@50']) == 2


def test_progress_follower(tmp_path, capsys):
    log = tmp_path / 'run.log'
    with cli.ProgressFollower(log, prefix='> ', interval=0.02):
        log.write_text('one\ntw')
        time.sleep(0.1)
        with open(log, 'a') as stream:
            stream.write('o\n')
    assert capsys.readouterr().out.splitlines() == ['> one', '> two']


def test_repro_papermill_end_to_end(tmp_path, capsys):
    "The real thing: papermill runs nbs/repro/baselines on synthetic data for one epoch, via the CLI."
    out, build, empty = tmp_path / 'results', tmp_path / 'build', tmp_path / 'no_data'
    empty.mkdir()
    argv = ['repro', '--only', 'baselines', '--dataset', 'synthetic', 'lastfm2k', '--epochs', '1',
            '--out', str(out), '--build', str(build), '--data-root', str(empty)]
    assert cli.main(argv) == 0
    shown = capsys.readouterr().out
    assert "note: dataset 'lastfm2k' is not available" in shown
    assert (build / 'repro' / 'quick' / 'baselines.ipynb').is_file()
    runs = tables.load_results(out)
    # the five baselines, then the seed ensemble of the one strongest on valid
    assert sorted(runs['model']) == ['bprmf', 'freedom', 'lattice', 'lightgcn', 'seed_ensemble', 'vbpr']
    assert set(runs['dataset']) == {'synthetic'} and set(runs['epochs_run']) == {1}
    assert runs['test_recall@20'].between(0, 1).all() and runs['curve_value'].map(len).eq(1).all()
    for model in ('bprmf', 'lightgcn', 'vbpr', 'lattice', 'freedom', 'seed_ensemble'):
        assert f'synthetic/{model}/seed0: test recall@20' in shown
    assert not any((build / 'checkpoints').rglob('*.pt'))

