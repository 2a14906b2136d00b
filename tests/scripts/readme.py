"""README.md is generated: the markdown cells of nbs/index.ipynb (the book's landing page), in order.

    python tests/scripts/readme.py            # write README.md (what `make readme` runs)
    python tests/scripts/readme.py --check    # exit 1 when README.md is not what the notebook gives

tests/test_readme.py runs the check, so an edit to one without the other fails the tests."""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK, README = ROOT / 'nbs' / 'index.ipynb', ROOT / 'README.md'
HEADER = '<!-- Generated from nbs/index.ipynb by `make readme`: edit the notebook, not this file. -->\n\n'


def render(notebook: Path = NOTEBOOK) -> str:
    "The README text: a header line, then every markdown cell's source, separated by blank lines."
    cells = json.loads(notebook.read_text(encoding='utf-8'))['cells']
    blocks = [''.join(cell['source']).strip('\n') for cell in cells if cell['cell_type'] == 'markdown']
    return HEADER + '\n\n'.join(block for block in blocks if block) + '\n'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='compare instead of writing')
    args = parser.parse_args(argv)
    text = render()
    if not args.check:
        README.write_text(text, encoding='utf-8')
        return 0
    if README.is_file() and README.read_text(encoding='utf-8') == text:
        return 0
    print('README.md differs from nbs/index.ipynb: edit the notebook, then run `make readme`', file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
