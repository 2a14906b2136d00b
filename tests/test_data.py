"""Tests of mmrec_nb.data / mmrec_nb.sources / mmrec_nb.synthetic: real counts, split rules, sources' modalities
(the bad-input table is tests/test_bad_input.py)."""
import importlib.metadata
import json
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

from mmrec_nb import sources
from mmrec_nb.data import (BUILTIN_DATASETS, DataError, DataWarning, RecDataset, embed_texts, find_data_root,
                           load_dataset, split_cold_start, split_random, split_temporal, synthetic)
from mmrec_nb.synthetic import generate

# A valid MMRec interaction file: 4 users, 5 items, every split non-empty.
GOOD_INTER = ('userID\titemID\trating\tx_label\n'
              '0\t0\t1\t0\n0\t1\t1\t0\n0\t2\t1\t1\n1\t1\t1\t0\n1\t3\t1\t2\n2\t4\t1\t0\n3\t0\t1\t0\n')


def make_mmrec(tmp_path, inter=GOOD_INTER, features=None, name='toy'):
    "A folder <name>/ with <name>.inter and feature files (default: text 5 x 3)."
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    if isinstance(inter, bytes):
        (folder / f'{name}.inter').write_bytes(inter)
    else:
        (folder / f'{name}.inter').write_text(inter)
    if features is None:
        features = {'text': np.arange(15, dtype=np.float32).reshape(5, 3) + 1}
    for modality, x in features.items():
        if isinstance(x, bytes):
            (folder / f'{modality}_feat.npy').write_bytes(x)
        else:
            np.save(folder / f'{modality}_feat.npy', x)
    return folder


def test_missing_paths_and_roots(tmp_path, monkeypatch):
    with pytest.raises(DataError, match='nope.inter: no such dataset folder or .inter file'):
        load_dataset(tmp_path / 'nope.inter')
    (tmp_path / 'two').mkdir()
    for name in ('a.inter', 'b.inter'):
        (tmp_path / 'two' / name).write_text(GOOD_INTER)
    with pytest.raises(DataError, match=r"expected two.inter or exactly one .inter file, found \['a.inter', 'b.inter'\]"):
        load_dataset(tmp_path / 'two')
    monkeypatch.setenv('MMREC_DATA', str(tmp_path / 'missing-root'))
    with pytest.raises(DataError, match='missing-root .from the environment variable MMREC_DATA. is not a folder'):
        load_dataset('lastfm2k')
    monkeypatch.setenv('MMREC_DATA', str(tmp_path))
    with pytest.raises(DataError, match="unknown dataset 'nosuchdata'.*set MMREC_DATA"):
        load_dataset('nosuchdata')
    with pytest.raises(TypeError, match="unknown option.*'shuffle'"):
        load_dataset('ml100k', shuffle=True)


def test_data_root_message_names_each_folder_once(tmp_path, monkeypatch):
    "Run from the repository, both default candidates are the same folder: the message must list it once."
    monkeypatch.delenv('MMREC_DATA', raising=False)
    missing, other = tmp_path / 'shared' / 'data', tmp_path / 'elsewhere' / 'data'
    monkeypatch.setattr(sources, '_root_candidates', lambda: [missing, missing])
    with pytest.raises(DataError) as caught:
        find_data_root()
    assert str(caught.value).startswith(f'no data root found (tried {missing}); set the environment variable MMREC_DATA')
    monkeypatch.setattr(sources, '_root_candidates', lambda: [missing, other])
    with pytest.raises(DataError) as caught:
        find_data_root()
    assert f'(tried {missing}, {other});' in str(caught.value)
    other.mkdir(parents=True)
    assert find_data_root() == other                              # the first candidate that exists


def test_builtin_names():
    assert BUILTIN_DATASETS == {'ml100k': 'ml100k', 'ml-100k': 'ml100k', 'synthetic': 'synthetic'}
    assert load_dataset('ml-100k', modalities=['genre']).name == 'ml100k'
    assert load_dataset('synthetic', n_users=30, n_items=20, modalities=('a',)).name == 'synthetic'


