"""Tests of mmrec_nb.data / mmrec_nb.sources / mmrec_nb.synthetic: bad input, real counts, split rules."""
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


def with_nan(row, value=np.nan):
    x = np.ones((5, 3), dtype=np.float32)
    x[row, 1] = value
    return x


# (id, inter file contents, features or None, load_dataset options, words the message must contain)
BAD_MMREC = [
    ('binary', b'userID\titemID\x00\x01\x02\n', None, {}, ['toy.inter', 'not a text file']),
    ('not-utf8', b'userID\titemID\tx_label\n0\t\xff\t0\n', None, {}, ['toy.inter', 'not UTF-8']),
    ('empty', '', None, {}, ['toy.inter', 'empty file']),
    ('header-only', 'userID\titemID\tx_label\n', None, {}, ['toy.inter', 'no data rows']),
    ('comma-separated', 'userID,itemID,x_label\n0,0,0\n', None, {}, ['toy.inter', 'expected tab-separated']),
    ('space-separated', 'userID itemID x_label\n0 0 0\n', None, {}, ['toy.inter', 'expected tab-separated']),
    ('missing-column', 'userID\tx_label\n0\t0\n', None, {}, ['toy.inter', 'missing column(s) itemID']),
    ('misnamed-column', 'user_id\titemID\tx_label\n0\t0\t0\n', None, {},
     ['toy.inter', 'missing column(s) userID', 'found user_id']),
    ('non-integer-id', 'userID\titemID\tx_label\n0\t0\t0\n0\ta3\t1\n', None, {},
     ['toy.inter', "line 3, column 'itemID'", "'a3' is not an integer id"]),
    ('fractional-id', 'userID\titemID\tx_label\n0.5\t0\t0\n', None, {},
     ['toy.inter', "line 2, column 'userID'", 'not an integer']),
    ('negative-id', 'userID\titemID\tx_label\n0\t0\t0\n0\t-2\t1\n', None, {},
     ['toy.inter', "line 3, column 'itemID'", 'negative id -2']),
    ('missing-cell', 'userID\titemID\tx_label\n0\t0\t0\n1\n', None, {}, ['toy.inter', "line 3, column 'itemID'"]),
    ('id-beyond-features', 'userID\titemID\tx_label\n0\t0\t0\n0\t7\t1\n0\t1\t2\n', None, {},
     ['toy.inter', "line 3, column 'itemID'", 'id 7 is beyond the 5 rows of text_feat.npy']),
    ('feature-rows-differ', GOOD_INTER, {'text': np.ones((5, 3)), 'image': np.ones((6, 2))}, {},
     ['toy', 'disagree on the number of items', 'image_feat.npy', 'text_feat.npy']),
    ('nan-feature', GOOD_INTER, {'text': with_nan(2)}, {}, ['toy.inter', "modality 'text'", 'first in row 2']),
    ('inf-feature', GOOD_INTER, {'text': np.ones((5, 3)), 'audio_vggish': with_nan(4, np.inf)}, {},
     ['toy.inter', "modality 'audio_vggish'", 'first in row 4']),
    ('feature-not-2d', GOOD_INTER, {'text': np.ones(5)}, {}, ['text_feat.npy', 'must be 2-D']),
    ('feature-corrupt', GOOD_INTER, {'text': b'not a numpy file'}, {}, ['text_feat.npy', 'not a readable .npy']),
    ('duplicates-error', GOOD_INTER + '0\t1\t1\t0\n0\t1\t1\t2\n', None, {'duplicates': 'error'},
     ['toy.inter', '2 duplicate (user, item) rows', 'first at line 9']),
    ('x-label-out-of-range', 'userID\titemID\tx_label\n0\t0\t0\n0\t1\t3\n', None, {},
     ['toy.inter', "line 3, column 'x_label'", "'3' is not 0 (train), 1 (valid) or 2 (test)"]),
    ('x-label-word', 'userID\titemID\tx_label\n0\t0\ttrain\n', None, {},
     ['toy.inter', "line 2, column 'x_label'"]),
    ('empty-given-split', 'userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n1\t2\t0\n', None, {},
     ['toy.inter', 'the test split is empty']),
    ('non-contiguous-users', 'userID\titemID\tx_label\n0\t0\t0\n3\t1\t1\n3\t2\t2\n', None, {},
     ['toy.inter', "column 'userID' is not contiguous", 'first 1']),
    ('bad-timestamp', 'userID\titemID\ttimestamp\tx_label\n0\t0\t12\t0\n0\t1\tnoon\t1\n', None, {},
     ['toy.inter', "line 3, column 'timestamp'", 'not a finite number']),
    ('unknown-modality', GOOD_INTER, None, {'modalities': ['image']},
     ['toy.inter', "unknown modality 'image'", 'available: text']),
    ('unknown-normalize', GOOD_INTER, None, {'normalize': 'minmax'}, ["normalize must be", "'minmax'"]),
    ('unknown-split', GOOD_INTER, None, {'split': 'leave-one-out'}, ["split must be", "'leave-one-out'"]),
    ('temporal-without-time', GOOD_INTER, None, {'split': 'temporal'}, ['toy.inter', 'needs timestamps']),
    ('random-split-all-tiny', 'userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n1\t1\t2\n2\t4\t0\n3\t0\t0\n', None,
     {'split': 'random'}, ['toy.inter', 'the valid split is empty for every user', '>= 3 interactions']),
]


