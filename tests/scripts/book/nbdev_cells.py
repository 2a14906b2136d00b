"""The book never shows nbdev's machinery: a notebook reader for myst-nb, and a Sphinx extension only so that
Jupyter Book puts this folder on sys.path (`_config.yml`: `sphinx.local_extensions` and
`sphinx.config.nb_custom_formats`, `.ipynb` -> `nbdev_cells.read_notebook`).

The notebooks in nbs/ stay exactly as nbdev wants them; what the book renders is changed on reading:
- every line that starts with `#|` (`#| export`, `#| default_exp evaluate`, `#| hide`, `#| slow`, ...) is
  dropped from the cell's source;
- a cell whose directives include `#| hide`, or that has nothing left once they are dropped (the
  `#| default_exp` cell), is tagged `remove-cell`: it still executes, it is not shown;
- a cell with `#| export` (`exporti`, `exports`) is folded, tagged `hide-input`: the prose and the equation
  explain it, a click shows the code. Tag the cell `show-input` to keep it open.
Tags a cell already has (papermill's `parameters`, `remove-input`, ...) are kept. Dropping comment lines
changes nothing that Python runs, so the executed cells compute what nbdev's do.
"""
from __future__ import annotations

import re

import nbformat

DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)')
EXPORTS = {'export', 'exporti', 'exports'}
KEEP_OPEN = 'show-input'


def directives(source: str) -> list[str]:
    "The names of the nbdev directives in a cell's source (`#| default_exp x` -> 'default_exp')."
    return [match.group(1) for line in source.splitlines() if (match := DIRECTIVE.match(line))]


def strip_directives(source: str) -> str:
    "The source without its `#|` lines (and without the blank lines they leave at the top)."
    kept = [line for line in source.splitlines() if not DIRECTIVE.match(line)]
    return '\n'.join(kept).strip('\n')


def book_cell(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    "One code cell as the book shows it (markdown and raw cells are returned unchanged)."
    if cell.get('cell_type') != 'code':
        return cell
    names = directives(cell.source)
    if not names:
        return cell
    tags = list(cell.metadata.get('tags', []))
    cell.source = strip_directives(cell.source)
    if 'hide' in names or not cell.source.strip():
        tags.append('remove-cell')
    elif EXPORTS & set(names) and KEEP_OPEN not in tags and 'hide-input' not in tags:
        tags.append('hide-input')
    cell.metadata['tags'] = tags
    return cell


def read_notebook(text: str) -> nbformat.NotebookNode:
    "myst-nb's `nb_custom_formats` reader for `.ipynb`: nbformat's reader, then `book_cell` on every cell."
    notebook = nbformat.reads(text, as_version=4)
    notebook.cells = [book_cell(cell) for cell in notebook.cells]
    return notebook


def setup(app):
    return {'version': '1', 'parallel_read_safe': True, 'parallel_write_safe': True}