def test_importing_the_data_layer_and_models_stays_light():
    "No table, plotting, notebook or sklearn library at import time: they cost memory and seconds in every run."
    heavy = ('pandas', 'matplotlib', 'sklearn', 'IPython', 'papermill')
    code = ('import sys; import mmrec_nb.data, mmrec_nb.synthetic, mmrec_nb.layers, mmrec_nb.models.baselines; '
            f'print(sorted(name for name in {heavy!r} if name in sys.modules))')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == '[]', done.stdout


def test_ml100k_without_recbole_names_the_fix(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(sources.importlib.metadata, 'distribution', missing)
    with pytest.raises(DataError, match=r'pip install --no-deps recbole==1\.2\.1'):
        load_dataset('ml100k', modalities=['genre'])


def test_duplicates_dropped_with_warning(tmp_path):
    folder = make_mmrec(tmp_path, GOOD_INTER + '0\t1\t1\t2\n')
    with pytest.warns(DataWarning, match=r'toy.inter: 1 duplicate \(user, item\) rows, the first at line 9'):
        data = load_dataset(folder)
    assert data.info['duplicates_dropped'] == 1
    assert sum(len(data.split(s)) for s in ('train', 'valid', 'test')) == 7


def test_mmrec_folder_roundtrip(tmp_path):
    folder = make_mmrec(tmp_path, features={'image': np.ones((6, 2)), 'text': np.ones((6, 4)),
                                            'audio_vggish': np.full((6, 3), 100.0)})
    (folder / 'items.tsv').write_text('itemID\tname\n0\tzero\n4\tfour\n')
    with pytest.raises(DataError, match='5 distinct item ids are used, but audio_vggish_feat.npy has 6 rows'):
        load_dataset(folder)
    data = load_dataset(folder, normalize={'image': None}, item_ids='keep')
    assert (data.n_users, data.n_items) == (4, 6)              # item 5: features, no interactions
    assert set(data.features) == {'image', 'text', 'audio_vggish'}
    assert data.info['modalities']['image']['normalize'] is None
    assert torch.allclose(data.features['audio_vggish'].norm(dim=1), torch.ones(6))
    assert data.info['modalities']['audio_vggish']['raw_median_row_norm'] == pytest.approx(100 * 3 ** 0.5)
    assert data.titles == ['zero', '', '', '', 'four', '']
    assert data.train.tolist() == [[0, 0], [0, 1], [1, 1], [2, 4], [3, 0]]
    assert data.valid.tolist() == [[0, 2]] and data.test.tolist() == [[1, 3]]
    assert load_dataset(folder / 'toy.inter', modalities='text', item_ids='keep').features.keys() == {'text'}
    mapped = load_dataset(folder, item_ids='map')
    assert mapped.n_items == 5 and mapped.info['raw_item_ids'] == [0, 1, 2, 3, 4]
    assert mapped.titles == ['zero', '', '', '', 'four']
    assert data.train.dtype == torch.int64 and data.features['text'].dtype == torch.float32


def test_recbole_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    rows = ['user_id:token\titem_id:token\ttimestamp:float']
    for user in range(30):
        for item in rng.choice(40, size=12, replace=False):
            rows.append(f'u{user}\t{100 + item}\t{rng.integers(1e9)}')
    (tmp_path / 'shop.inter').write_text('\n'.join(rows) + '\n')
    (tmp_path / 'shop.item').write_text('item_id:token\tname:token_seq\tcolor:token_seq\n'
                                        + ''.join(f'{100 + i}\tthing {i}\t{"red" if i % 2 else "blue"}\n' for i in range(40)))
    data = load_dataset(tmp_path, split='temporal')
    assert (data.n_users, data.n_items) == (30, 40)
    assert len(data.test) == len(data.valid) == 30 and len(data.train) == 30 * 10
    assert data.info['raw_item_ids'][:2] == ['100', '101'] and data.titles[1] == 'thing 1'
    assert data.features['color'].sum(1).eq(1).all() and data.features['color'].shape == (40, 2)


@pytest.fixture(scope='module')
def ml100k():
    return load_dataset('ml100k')


def test_ml100k_counts(ml100k):
    data = ml100k
    assert (data.n_users, data.n_items) == (943, 1682)
    pairs, times = data.interactions()
    assert len(pairs) == 100_000 and len(times) == 100_000
    assert tuple(data.features['text'].shape) == (1682, 384)
    assert tuple(data.features['genre'].shape) == (1682, 19) and len(data.info['genres']) == 19
    assert tuple(data.features['year'].shape) == (1682, 10)
    assert len(data.titles) == 1682 and data.titles[49] == 'Star Wars'
    assert data.info['split'] == 'random' and data.info['seed'] == 2024 and data.info['ratios'] == [0.8, 0.1, 0.1]
    assert json.loads(json.dumps(data.info))['modalities']['text']['normalize'] == 'l2'   # provenance is JSON
    assert 'ratios' not in data.resplit('temporal').info
    assert '943 users x 1,682 items' in repr(data) and 'sparsity 93.70%' in repr(data) and 'text 384' in repr(data)


def test_ml100k_features(ml100k):
    raw = load_dataset('ml100k', modalities=['genre', 'year'], normalize=None)
    assert list(raw.features) == ['genre', 'year']
    genre = raw.features['genre']
    assert set(genre.unique().tolist()) == {0.0, 1.0} and genre.sum(1).min() >= 1   # every movie has a class
    year = raw.features['year']
    missing = year[:, -1] == 1
    assert missing.sum() == 2 and (year[missing, :-1] == 0).all()
    assert year[~missing, 1:-1].sum(1).eq(1).all()                                  # exactly one decade
    assert abs(year[~missing, 0].mean()) < 1e-5 and abs(year[~missing, 0].std() - 1) < 1e-2
    text = ml100k.features['text']
    assert torch.allclose(text.norm(dim=1), torch.ones(1682), atol=1e-4)


def test_ml100k_text_is_lazy_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv('MMREC_CACHE', str(tmp_path / 'cache'))
    load_dataset('ml100k', modalities=['genre'])
    assert not (tmp_path / 'cache').exists()                   # the encoder never ran
    first = embed_texts(['Toy Story', 'GoldenEye'])
    cached = list((tmp_path / 'cache').iterdir())
    assert len(cached) == 1 and cached[0].suffix == '.npy'     # no leftover temporary file
    start = time.perf_counter()
    again = embed_texts(['Toy Story', 'GoldenEye'])
    assert time.perf_counter() - start < 0.5 and np.array_equal(first, again)
    assert first.shape == (2, 384) and first.dtype == np.float32
    embed_texts(['Toy Story'])
    assert len(list((tmp_path / 'cache').iterdir())) == 2      # the key covers the texts


def test_random_split_rules(ml100k):
    data = ml100k
    keys = {s: set((data.split(s)[:, 0] * data.n_items + data.split(s)[:, 1]).tolist()) for s in ('train', 'valid', 'test')}
    assert not keys['train'] & keys['valid'] and not keys['train'] & keys['test'] and not keys['valid'] & keys['test']
    assert sum(map(len, keys.values())) == 100_000
    counts = np.stack([torch.bincount(data.split(s)[:, 0], minlength=943).numpy() for s in ('train', 'valid', 'test')], 1)
    n = counts.sum(1)
    assert (counts[:, 1] == np.floor(0.1 * n + 0.5)).all() and (counts[:, 2] == np.floor(0.1 * n + 0.5)).all()
    again = load_dataset('ml100k', modalities=['genre'])
    other = load_dataset('ml100k', modalities=['genre'], seed=7)
    assert torch.equal(again.train, data.train) and not torch.equal(other.train, data.train)


def test_small_user_rules():
    counts = np.array([1, 2, 3, 5, 9, 10, 11, 25])
    pairs = np.stack([np.repeat(np.arange(8), counts), np.concatenate([np.arange(c) for c in counts])], 1)
    label = split_random(pairs, seed=0)
    per_user = np.stack([np.bincount(pairs[label == k, 0], minlength=8) for k in range(3)], 1)
    assert per_user.tolist() == [[1, 0, 0], [2, 0, 0], [1, 1, 1], [3, 1, 1], [7, 1, 1], [8, 1, 1], [9, 1, 1], [19, 3, 3]]
    with pytest.raises(DataError, match='ratios must be'):
        split_random(pairs, ratios=(0.5, 0.1, 0.1))


def test_temporal_split_and_sequences(ml100k):
    data = ml100k.resplit('temporal')
    assert data.info['split'] == 'temporal' and len(data.test) == len(data.valid) == 943
    indptr, items, times = data.sequences()
    user_of = torch.repeat_interleave(torch.arange(943), indptr.diff())
    assert ((times[1:] >= times[:-1]) | (user_of[1:] != user_of[:-1])).all()
    test = data.test[torch.argsort(data.test[:, 0])]
    valid = data.valid[torch.argsort(data.valid[:, 0])]
    assert torch.equal(test[:, 1], items[indptr[1:] - 1]) and torch.equal(valid[:, 1], items[indptr[1:] - 2])
    # ties in time: the later row wins the test slot
    label = split_temporal(np.array([[0, 5], [0, 6], [0, 7], [0, 8]]), [1.0, 2.0, 2.0, 2.0])
    assert label.tolist() == [0, 0, 1, 2]


def test_cold_start_split(ml100k):
    data = ml100k.resplit('cold', seed=3)
    cold = data.cold_items
    assert len(cold) == round(0.2 * 1682)
    assert not torch.isin(data.train[:, 1], cold).any()
    assert torch.isin(data.valid[:, 1], cold).all() and torch.isin(data.test[:, 1], cold).all()
    assert not set(data.valid[:, 1].tolist()) & set(data.test[:, 1].tolist())       # split by item
    pairs, _ = data.interactions()
    assert len(pairs) == 100_000
    label, cold_again = split_cold_start(ml100k.interactions()[0], share=0.2, seed=3)
    assert np.array_equal(cold_again, cold.numpy())


def test_dataset_views(ml100k):
    indptr, indices = ml100k.user_items('valid')
    assert indptr[-1] == len(ml100k.valid) and len(indptr) == 944
    for u in (0, 500, 942):
        row = indices[indptr[u]:indptr[u + 1]]
        assert torch.equal(row, torch.sort(ml100k.valid[ml100k.valid[:, 0] == u, 1]).values)
    dense = ml100k.csr('train').to_dense()
    assert dense.sum() == len(ml100k.train) and dense[ml100k.train[0, 0], ml100k.train[0, 1]] == 1
    with pytest.raises(KeyError):
        ml100k.split('dev')


@pytest.fixture(scope='module')
def lastfm2k():
    try:
        find_data_root()
    except DataError as e:
        pytest.skip(f'shared data not found: {e}')
    if not (find_data_root() / 'lastfm2k').is_dir():
        pytest.skip('lastfm2k not in the data root')
    return load_dataset('lastfm2k')


def test_lastfm2k_counts(lastfm2k):
    data = lastfm2k
    assert (data.n_users, data.n_items) == (1858, 1425)
    assert [len(data.split(s)) for s in ('train', 'valid', 'test')] == [44327, 4799, 7219]
    assert {m: x.shape for m, x in data.features.items()} == {
        'text': (1425, 384), 'audio_vggish': (1425, 128), 'audio_whisper': (1425, 512)}
    assert data.info['split'] == 'given' and data.titles[0] == 'Groove Armada'
    json.dumps(data.info)
    assert data.info['modalities']['audio_vggish']['raw_median_row_norm'] > 1000
    for x in data.features.values():
        assert torch.allclose(x.norm(dim=1), torch.ones(1425), atol=1e-4)
    standard = load_dataset('lastfm2k', normalize='standard', modalities=['audio_vggish'])
    assert standard.features['audio_vggish'].mean(0).abs().max() < 1e-3
    resplit = load_dataset('lastfm2k', split='random', modalities=['text'])
    assert len(resplit.train) + len(resplit.valid) + len(resplit.test) == 56345


def test_synthetic_ground_truth():
    start = time.perf_counter()
    data = synthetic()
    assert time.perf_counter() - start < 1.0
    gt = data.ground_truth
    assert (data.n_users, data.n_items) == (500, 400)
    assert gt['user_factors'].shape == (500, 24) and gt['item_factors'].shape == (400, 24)
    assert gt['item_group'].dtype == torch.int64 and gt['item_group'].shape == (400,)
    assert gt['blocks'] == {'image': (0, 8), 'text': (8, 16), 'audio': (16, 24)}
    assert gt['noise'] == {'image': 0.5, 'text': 0.5, 'audio': 0.5}
    assert gt['projections']['text'].shape == (8, 32) and gt['affinity'].shape == (500, 400)
    json.dumps(data.info)
    assert torch.equal(synthetic().train, data.train)
    assert not torch.equal(synthetic(seed=1).train, data.train)
    small = load_dataset('synthetic', n_users=60, n_items=50, modalities=['a', 'b'], split='temporal',
                         noise={'a': 0.1, 'b': 1.0})
    assert small.n_users == 60 and set(small.features) == {'a', 'b'} and len(small.test) == 60
    with pytest.raises(DataError, match='noise must name exactly'):
        synthetic(noise={'image': 0.1})
    with pytest.raises(TypeError, match='nosie'):
        synthetic(nosie=0.1)                                       # a mistyped generator option is an error


def test_synthetic_is_the_generator_split_and_normalised():
    "synthetic() = generate() + the loader's split and normalisation: the same interactions, L2 rows, seeded split."
    raw = generate(80, 60, ('a', 'b'), seed=2)
    data = synthetic(80, 60, ('a', 'b'), seed=2, split='cold', cold_share=0.25)
    pair_keys = [np.sort(np.asarray(pairs)[:, 0] * 60 + np.asarray(pairs)[:, 1])
                 for pairs in (raw['pairs'], data.interactions()[0])]
    assert np.array_equal(*pair_keys)
    assert raw['path'] is None and raw['given'] is None and set(raw['features']) == {'a', 'b'}
    x = raw['features']['b']
    assert torch.allclose(data.features['b'], torch.from_numpy(x / np.linalg.norm(x, axis=1, keepdims=True)).float(),
                          atol=1e-6)
    assert torch.equal(data.ground_truth['item_group'], raw['ground_truth']['item_group'])
    assert len(data.cold_items) == round(0.25 * len(np.unique(raw['pairs'][:, 1])))
    assert data.info['split'] == 'cold' and data.info['cold_share'] == 0.25 and data.info['params']['block_dim'] == 8


def _auc(scores, labels):
    "ROC AUC by the rank-sum formula (ties get average ranks)."
    order = np.argsort(scores, kind='stable')
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    n_pos = labels.sum()
    return (ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(labels) - n_pos))


