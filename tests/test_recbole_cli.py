"""Issue 12, "Done when": a user's RecBole folder (a .inter with ratings and timestamps, a .item with a text
`title:token_seq` field and a numeric `year:float` field) loads with its two .item modalities and trains VBPR and
MetaMMF_MF through the CLI, and two processes with the same seed give identical numbers.

Process A runs the chapter's notebook, `mmrec-nb repro --only metammf --model metammf_mf`, which trains
MetaMMF_MF and, as its comparators, the baselines (VBPR among them) on the folder; process B runs
`mmrec-nb repro --only baselines --model vbpr metammf_mf`. Each process embeds the titles itself (its own cache).
One epoch on 40 users x 30 items; the metammf notebook also runs its ablation grid on the built-in data sets for
that one epoch (about 40 s of the test's ~65 s)."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np

from mmrec_nb.data import load_dataset
from mmrec_nb.repro import data_id, data_label

CLI = 'import sys; from mmrec_nb.cli import main; sys.exit(main(sys.argv[1:]))'


def write_recbole(folder, n_users=40, n_items=30, per_user=8, seed=0):
    "books.inter (user_id, item_id, rating, timestamp) and books.item (title:token_seq, year:float)."
    rng = np.random.default_rng(seed)
    folder.mkdir()
    rows = ['user_id:token\titem_id:token\trating:float\ttimestamp:float']
    for user in range(n_users):
        others = rng.choice(np.delete(np.arange(n_items), user % n_items), size=per_user - 1, replace=False)
        items = [user % n_items, *others]                             # every item is rated by someone
        rows += [f'u{user}\tb{item}\t{rng.integers(1, 6)}\t{1_000_000 + 100 * user + k}'
                 for k, item in enumerate(items)]
    (folder / 'books.inter').write_text('\n'.join(rows) + '\n')
    words = ['night', 'river', 'garden', 'empire', 'winter', 'machine', 'song', 'city']
    (folder / 'books.item').write_text('item_id:token\ttitle:token_seq\tyear:float\n' + ''.join(
        f'b{i}\tThe {words[i % 8]} of {words[(3 * i + 1) % 8]} {i}\t{1950 + 2 * i}\n' for i in range(n_items)))
    return folder


def repro(tmp_path, tag, *args):
    "Run `mmrec-nb repro ... --epochs 1 --seeds 0` in a fresh process; its results folder."
    out = tmp_path / f'results-{tag}'
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'MMREC_CACHE': str(tmp_path / f'cache-{tag}'),
           'PYTHONHASHSEED': str(len(tag)), 'OMP_NUM_THREADS': '1'}
    done = subprocess.run([sys.executable, '-c', CLI, 'repro', *args, '--epochs', '1', '--seeds', '0',
                           '--out', str(out), '--build', str(tmp_path / f'build-{tag}'),
                           '--data-root', str(tmp_path / 'no-shared-data')],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def record(out, notebook, label, model):
    return json.loads((out / 'quick' / notebook / label / model / 'seed0.json').read_text())


def test_recbole_folder_trains_vbpr_and_metammf_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv('MMREC_CACHE', str(tmp_path / 'cache'))
    folder = write_recbole(tmp_path / 'books')
    with warnings.catch_warnings():
        warnings.simplefilter('error')                                # nothing to repair in this folder
        data = load_dataset(folder)
    assert (data.n_users, data.n_items) == (40, 30)
    assert {m: tuple(x.shape) for m, x in data.features.items()} == {'title': (30, 384), 'year': (30, 1)}
    fields = data.info['item_fields']
    assert (fields['title']['as'], fields['year']['as']) == ('text', 'numeric')
    assert data.info['modalities']['year']['normalize'] == 'standard'
    label = data_label(data)
    assert label == f'books-{data_id(data)[:8]}'

    first = repro(tmp_path, 'a', '--only', 'metammf', '--dataset', str(folder), '--model', 'metammf_mf')
    second = repro(tmp_path, 'bb', '--only', 'baselines', '--dataset', str(folder), '--model', 'vbpr',
                   'metammf_mf')
    runs = {'vbpr': (record(first, 'baselines', label, 'vbpr'), record(second, 'baselines', label, 'vbpr')),
            'metammf_mf': (record(first, 'metammf', label, 'metammf_mf'),
                           record(second, 'baselines', label, 'metammf_mf'))}
    for model, (a, b) in runs.items():
        assert a['data_id'] == b['data_id'] == data_id(data), model
        assert a['epochs_run'] == b['epochs_run'] == 1
        assert 0 < a['metrics']['test']['recall@20'] <= 1, model
        assert a['metrics'] == b['metrics'], model                          # bit-identical, not just close
        assert a['valid_curve'] == b['valid_curve'], model
        provenance = a['config']['data']['info']['item_fields']
        assert provenance['title']['as'] == 'text' and provenance['year']['as'] == 'numeric'
