"""The book check: what a reader would meet on the built pages that the build itself does not fail on.

Reads every page that _toc.yml lists (so a new chapter is checked from its first commit) from the built HTML
(_build/html) and reports, per rule, each page and snippet:

  directive         a rendered line that starts with `#|` (nbdev machinery on the page)
  long-code-line    a line over 88 characters in a visible code cell or code block (folded `hide-input`
                    cells and removed cells are exempt; outputs have their own rules)
  wide-equation     a display equation (or one line of it, between `\\\\`) wider than the column, estimated
                    from its LaTeX as printed characters (see `visual_width`)
  code-in-math      backticks or an escaped underscore (`TRITON\\_INTERPRET`) inside math: code set as math
  dollar-in-output  `$...$` in an output: math that was printed as text instead of rendered
  eq-label          `eq. <label>` (or a literal {eq} role) where a reader should see a number
  temp-path         an absolute temporary or home path in an output (/tmp/..., the home folder, the build's root)
  nan-in-table      a table cell that reads NaN, nan, <NA>, NaT or None (write "—" where there is no value)
  long-output-line  (report only) an output line over 100 characters

Usage: python tests/scripts/book_check.py [--html _build/html] [--toc _toc.yml] [--limit N]
Exits 1 when a rule that is not report-only finds anything. `make book` runs it after the build.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from bs4 import BeautifulSoup, Tag

ROOT = Path(__file__).resolve().parents[2]
MAX_CODE = 88
MAX_OUTPUT = 100
# What fits beside an equation number in the text column at 1280 px, in printed characters of MathJax's font
# (issue 11 measured 24 display equations cut under their numbers; this estimate puts 23 above 55, among them
# each one the issue names).
MAX_EQUATION = 55
RULES = ('directive', 'long-code-line', 'wide-equation', 'code-in-math', 'dollar-in-output', 'eq-label',
         'temp-path', 'nan-in-table', 'long-output-line')
REPORT_ONLY = frozenset({'long-output-line'})
MISSING = {'NaN', 'nan', '<NA>', 'NaT', 'None'}


@dataclass(frozen=True)
class Finding:
    rule: str
    page: str
    snippet: str

    def __str__(self):
        return f'{self.rule}: {self.page}: {self.snippet}'


def toc_pages(toc: Path) -> list[str]:
    "Every file that _toc.yml lists, in reading order (root first), without suffix."
    tree = yaml.safe_load(toc.read_text(encoding='utf-8'))
    pages = [tree['root']]

    def walk(node):
        if isinstance(node, dict):
            if 'file' in node:
                pages.append(node['file'])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk({key: value for key, value in tree.items() if key != 'root'})
    return [str(Path(page).with_suffix('')) for page in pages]


def _short(text: str, width: int = 110) -> str:
    text = ' '.join(text.split())
    return text if len(text) <= width else text[:width - 1] + '…'


# --- equations --------------------------------------------------------------------------------------------
_ZERO = r'left|right|big|Big|bigg|Bigg|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|displaystyle|textstyle|' \
        r'scriptstyle|mathcal|mathbf|mathrm|mathbb|mathit|mathsf|mathtt|boldsymbol|bm|text|textrm|textit|' \
        r'textbf|operatorname|mathop|limits|nolimits|label|nonumber|notag|tag|begin|end|hat|bar|tilde|vec|' \
        r'overline|underline|widehat|widetilde|dot|ddot|sqrt|frac|tfrac|dfrac|mathopen|mathclose|phantom'
_SPACE = {'qquad': 4, 'quad': 2, ',': 0, ';': 0.5, ':': 0.5, '!': 0, ' ': 0.5}
_BREAKING = ('aligned', 'align', 'multline', 'split', 'gathered', 'gather', 'cases', 'array', 'matrix',
             'pmatrix', 'bmatrix')


def visual_width(latex: str) -> float:
    """About how many characters an equation line prints: `\\alpha` is one, `\\mathcal{U}` one, `\\qquad` four,
    `\\frac{a}{bc}` counts both parts (an overestimate), sub- and superscripts count as 0.7 of a character."""
    latex = re.sub(r'\\(?:label|tag|begin|end)\{[^}]*\}', '', latex)
    latex = re.sub(r'\\(?:left|right)\s*\\?[.()\[\]|{}]', '|', latex)
    width = 0.0
    small = 0
    i = 0
    while i < len(latex):
        char = latex[i]
        if char == '\\':
            match = re.match(r'\\([A-Za-z]+|.)', latex[i:])
            name = match.group(1)
            i += len(match.group(0))
            if name in _SPACE:
                width += _SPACE[name]
            elif not re.fullmatch(_ZERO, name):
                width += 0.7 if small else 1
            continue
        if char in '^_':
            # a script is the next group or character
            small += 1
            if i + 1 < len(latex) and latex[i + 1] == '{':
                depth, j = 0, i + 1
                while j < len(latex):
                    depth += {'{': 1, '}': -1}.get(latex[j], 0)
                    if depth == 0:
                        break
                    j += 1
                width += 0.7 * visual_width(latex[i + 2:j])
                i = j + 1
            else:
                nxt = re.match(r'\\[A-Za-z]+|.', latex[i + 1:])
                if nxt:
                    width += 0.7 if not re.fullmatch(_ZERO, nxt.group(0)[1:]) else 0
                    i += 1 + len(nxt.group(0))
                else:
                    i += 1
            small -= 1
            continue
        if char in '{}&':
            i += 1
            continue
        if char.isspace():
            i += 1
            continue
        width += 0.7 if small else 1
        i += 1
    return width


_BLOCK = re.compile(r'\\begin\{(bmatrix|pmatrix|vmatrix|Bmatrix|matrix|smallmatrix|cases|array|substack)\}'
                    r'((?:(?!\\begin\{).)*?)\\end\{\1\}', re.S)


def equation_lines(latex: str) -> list[str]:
    """The printed lines of a display equation: split at `\\\\` and `\\newline`, except inside a matrix or
    `cases`, which prints as one block as wide as its widest row (innermost blocks first)."""
    while match := _BLOCK.search(latex):
        rows = re.split(r'\\\\', match.group(2))
        width = max(visual_width(row) for row in rows) + 2
        latex = latex[:match.start()] + 'M' * round(width) + latex[match.end():]
    return [line for line in re.split(r'\\\\|\\newline', latex) if line.strip()]


def _equation_source(div: Tag) -> str:
    text = ''.join(node if isinstance(node, str) else '' for node in div.children)
    text = text.strip()
    for start, end in (('\\[', '\\]'), ('$$', '$$')):
        if text.startswith(start) and text.endswith(end):
            text = text[len(start):-len(end)]
    return text.strip()


# --- the page ---------------------------------------------------------------------------------------------
def _folded(cell: Tag) -> bool:
    classes = set(cell.get('class', []))
    return bool(classes & {'tag_hide-input', 'tag_hide-cell'}) or cell.find('details') is not None


def _text_without_math(node: Tag) -> str:
    copy = BeautifulSoup(str(node), 'html.parser')
    for math in copy.select('.math'):
        math.decompose()
    return copy.get_text()


def _prose(article: Tag) -> Tag:
    "The page without its code cells and code blocks: what the reader reads as text."
    copy = BeautifulSoup(str(article), 'html.parser')
    for node in copy.select('div.cell, pre, .math'):
        node.decompose()
    return copy


def temp_path_pattern(extra: list[str]) -> re.Pattern:
    parts = [r'/tmp/', r'/var/tmp/', r'/var/folders/', r'/private/var/', r'/home/[^/\s]+/', r'/root/',
             r'/Users/[^/\s]+/', r'[A-Za-z]:\\Users\\', r'pytest-of-[^/\s]+']
    parts += [re.escape(path.rstrip('/')) + r'(?:/|\b)' for path in extra if path and path != '/']
    return re.compile('|'.join(parts))


DOLLAR = re.compile(r'(?<![\\$])\$(?=[^\s$])[^$\n]{1,200}?(?<=[^\s\\])\$(?!\d)')


def check_page(page: str, html: str, labels: set[str], temp_paths: re.Pattern) -> list[Finding]:
    soup = BeautifulSoup(html, 'html.parser')
    article = soup.find('article') or soup.find('main') or soup
    found: list[Finding] = []

    def add(rule, snippet):
        found.append(Finding(rule, page, _short(snippet)))

    # directives and long lines in code: cell inputs and code blocks outside cells
    for pre in article.find_all('pre'):
        output = pre.find_parent('div', class_='cell_output')
        text = pre.get_text()
        for line in text.splitlines():
            if line.lstrip().startswith('#|'):
                add('directive', line)
        if output is not None:
            for line in text.splitlines():
                if len(line.expandtabs()) > MAX_OUTPUT:
                    add('long-output-line', f'{len(line)} chars: {line}')
            continue
        cell = pre.find_parent('div', class_='cell')
        if cell is not None and _folded(cell):
            continue
        for line in text.splitlines():
            if len(line.expandtabs()) > MAX_CODE:
                add('long-code-line', f'{len(line)} chars: {line}')

    # display equations
    for div in article.select('div.math'):
        latex = _equation_source(div)
        eqno = div.find('span', class_='eqno')
        number = eqno.get_text().strip('#¶ \n') if eqno else ''
        lines = equation_lines(latex)
        widest = max((visual_width(line) for line in lines), default=0)
        if widest > MAX_EQUATION:
            add('wide-equation', f'{number or "(unnumbered)"} ~{widest:.0f} chars wide: {latex}')
    for math in article.select('.math'):
        latex = math.get_text()
        if '`' in latex or re.search(r'[A-Za-z0-9]\\_', latex):
            add('code-in-math', latex)

    # outputs
    for output in article.select('div.cell_output'):
        text = _text_without_math(output)
        for match in DOLLAR.finditer(text):
            add('dollar-in-output', text[max(0, match.start() - 30):match.end() + 30])
        for match in temp_paths.finditer(text):
            add('temp-path', text[max(0, match.start() - 40):match.end() + 50])

    # labels printed where numbers belong: outputs and prose
    label_words = '|'.join(sorted((re.escape(label) for label in labels), key=len, reverse=True)) or '(?!)'
    eq_label = re.compile(r'\b(?:[Ee]qs?\.|[Ee]quations?)\s*\(?\s*(?:' + label_words + r'|[a-z][\w]*-[\w-]+)\b'
                          r'|\{eq\}')
    texts = [_text_without_math(output) for output in article.select('div.cell_output')]
    texts.append(_prose(article).get_text())
    for text in texts:
        for match in eq_label.finditer(text):
            add('eq-label', text[max(0, match.start() - 30):match.end() + 30])

    # tables
    for table in article.find_all('table'):
        for cell in table.find_all(['td', 'th']):
            if cell.get_text().strip() in MISSING:
                row = cell.find_parent('tr')
                add('nan-in-table', ' | '.join(part.get_text().strip() for part in row.find_all(['td', 'th'])))
    return found


def equation_labels(html_root: Path, pages: list[str]) -> set[str]:
    labels = set()
    for page in pages:
        path = html_root / f'{page}.html'
        if path.is_file():
            labels.update(re.findall(r'id="equation-([^"]+)"', path.read_text(encoding='utf-8')))
    return labels


def run(html_root: Path, toc: Path, extra_paths: list[str] | None = None) -> tuple[list[Finding], list[str]]:
    "(findings, pages that were not built) for every page of the table of contents."
    pages = toc_pages(toc)
    labels = equation_labels(html_root, pages)
    temp_paths = temp_path_pattern(extra_paths if extra_paths is not None else [str(Path.home()), str(ROOT)])
    findings, missing = [], []
    for page in pages:
        path = html_root / f'{page}.html'
        if not path.is_file():
            missing.append(page)
            continue
        findings += check_page(page, path.read_text(encoding='utf-8'), labels, temp_paths)
    return findings, missing


def report(findings: list[Finding], missing: list[str], limit: int | None = None, out=sys.stdout) -> int:
    "Print the findings by rule and one count per rule; 1 when a failing rule found something (or a page is absent)."
    for rule in RULES:
        shown = [finding for finding in findings if finding.rule == rule]
        for finding in shown[:limit]:
            print(('warning ' if rule in REPORT_ONLY else '') + str(finding), file=out)
        if limit is not None and len(shown) > limit:
            print(f'{rule}: ... and {len(shown) - limit} more', file=out)
    for page in missing:
        print(f'missing page: {page} is in _toc.yml but was not built', file=out)
    counts = Counter(finding.rule for finding in findings)
    print('book check: ' + ', '.join(f'{rule} {counts[rule]}' + (' (report only)' if rule in REPORT_ONLY else '')
                                     for rule in RULES), file=out)
    failing = sum(counts[rule] for rule in RULES if rule not in REPORT_ONLY) + len(missing)
    print('book check: ' + (f'FAILED ({failing} findings)' if failing else 'passed'), file=out)
    return 1 if failing else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--html', type=Path, default=ROOT / '_build' / 'html')
    parser.add_argument('--toc', type=Path, default=ROOT / '_toc.yml')
    parser.add_argument('--limit', type=int, default=None, help='findings printed per rule (default: all)')
    args = parser.parse_args(argv)
    findings, missing = run(args.html, args.toc)
    return report(findings, missing, args.limit)


if __name__ == '__main__':
    sys.exit(main())