def test_informative_modality_predicts_interactions():
    data = synthetic(seed=5)
    gt = data.ground_truth
    observed = np.zeros((data.n_users, data.n_items), dtype=bool)
    pairs, _ = data.interactions()
    observed[pairs[:, 0], pairs[:, 1]] = True
    auc = np.zeros((3, 3))
    for m, name in enumerate(gt['modalities']):
        lo, hi = gt['blocks'][name]
        x = data.features[name].numpy().astype(np.float64)
        x1 = np.column_stack([x, np.ones(len(x))])
        # least-squares probe x^(m) -> v^(m): how much of block m the modality's features carry
        coef = np.linalg.solve(x1.T @ x1 + 1e-3 * np.eye(x1.shape[1]), x1.T @ gt['item_factors'][:, lo:hi].numpy())
        scores = gt['user_factors'][:, lo:hi].numpy() @ (x1 @ coef).T
        for g in range(3):
            items = (gt['item_group'] == g).numpy()
            auc[g, m] = _auc(scores[:, items].ravel(), observed[:, items].ravel())
    assert (np.diag(auc) > 0.8).all(), auc
    off = auc[~np.eye(3, dtype=bool)]
    assert (np.abs(off - 0.5) < 0.05).all(), auc
    assert np.diag(auc).min() > off.max() + 0.25


