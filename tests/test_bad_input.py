"""The bad-input table (issue 12): one row per broken data folder, the exception (or DataWarning) it must raise and
fragments of the message, which must name the right file, line or byte and value. A fragment starting with '!'
must NOT appear (e.g. pickle advice for a text file). Each row builds its folder in tmp_path."""
import pickle
import warnings

import numpy as np
import pytest

from mmrec_nb.data import DataError, DataWarning, load_dataset

# A valid MMRec interaction file: 4 users, 5 items (all used), every split non-empty.
GOOD_INTER = ('userID\titemID\trating\tx_label\n'
              '0\t0\t1\t0\n0\t1\t1\t0\n0\t2\t1\t1\n1\t1\t1\t0\n1\t3\t1\t2\n2\t4\t1\t0\n3\t0\t1\t0\n')
TEXT = np.arange(15, dtype=np.float32).reshape(5, 3) + 1


def mmrec(inter=GOOD_INTER, features=None, extra=None, name='toy'):
    "A builder of folder <name>/ with <name>.inter, feature files (default text 5 x 3) and extra files."
    def build(tmp_path):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        write(folder / f'{name}.inter', inter)
        for modality, x in ({'text': TEXT} if features is None else features).items():
            if isinstance(x, (bytes, str)):
                write(folder / f'{modality}_feat.npy', x)
            else:
                np.save(folder / f'{modality}_feat.npy', x, allow_pickle=x.dtype == object)
        for file, text in (extra or {}).items():
            write(folder / file, text)
        return folder
    return build


def recbole(inter, item=None):
    "A builder of books.inter (and books.item) in tmp_path; loads the .inter file."
    def build(tmp_path):
        write(tmp_path / 'books.inter', inter)
        if item is not None:
            write(tmp_path / 'books.item', item)
        return tmp_path / 'books.inter'
    return build


def write(path, content):
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


def with_nan(row, value=np.nan):
    x = np.ones((5, 3), dtype=np.float32)
    x[row, 1] = value
    return x


def latin1(prefix: str, word: str = 'café') -> tuple[bytes, int]:
    "UTF-8 `prefix`, then `word` in latin-1: the bytes and the offset of the first bad byte."
    data = prefix.encode() + word.encode('latin-1')
    return data, data.index(b'\xe9')


def two_inter(tmp_path):
    (tmp_path / 'two').mkdir()
    for name in ('a.inter', 'b.inter'):
        (tmp_path / 'two' / name).write_text(GOOD_INTER)
    return tmp_path / 'two'


LATE_LATIN1, LATE_AT = latin1('userID\titemID\tx_label\tnote\n' + '0\t0\t0\tok\n' * 3 + '1\t1\t2\t')
ITEM_LATIN1, ITEM_AT = latin1('item_id:token\ttitle:token_seq\n2\tDune\n3\t')
R_INTER = 'user_id:token\titem_id:token\n1\t2\n1\t3\n'      # two items, 2 and 3
R_ITEM = 'item_id:token\ttitle:token_seq\tyear:float\n2\tDune\t1965\n3\tEmma\t1815\n'
TINY_USERS = 'userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n1\t1\t2\n2\t4\t0\n3\t0\t0\n'
OBJECT_ROWS = np.array([[None] * 3] * 5, dtype=object)

