"""The book check (tests/scripts/book_check.py) on hand-made pages shaped like myst-nb's HTML: every rule fires on
a bad snippet and stays quiet on a good one; and the nbdev reader of the book (tests/scripts/book/nbdev_cells.py)."""
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent / 'scripts'))
sys.path.insert(0, str(Path(__file__).parent / 'scripts' / 'book'))
import book_check  # noqa: E402
import nbdev_cells  # noqa: E402

TEMP = book_check.temp_path_pattern(['/home/reader', '/srv/checkout'])
LABELS = {'eval-memory', 'sparsity'}


def page(body: str) -> str:
    return f'<html><body><nav>#| not in the article</nav><article class="bd-article">{body}</article></body></html>'


def code_cell(source: str, output: str = '', tags: str = '') -> str:
    classes = 'cell ' + ' '.join(f'tag_{tag}' for tag in tags.split()) + ' docutils container'
    source_html = ('<div class="cell_input docutils container"><div class="highlight-ipython3 notranslate">'
                   f'<div class="highlight"><pre><span></span>{source}</pre></div></div></div>')
    if 'hide-input' in tags:
        source_html = f'<details class="admonition hide above-input"><summary>Show</summary>{source_html}</details>'
    output_html = (f'<div class="cell_output docutils container">{output}</div>' if output else '')
    return f'<div class="{classes}">{source_html}{output_html}</div>'


def stream(text: str) -> str:
    return ('<div class="output stream highlight-myst-ansi notranslate"><div class="highlight">'
            f'<pre><span></span>{text}</pre></div></div>')


def display_math(latex: str, number: str = '(1)') -> str:
    return (f'<div class="math notranslate nohighlight" id="equation-x"><span class="eqno">{number}'
            f'<a class="headerlink" href="#equation-x">#</a></span>\\[{latex}\\]</div>')


def table(*rows) -> str:
    body = ''.join('<tr>' + ''.join(f'<td>{cell}</td>' for cell in row) + '</tr>' for row in rows)
    return f'<div class="cell_output"><div class="output text_html"><table class="dataframe">{body}</table></div></div>'


LONG = 'x = ' + ' + '.join(['value'] * 16)      # 132 characters
WIDE = r'\mathcal L = ' + ' + '.join(rf'\alpha_{k} \|\mathbf w_{k}\|^2' for k in range(12))
BROKEN = r'\begin{aligned}' + r' \\ '.join(rf'&+ \alpha_{k} \|\mathbf w_{k}\|^2' for k in range(12)) + r'\end{aligned}'
BAD = {
    'directive': code_cell('#| export\ndef f(): pass'),
    'long-code-line': code_cell(LONG),
    'wide-equation': display_math(WIDE),
    'code-in-math': display_math(r'\text{TRITON\_INTERPRET} = 1') + '<span class="math">\\(`x`\\)</span>',
    'dollar-in-output': code_cell('show()', stream(r'the effect grows with $\sigma_z$ at $\rho = 0$')),
    'eq-label': code_cell('show()', stream('peak memory as in eq. eval-memory')),
    'temp-path': code_cell('run()', stream('wrote /tmp/tmpa1b2c3d4/results/seed0.json')),
    'nan-in-table': table(('model', 'Recall@20'), ('VBPR', 'NaN'), ('MetaMMF', '&lt;NA&gt;')),
    'long-output-line': code_cell('print(row)', stream('-' * 120)),
}
GOOD = {
    'directive': code_cell('def f(): pass  # see the cell above for #|'),
    'long-code-line': code_cell('x = (value + value\n     + value)') + code_cell(LONG, tags='hide-input')
    + code_cell('print(1)', stream('=' * 95)),
    'wide-equation': display_math(BROKEN) + display_math(r'\hat s_{ui} = \mathbf e_u^\top \mathbf e_i'),
    'code-in-math': display_math(r'\mathrm{TRITON}_{\mathrm{interpret}} = 1, \quad s_{ui}')
    + '<p>set <code>TRITON_INTERPRET=1</code></p>',
    'dollar-in-output': code_cell('show()', stream('the effect grows with σ_z, costs $5 and $6'))
    + code_cell('show()', '<div class="output text_markdown"><p>grows with '
                '<span class="math notranslate nohighlight">\\(\\sigma_z\\)</span></p></div>'),
    'eq-label': code_cell('show()', stream('peak memory as in the streaming bound (eq. 15)'))
    + '<p>by eq. <a href="#equation-eval-memory">(15)</a></p>',
    'temp-path': code_cell('run()', stream('wrote results/full/metammf/ml100k/seed0.json; see tmp_results')),
    'nan-in-table': table(('model', 'Recall@20'), ('VBPR', '—'), ('NaN-robust MF', '0.41')),
    'long-output-line': code_cell('print(row)', stream('-' * 90)),
}