def test_recdataset_validates_itself():
    with pytest.raises(DataError, match='items 0..3'):
        RecDataset('toy', 2, 4, torch.tensor([[0, 4]]), torch.zeros(0, 2), torch.zeros(0, 2), {})
    with pytest.raises(DataError, match="modality 'text' has shape"):
        RecDataset('toy', 2, 4, torch.tensor([[0, 1]]), torch.zeros(0, 2), torch.zeros(0, 2), {'text': torch.ones(3, 2)})
    assert issubclass(DataError, ValueError)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        RecDataset('toy', 2, 4, torch.tensor([[0, 1]]), torch.zeros(0, 2), torch.zeros(0, 2), {}).csr()


def test_gappy_item_ids_without_features_are_mapped(tmp_path):
    "Issue 12: ids 0, 20, 100, 5000 are four items, not 5,001; info says so, and 'keep' keeps the id space."
    inter = 'userID\titemID\tx_label\n' + ''.join(f'{u}\t{i}\t{k}\n' for u in range(3)
                                                 for i, k in [(0, 0), (20, 0), (100, 1), (5000, 2)])
    folder = make_mmrec(tmp_path, inter, features={})
    data = load_dataset(folder)
    assert data.n_items == 4 and data.info['raw_item_ids'] == [0, 20, 100, 5000]
    assert data.info['item_ids'].startswith('mapped: 4 gappy ids (largest 5000)')
    assert data.test.tolist() == [[0, 3], [1, 3], [2, 3]]
    with pytest.raises(DataError, match="id 5000 is far beyond the 4 distinct items"):
        load_dataset(folder, item_ids='keep')                     # 4,997 phantom items: refused
    sparse = make_mmrec(tmp_path, inter.replace('\t5000\t', '\t300\t'), features={}, name='sparse')
    assert load_dataset(sparse, item_ids='keep').n_items == 301   # kept as asked: 297 items nobody rated
    contiguous = load_dataset(make_mmrec(tmp_path, name='plain', features={}))
    assert contiguous.n_items == 5 and 'item_ids' not in contiguous.info