@pytest.mark.parametrize('case', BAD_MMREC, ids=[c[0] for c in BAD_MMREC])
def test_bad_mmrec_input(tmp_path, case):
    _, inter, features, options, words = case
    folder = make_mmrec(tmp_path, inter, features)
    with pytest.raises(DataError) as caught:
        load_dataset(folder, **options)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


# (id, .inter text, .item text or None, words)
BAD_RECBOLE = [
    ('header-without-type', 'user_id:token\titem_id\n1\t2\n', None, ['books.inter', "'item_id' is not field:type"]),
    ('unknown-type', 'user_id:token\titem_id:string\n1\t2\n', None, ['books.inter', "'item_id:string'"]),
    ('missing-item-field', 'user_id:token\trating:float\n1\t2\n', None, ['books.inter', 'missing column(s) item_id']),
    ('empty-id', 'user_id:token\titem_id:token\n1\t2\n \t3\n', None, ['books.inter', "line 3, column 'user_id'", 'empty id']),
    ('ragged-float-seq', 'user_id:token\titem_id:token\n1\t2\n',
     'item_id:token\temb:float_seq\n2\t1 2 3\n3\t1 2\n', ['books.item', "line 3, column 'emb'", '2 values, expected 3']),
    ('item-listed-twice', 'user_id:token\titem_id:token\n1\t2\n', 'item_id:token\tname:token_seq\n2\ta\n2\tb\n',
     ['books.item', "line 3, column 'item_id'", 'listed twice']),
]


@pytest.mark.parametrize('case', BAD_RECBOLE, ids=[c[0] for c in BAD_RECBOLE])
def test_bad_recbole_input(tmp_path, case):
    _, inter, item, words = case
    (tmp_path / 'books.inter').write_text(inter)
    if item is not None:
        (tmp_path / 'books.item').write_text(item)
    with pytest.raises(DataError) as caught:
        load_dataset(tmp_path / 'books.inter')
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


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
    data = load_dataset(folder, normalize={'image': None})
    assert (data.n_users, data.n_items) == (4, 6)              # item 5: features, no interactions
    assert set(data.features) == {'image', 'text', 'audio_vggish'}
    assert data.info['modalities']['image']['normalize'] is None
    assert torch.allclose(data.features['audio_vggish'].norm(dim=1), torch.ones(6))
    assert data.info['modalities']['audio_vggish']['raw_median_row_norm'] == pytest.approx(100 * 3 ** 0.5)
    assert data.titles == ['zero', '', '', '', 'four', '']
    assert data.train.tolist() == [[0, 0], [0, 1], [1, 1], [2, 4], [3, 0]]
    assert data.valid.tolist() == [[0, 2]] and data.test.tolist() == [[1, 3]]
    assert load_dataset(folder / 'toy.inter', modalities='text').features.keys() == {'text'}
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