def findings(body: str) -> list:
    return book_check.check_page('nbs/x', page(body), LABELS, TEMP)


@pytest.mark.parametrize('rule', book_check.RULES)
def test_every_rule_fires_on_a_bad_snippet_and_only_that_rule(rule):
    found = findings(BAD[rule])
    assert {finding.rule for finding in found} == {rule}, found
    assert all(finding.page == 'nbs/x' for finding in found)


@pytest.mark.parametrize('rule', book_check.RULES)
def test_every_rule_is_quiet_on_a_good_snippet(rule):
    assert findings(GOOD[rule]) == []


def test_counts_per_rule_the_findings_and_the_exit_status(tmp_path):
    (tmp_path / 'html' / 'nbs').mkdir(parents=True)
    (tmp_path / '_toc.yml').write_text('format: jb-book\nroot: nbs/index\nchapters:\n- file: nbs/a\n'
                                       '  sections:\n  - file: nbs/b.ipynb\n- file: nbs/new\n')
    (tmp_path / 'html' / 'nbs' / 'index.html').write_text(page(GOOD['long-code-line']))
    (tmp_path / 'html' / 'nbs' / 'a.html').write_text(page(BAD['temp-path'] + BAD['long-output-line']))
    (tmp_path / 'html' / 'nbs' / 'b.html').write_text(page(BAD['nan-in-table']))
    assert book_check.toc_pages(tmp_path / '_toc.yml') == ['nbs/index', 'nbs/a', 'nbs/b', 'nbs/new']
    found, missing = book_check.run(tmp_path / 'html', tmp_path / '_toc.yml', extra_paths=[])
    assert missing == ['nbs/new']
    assert sorted((finding.rule, finding.page) for finding in found) == [
        ('long-output-line', 'nbs/a'), ('nan-in-table', 'nbs/b'), ('nan-in-table', 'nbs/b'), ('temp-path', 'nbs/a')]

    class Out(list):
        def write(self, text):
            self.append(text)
    out = Out()
    assert book_check.report(found, missing, out=out) == 1
    text = ''.join(out)
    assert 'temp-path 1, nan-in-table 2, long-output-line 1 (report only)' in text
    assert 'missing page: nbs/new' in text and 'FAILED (4 findings)' in text
    only_warnings = [finding for finding in found if finding.rule in book_check.REPORT_ONLY]
    assert book_check.report(only_warnings, [], out=Out()) == 0


def test_visual_width_counts_printed_characters():
    assert book_check.visual_width(r'\mathcal L_{\mathrm{BPR}}') == pytest.approx(1 + 0.7 * 3)
    assert book_check.visual_width(r'a \qquad b') == 6
    assert book_check.equation_lines(r'\begin{aligned} a &= b \\ &= c \end{aligned}') == [
        r'\begin{aligned} a &= b ', r' &= c \end{aligned}']
    # a matrix is one block however many rows it has
    assert len(book_check.equation_lines(r'E = \begin{bmatrix} a \\ b \end{bmatrix}')) == 1


def test_the_reader_hides_nbdev_machinery_and_keeps_the_code_and_other_tags():
    cells = [nbformat.v4.new_code_cell('#| default_exp evaluate'),
             nbformat.v4.new_code_cell('#| hide\nimport torch'),
             nbformat.v4.new_code_cell('#| export\ndef f(x):\n    return x + 1'),
             nbformat.v4.new_code_cell('#| export\nG = 1', metadata={'tags': ['show-input']}),
             nbformat.v4.new_code_cell('#| slow\nassert f(1) == 2'),
             nbformat.v4.new_code_cell('profile = "quick"', metadata={'tags': ['parameters']}),
             nbformat.v4.new_markdown_cell('#| not a directive in markdown')]
    text = nbformat.writes(nbformat.v4.new_notebook(cells=cells))
    read = nbdev_cells.read_notebook(text).cells
    assert [cell.source for cell in read] == ['', 'import torch', 'def f(x):\n    return x + 1', 'G = 1',
                                              'assert f(1) == 2', 'profile = "quick"',
                                              '#| not a directive in markdown']
    assert [cell.metadata.get('tags', []) for cell in read] == [
        ['remove-cell'], ['remove-cell'], ['hide-input'], ['show-input'], [], ['parameters'], []]