def test_duplicates_of_a_given_split_are_counted_per_split(tmp_path):
    folder = make_mmrec(tmp_path, GOOD_INTER + '0\t1\t1\t1\n0\t0\t1\t2\n1\t3\t1\t2\n')
    with pytest.warns(DataWarning, match=r'train 0, valid 1, test 2; 2 repeat a pair of another split'):
        data = load_dataset(folder)
    assert data.info['duplicates_dropped'] == 3
    assert data.info['duplicates_dropped_by_split'] == {'train': 0, 'valid': 1, 'test': 2}


def write_books(folder, n_users=12, n_items=10, item_rows=None):
    "A RecBole folder books/: every user rates 6 items; .item with title, year, brand, tags and emb fields."
    folder.mkdir(exist_ok=True)
    rows = ['user_id:token\titem_id:token\trating:float\ttimestamp:float']
    rows += [f'u{u}\tb{(u + 3 * k) % n_items}\t{1 + k % 5}\t{100 * u + k}' for u in range(n_users) for k in range(6)]
    (folder / 'books.inter').write_text('\n'.join(rows) + '\n')
    items = ['item_id:token\ttitle:token_seq\tyear:float\tbrand:token\ttags:token_seq\temb:float_seq']
    items += [f'b{i}\tbook number {i}\t{1990 + i}\tpress{i % 3}\tx{i % 2} y{i % 4}\t{i} {-i}'
              for i in (range(n_items) if item_rows is None else item_rows)]
    (folder / 'books.item').write_text('\n'.join(items) + '\n')
    return folder / 'books.inter'