# (id, builder, load_dataset options, expected exception or warning type, message fragments)
CASES = [
    # -- MMRec folders: reading the .inter file
    ('binary', mmrec(b'userID\titemID\x00\x01\x02\n'), {}, DataError, ['toy.inter', 'not a text file']),
    ('not-utf8', mmrec(b'userID\titemID\tx_label\n0\t\xff\t0\n'), {}, DataError,
     ['toy.inter', 'not UTF-8', 'byte 24 (line 2) is 0xff']),
    ('latin1-late-byte', mmrec(LATE_LATIN1), {}, DataError,
     ['toy.inter', f'byte {LATE_AT} (line 5) is 0xe9', 'latin-1']),
    ('empty', mmrec(''), {}, DataError, ['toy.inter', 'empty file']),
    ('header-only', mmrec('userID\titemID\tx_label\n'), {}, DataError, ['toy.inter', 'no data rows']),
    ('comma-separated', mmrec('userID,itemID,x_label\n0,0,0\n'), {}, DataError,
     ['toy.inter', 'expected tab-separated']),
    ('space-separated', mmrec('userID itemID x_label\n0 0 0\n'), {}, DataError,
     ['toy.inter', 'expected tab-separated']),
    ('missing-column', mmrec('userID\tx_label\n0\t0\n'), {}, DataError, ['toy.inter', 'missing column(s) itemID']),
    ('misnamed-column', mmrec('user_id\titemID\tx_label\n0\t0\t0\n'), {}, DataError,
     ['toy.inter', 'missing column(s) userID', 'found user_id']),
    ('non-integer-id', mmrec('userID\titemID\tx_label\n0\t0\t0\n0\ta3\t1\n'), {}, DataError,
     ['toy.inter', "line 3, column 'itemID'", "'a3' is not an integer id"]),
    ('fractional-id', mmrec('userID\titemID\tx_label\n0.5\t0\t0\n'), {}, DataError,
     ['toy.inter', "line 2, column 'userID'", 'not an integer']),
    ('negative-id', mmrec('userID\titemID\tx_label\n0\t0\t0\n0\t-2\t1\n'), {}, DataError,
     ['toy.inter', "line 3, column 'itemID'", 'negative id -2']),
    ('missing-cell', mmrec('userID\titemID\tx_label\n0\t0\t0\n1\n'), {}, DataError,
     ['toy.inter', "line 3, column 'itemID'"]),
    ('x-label-out-of-range', mmrec('userID\titemID\tx_label\n0\t0\t0\n0\t1\t3\n'), {}, DataError,
     ['toy.inter', "line 3, column 'x_label'", "'3' is not 0 (train), 1 (valid) or 2 (test)"]),
    ('x-label-word', mmrec('userID\titemID\tx_label\n0\t0\ttrain\n'), {}, DataError,
     ['toy.inter', "line 2, column 'x_label'"]),
    ('bad-timestamp', mmrec('userID\titemID\ttimestamp\tx_label\n0\t0\t12\t0\n0\t1\tnoon\t1\n'), {}, DataError,
     ['toy.inter', "line 3, column 'timestamp'", 'not a finite number']),
    ('inf-timestamp', mmrec('userID\titemID\ttimestamp\tx_label\n0\t0\tinf\t0\n'), {}, DataError,
     ['toy.inter', "line 2, column 'timestamp'", "'inf' is not a finite number"]),
    # -- MMRec folders: ids and the catalogue
    ('non-contiguous-users', mmrec('userID\titemID\tx_label\n0\t0\t0\n3\t1\t1\n3\t2\t2\n'), {}, DataError,
     ['toy.inter', "column 'userID' is not contiguous", 'first 1']),
    ('huge-user-id', mmrec('userID\titemID\tx_label\n0\t0\t0\n1000000000\t1\t1\n'), {}, DataError,
     ['toy.inter', 'not contiguous', 'the largest, 1000000000 at line 3, is far beyond the 2 rows']),
    ('id-beyond-features', mmrec('userID\titemID\tx_label\n0\t0\t0\n0\t7\t1\n0\t1\t2\n'), {}, DataError,
     ['toy.inter', "line 3, column 'itemID'", 'id 7 is beyond the 5 rows of text_feat.npy']),
    ('unused-feature-rows', mmrec(features={'text': np.ones((16, 3))}), {}, DataError,
     ['toy.inter', '5 distinct item ids are used, but text_feat.npy has 16 rows', "item_ids='map'"]),
    ('huge-item-id-kept', mmrec('userID\titemID\tx_label\n0\t0\t0\n0\t1000000000\t1\n', features={}),
     {'item_ids': 'keep'}, DataError, ['toy.inter', "line 3, column 'itemID'", 'id 1000000000 is far beyond']),
    ('unknown-item-ids-option', mmrec(), {'item_ids': 'compact'}, DataError,
     ["item_ids must be None, 'map' or 'keep'", "'compact'"]),
    ('items-tsv-beyond', mmrec(extra={'items.tsv': 'itemID\tname\n0\tzero\n9\tnine\n'}), {}, DataError,
     ['items.tsv', "line 3, column 'itemID'", 'beyond 5 items']),
    ('items-tsv-not-utf8', mmrec(extra={'items.tsv': b'itemID\tname\n0\tcaf\xe9\n'}), {}, DataError,
     ['items.tsv', 'not UTF-8', 'byte 17 (line 2) is 0xe9']),
    # -- MMRec folders: feature files
    ('feature-rows-differ', mmrec(features={'text': np.ones((5, 3)), 'image': np.ones((6, 2))}), {}, DataError,
     ['toy', 'disagree on the number of items', 'image_feat.npy', 'text_feat.npy']),
    ('nan-feature', mmrec(features={'text': with_nan(2)}), {}, DataError,
     ["toy/text_feat.npy: modality 'text' has NaN/inf values", 'first in row 2', '!toy.inter']),
    ('inf-feature', mmrec(features={'text': np.ones((5, 3)), 'audio_vggish': with_nan(4, np.inf)}), {}, DataError,
     ["audio_vggish_feat.npy: modality 'audio_vggish' has NaN", 'first in row 4', '!toy.inter']),
    ('feature-not-2d', mmrec(features={'text': np.ones(5)}), {}, DataError, ['text_feat.npy', 'must be 2-D']),
    ('feature-3d', mmrec(features={'text': np.ones((5, 3, 2))}), {}, DataError,
     ['text_feat.npy', 'must be 2-D', '(5, 3, 2)']),
    ('feature-corrupt', mmrec(features={'text': b'\x01\x02not a numpy file'}), {}, DataError,
     ['text_feat.npy', 'not a readable .npy', 'binary data of another format']),
    ('feature-is-text', mmrec(features={'image': '0.1 0.2 0.3\n0.4 0.5 0.6\n', 'text': TEXT}), {}, DataError,
     ['image_feat.npy', 'it holds text', "'0.1 0.2 0.3'", 'numpy.save', '!pickle', '!unsafe']),
    ('feature-is-pickle', mmrec(features={'text': pickle.dumps(TEXT.tolist())}), {}, DataError,
     ['text_feat.npy', 'a Python pickle', '!allow_pickle']),
    ('feature-object-dtype', mmrec(features={'text': OBJECT_ROWS}), {}, DataError,
     ['text_feat.npy', 'dtype object', '!allow_pickle']),
    ('feature-strings', mmrec(features={'text': np.full((5, 3), 'a')}), {}, DataError,
     ['text_feat.npy', 'must hold numbers', '<U1']),
    # -- MMRec folders: duplicates and splits
    ('duplicates-error', mmrec(GOOD_INTER + '0\t1\t1\t0\n0\t1\t1\t2\n'), {'duplicates': 'error'}, DataError,
     ['toy.inter', '2 duplicate (user, item) rows', 'first at line 9']),
    ('duplicates-per-split', mmrec(GOOD_INTER + '0\t1\t1\t1\n0\t0\t1\t2\n'), {'duplicates': 'error'}, DataError,
     ['toy.inter', 'train 0, valid 1, test 1; 2 repeat a pair of another split']),
    ('duplicates-dropped-warning', mmrec(GOOD_INTER + '3\t0\t1\t2\n'), {}, DataWarning,
     ['toy.inter: 1 duplicate', 'line 9', 'train 0, valid 0, test 1', 'kept the first']),
    ('unknown-duplicates-policy', mmrec(), {'duplicates': 'ignore'}, DataError,
     ["duplicates must be 'drop' or 'error'", "'ignore'"]),
    ('empty-given-split', mmrec('userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n1\t2\t0\n',
                                features={'text': np.ones((3, 3))}), {}, DataError,
     ['toy.inter', 'the test split is empty']),
    ('random-split-all-tiny', mmrec(TINY_USERS), {'split': 'random', 'item_ids': 'keep'}, DataError,
     ['toy.inter', 'the valid split is empty for every user', '>= 3 interactions']),
    ('unknown-modality', mmrec(), {'modalities': ['image']}, DataError,
     ['toy.inter', "unknown modality 'image'", 'available: text']),
    ('unknown-normalize', mmrec(), {'normalize': 'minmax'}, DataError, ["normalize must be", "'minmax'"]),
    ('unknown-normalize-in-dict', mmrec(), {'normalize': {'text': 'max'}}, DataError, ["normalize must be", "'max'"]),
    ('unknown-split', mmrec(), {'split': 'leave-one-out'}, DataError, ["split must be", "'leave-one-out'"]),
    ('temporal-without-time', mmrec(), {'split': 'temporal'}, DataError, ['toy.inter', 'needs timestamps']),
    ('bad-ratios', mmrec(), {'split': 'random', 'ratios': (0.5, 0.5, 0.5)}, DataError,
     ['ratios must be three non-negative shares summing to 1']),
    ('bad-cold-share', mmrec(), {'split': 'cold', 'cold_share': 1.5}, DataError, ['cold_share must be in (0, 1)']),
    ('unknown-option', mmrec(), {'shuffle': True}, TypeError, ["unknown option(s) ['shuffle']"]),
    # -- finding the data
    ('missing-path', lambda tmp_path: tmp_path / 'nope.inter', {}, DataError,
     ['nope.inter: no such dataset folder or .inter file']),
    ('two-inter-files', two_inter, {}, DataError, ["expected two.inter or exactly one .inter file", "'a.inter'"]),
    ('typo-in-name', lambda tmp_path: 'ML100K', {}, DataError,
     ["unknown dataset 'ML100K': did you mean 'ml100k'?", '!no data root', '!tried']),
    ('typo-in-name-no-data-root', lambda tmp_path: 'Synthetic', {'data_root': '/nonexistent/root'}, DataError,
     ["unknown dataset 'Synthetic': did you mean 'synthetic'?"]),
    ('unknown-name', lambda tmp_path: 'nosuchdata', {}, DataError,
     ["unknown dataset 'nosuchdata'", 'not ml100k or synthetic', 'set MMREC_DATA']),
    ('data-root-not-a-folder', lambda tmp_path: 'lastfm2k', {'data_root': '/nonexistent/root'}, DataError,
     ['/nonexistent/root (from the data_root argument) is not a folder']),
    # -- RecBole atomic files: the .inter file
    ('header-without-type', recbole('user_id:token\titem_id\n1\t2\n'), {}, DataError,
     ['books.inter', "'item_id' is not field:type"]),
    ('unknown-type', recbole('user_id:token\titem_id:string\n1\t2\n'), {}, DataError,
     ['books.inter', "'item_id:string'"]),
    ('missing-item-field', recbole('user_id:token\trating:float\n1\t2\n'), {}, DataError,
     ['books.inter', 'missing column(s) item_id']),
    ('empty-id', recbole('user_id:token\titem_id:token\n1\t2\n \t3\n'), {}, DataError,
     ['books.inter', "line 3, column 'user_id'", 'empty id']),
    ('recbole-bad-timestamp', recbole('user_id:token\titem_id:token\ttimestamp:float\n1\t2\tnoon\n'), {}, DataError,
     ['books.inter', "line 2, column 'timestamp'", "'noon' is not a finite number"]),
    ('recbole-temporal-without-time', recbole(R_INTER), {'split': 'temporal'}, DataError,
     ['books.inter', 'needs timestamps']),
    ('recbole-empty', recbole(''), {}, DataError, ['books.inter', 'empty file']),
    ('recbole-not-utf8', recbole(b'user_id:token\titem_id:token\n\xe91\t2\n'), {}, DataError,
     ['books.inter', 'byte 28 (line 2) is 0xe9']),
    ('recbole-duplicates-error', recbole(R_INTER + '1\t2\n'), {'duplicates': 'error'}, DataError,
     ['books.inter', '1 duplicate (user, item) rows', 'first at line 4']),
    ('recbole-random-split-empty', recbole(R_INTER), {}, DataError, ['books.inter', 'the valid split is empty']),
    ('recbole-stripped-tokens', recbole('user_id:token\titem_id:token\nU0\t2\nU0 \t3\n U1\t2\n'), {}, DataWarning,
     ['books.inter: stripped surrounding whitespace from 2 token(s)', "line 3, column 'user_id': 'U0 '"]),
    # -- RecBole atomic files: the .item file and its modalities
    ('ragged-float-seq', recbole(R_INTER, 'item_id:token\temb:float_seq\n2\t1 2 3\n3\t1 2\n'), {}, DataError,
     ['books.item', "line 3, column 'emb'", '2 values, expected 3']),
    ('item-listed-twice', recbole(R_INTER, 'item_id:token\tname:token_seq\n2\ta\n2\tb\n'), {}, DataError,
     ['books.item', "line 3, column 'item_id'", 'listed twice']),
    ('item-missing-from-item-file', recbole(R_INTER, 'item_id:token\ttitle:token_seq\n2\tDune\n'), {}, DataError,
     ['books.item', '1 of the 2 items of books.inter have no row here', "first '3', books.inter line 3",
      "missing_items='zeros'"]),
    ('item-missing-fallback-warns', recbole(R_INTER, 'item_id:token\tyear:float\n2\t1965\n'),
     {'missing_items': 'zeros'}, DataWarning, ['books.item: 1 of the 2 items', 'all-zero features']),
    ('unknown-missing-items-option', recbole(R_INTER, R_ITEM), {'missing_items': 'skip'}, DataError,
     ["missing_items must be 'error' or 'zeros'", "'skip'"]),
    ('item-without-interactions', recbole(R_INTER, R_ITEM + '9\tUnread\t2001\n'), {}, DataError,
     ['books.item', '1 of its 3 items never occur in books.inter, which uses 2', "first '9', line 4",
      "item_ids='keep'"]),
    ('item-file-without-item-id', recbole(R_INTER, 'id:token\ttitle:token_seq\n2\tDune\n'), {}, DataError,
     ['books.item', 'missing column(s) item_id']),
    ('item-header-without-type', recbole(R_INTER, 'item_id:token\ttitle\n2\tDune\n'), {}, DataError,
     ['books.item', "header column 'title' is not field:type"]),
    ('item-empty-id', recbole(R_INTER, 'item_id:token\tyear:float\n2\t1\n\t2\n'), {}, DataError,
     ['books.item', "line 3, column 'item_id'", 'empty id']),
    ('item-header-only', recbole(R_INTER, 'item_id:token\tyear:float\n'), {}, DataError,
     ['books.item', 'a header but no data rows']),
    ('item-not-utf8', recbole(R_INTER, ITEM_LATIN1), {}, DataError,
     ['books.item', f'byte {ITEM_AT} (line 3) is 0xe9']),
    ('item-float-not-a-number', recbole(R_INTER, 'item_id:token\tyear:float\n2\t1965\n3\tn/a\n'), {}, DataError,
     ['books.item', "line 3, column 'year'", "'n/a' is not a finite number"]),
    ('item-float-empty', recbole(R_INTER, 'item_id:token\tyear:float\n2\t\n3\t1815\n'), {}, DataError,
     ['books.item', "line 2, column 'year'", "'' is not a finite number"]),
    ('item-float-seq-inf', recbole(R_INTER, 'item_id:token\temb:float_seq\n2\t1 inf\n3\t0 1\n'), {}, DataError,
     ['books.item', "line 2, column 'emb'", "'1 inf' is not finite numbers"]),
    ('item-fields-unknown-field', recbole(R_INTER, R_ITEM), {'item_fields': {'colour': 'one_hot'}}, DataError,
     ['books.item', "item_fields names ['colour']", 'title, year']),
    ('item-fields-unknown-role', recbole(R_INTER, R_ITEM), {'item_fields': {'year': 'image'}}, DataError,
     ['books.item', "item_fields names ['image']", 'not a role in']),
    ('item-unknown-modality', recbole(R_INTER, R_ITEM), {'modalities': ['genre']}, DataError,
     ['books.inter', "unknown modality 'genre'", 'available: title, year']),
    ('item-stripped-tokens', recbole(R_INTER, 'item_id:token\tbrand:token\n2\tacme \n3 \tacme\n'), {}, DataWarning,
     ['books.item: stripped surrounding whitespace from 2 token(s)', "line 3, column 'item_id': '3 '"]),
    ('item-text-field-unknown-role', recbole(R_INTER, R_ITEM), {'item_fields': {'title': 'bag'}}, DataError,
     ["item_fields names ['bag']"]),
]


def test_the_table_is_large_and_unique():
    assert len(CASES) >= 60 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize('case', CASES, ids=[case[0] for case in CASES])
def test_bad_input(tmp_path, monkeypatch, case):
    _, build, options, expected, fragments = case
    monkeypatch.setenv('MMREC_DATA', str(tmp_path))   # a bare name looks in this empty data root
    target = build(tmp_path)
    if issubclass(expected, Warning):
        with pytest.warns(expected) as caught:
            try:
                load_dataset(target, **options)
            except DataError:
                pass  # tiny folders may not split; the warning came first
        message = ' | '.join(str(w.message) for w in caught if issubclass(w.category, expected))
    else:
        with pytest.raises(expected) as caught, warnings.catch_warnings():
            warnings.simplefilter('ignore', DataWarning)   # a row about an error may warn on its way there
            load_dataset(target, **options)
        message = str(caught.value)
    for fragment in fragments:
        if fragment.startswith('!'):
            assert fragment[1:] not in message, (fragment, message)
        else:
            assert fragment in message, (fragment, message)
