"""README.md is nbs/index.ipynb's markdown (tests/scripts/readme.py, `make readme`), and what it says about the
results layout and the test seed is what the code does."""
import sys
from pathlib import Path

from mmrec_nb import repro

sys.path.insert(0, str(Path(__file__).parent / 'scripts'))
import readme  # noqa: E402
from seeding import derived_seed  # noqa: E402


def test_readme_is_generated_from_the_index_notebook():
    assert readme.README.read_text(encoding='utf-8') == readme.render(), \
        'README.md differs from nbs/index.ipynb: edit the notebook, then run `make readme`'
    assert readme.main(['--check']) == 0


def test_render_keeps_markdown_cells_only(tmp_path):
    notebook = tmp_path / 'index.ipynb'
    notebook.write_text('{"cells": [{"cell_type": "markdown", "source": ["# Title\\n", "text\\n"]},'
                        ' {"cell_type": "code", "source": ["print(1)"]},'
                        ' {"cell_type": "markdown", "source": ["## Next"]}]}')
    assert readme.render(notebook) == readme.HEADER + '# Title\ntext\n\n## Next\n'


def test_the_documented_results_path_is_the_real_one(tmp_path):
    text = readme.README.read_text(encoding='utf-8')
    assert 'results/<profile>/<notebook>/<dataset>/<model>[/<variant>]/seed<k>.json' in text
    example = repro.result_path(tmp_path, 'full', 'metammf', 'ml100k', 'metammf_mf', 0, 'fusion=static')
    assert f'`results/{example.relative_to(tmp_path).as_posix()}`' in text
    plain = repro.result_path(tmp_path, 'quick', 'baselines', 'ml100k', 'bprmf', 2)
    assert plain.relative_to(tmp_path).as_posix() == 'quick/baselines/ml100k/bprmf/seed2.json'   # no variant: no folder
    for name in ('results/paper/<chapter>.json', 'results/claims/<chapter>.json', 'make book', 'make test'):
        assert name in text


def test_the_documented_seed_variable_is_the_one_read(monkeypatch):
    text = readme.README.read_text(encoding='utf-8')
    assert 'MMREC_TEST_SEED=3 make test' in text
    import seeding
    monkeypatch.setenv('MMREC_TEST_SEED', '3')
    assert seeding.seed_from_env() == 3
    monkeypatch.delenv('MMREC_TEST_SEED')
    assert seeding.seed_from_env() == 0                                       # the documented default
    assert derived_seed(0, 'a') != derived_seed(1, 'a') != derived_seed(1, 'b')