def test_recbole_item_fields_become_modalities(tmp_path, monkeypatch):
    monkeypatch.setenv('MMREC_CACHE', str(tmp_path / 'cache'))
    inter = write_books(tmp_path / 'books')
    data = load_dataset(inter)
    fields = data.info['item_fields']
    assert {name: field['as'] for name, field in fields.items()} == {
        'title': 'text', 'year': 'numeric', 'brand': 'one_hot', 'tags': 'multi_hot', 'emb': 'numeric'}
    assert fields['title']['text_model'] == 'all-MiniLM-L6-v2'
    assert {m: tuple(x.shape) for m, x in data.features.items()} == {
        'title': (10, 384), 'year': (10, 1), 'brand': (10, 3), 'tags': (10, 6), 'emb': (10, 2)}
    assert data.info['modalities']['year']['normalize'] == 'standard'       # z-scored: a norm of one number is its sign
    assert data.info['modalities']['title']['normalize'] == 'l2'
    assert data.features['year'].flatten().tolist() == pytest.approx(((np.arange(10) - 4.5) / np.arange(10).std()).tolist(),
                                                                    abs=1e-5)
    assert data.features['brand'].sum(1).eq(1).all() and data.titles[2] == 'book number 2'
    titles = load_dataset(inter, modalities=['title'], normalize=None).features['title']
    assert torch.allclose(titles, torch.from_numpy(embed_texts([f'book number {i}' for i in range(10)])), atol=1e-5)
    assert list(tmp_path.joinpath('cache').glob('text_*.npy'))                # cached like ml100k's titles
    chosen = load_dataset(inter, item_fields={'tags': 'skip', 'brand': 'skip', 'title': 'multi_hot'})
    assert sorted(chosen.features) == ['emb', 'title', 'year'] and chosen.features['title'].shape == (10, 12)
    assert chosen.info['item_fields']['tags'] == {'type': 'token_seq', 'as': 'skip', 'why': 'item_fields option'}


def test_recbole_catalogue_rules(tmp_path):
    inter = write_books(tmp_path / 'books', item_rows=range(8))               # b8, b9 have no .item row
    with pytest.raises(DataError, match=r"2 of the 10 items of books.inter have no row here"):
        load_dataset(inter, modalities=['year'])
    with pytest.warns(DataWarning, match='they get all-zero features'):
        data = load_dataset(inter, missing_items='zeros', modalities=['year', 'emb'], normalize=None)
    assert data.info['missing_items'] == {'count': 2, 'fallback': 'all-zero features'}
    assert data.features['year'][-2:].abs().sum() == 0 and data.features['year'][0, 0] == 1990
    inter = write_books(tmp_path / 'more', item_rows=range(12))              # b10, b11 never rated
    with pytest.raises(DataError, match=r"2 of its 12 items never occur in books.inter, which uses 10"):
        load_dataset(inter)
    assert load_dataset(inter, item_ids='keep', modalities=['year']).n_items == 12
    mapped = load_dataset(inter, item_ids='map', modalities=['year'], normalize=None)
    assert mapped.n_items == 10 and mapped.features['year'][:, 0].tolist() == [1990.0 + i for i in range(10)]


def test_recbole_tokens_are_stripped(tmp_path):
    (tmp_path / 'w.inter').write_text('user_id:token\titem_id:token\n'
                                      + ''.join(f'U{u}{" " if u == 0 and k == 1 else ""}\t{k}\n'
                                                for u in range(4) for k in range(5)))
    with pytest.warns(DataWarning, match=r"stripped surrounding whitespace from 1 token\(s\), the first at line 3"):
        data = load_dataset(tmp_path / 'w.inter')
    assert data.n_users == 4 and data.info['raw_user_ids'] == ['U0', 'U1', 'U2', 'U3']
