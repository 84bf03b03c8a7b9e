"""Local Sphinx extension of the skvqad docs.

* ``.. results-tables:: PATTERN``: renders the markdown files that match
  ``PATTERN`` (a glob relative to the page, e.g.
  ``../benchmarks/results/*.md``), headings as rubrics, pipe tables as
  tables, other lines as lines, so the committed result tables are shown
  as they are in the repository and never copied by hand.
* Coverage checks, reported as Sphinx warnings (errors under ``-W``):
  every name in the ``__all__`` of ``skvqad`` and of each public module
  ``skvqad.*`` is listed in an autosummary of ``api.rst``, and every
  constructor parameter of :class:`skvqad.VQVAEAnomalyDetector` is named
  (as ````name````) in ``user_guide.rst``.
* A guard that fails the build if a long-running example (``LONG_EXAMPLES``
  in ``conf.py``) would be executed by sphinx-gallery.
"""

from __future__ import annotations

import glob
import importlib
import inspect
import os
import pkgutil
import re

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from sphinx.errors import ConfigError
from sphinx.util import logging

logger = logging.getLogger(__name__)

# ------------------------------------------------------------ markdown tables
_INLINE = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str) -> list[nodes.Node]:
    """Markdown inline code, bold and links as docutils nodes; the rest as text."""
    out: list[nodes.Node] = []
    pos = 0
    for match in _INLINE.finditer(text):
        if match.start() > pos:
            out.append(nodes.Text(text[pos : match.start()]))
        code, bold, label, url = match.groups()
        if code is not None:
            out.append(nodes.literal(code, code))
        elif bold is not None:
            out.append(nodes.strong(bold, bold))
        else:
            out.append(nodes.reference(label, label, refuri=url))
        pos = match.end()
    if pos < len(text):
        out.append(nodes.Text(text[pos:]))
    return out


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table(rows: list[str]) -> nodes.table:
    header, *body = [_cells(r) for r in rows if not re.fullmatch(r"\|?[\s:|-]+\|?", r.strip())]
    n_cols = len(header)
    table = nodes.table(classes=["results-table"])
    group = nodes.tgroup(cols=n_cols)
    table += group
    for _ in range(n_cols):
        group += nodes.colspec(colwidth=1)

    def row(cells):
        tr = nodes.row()
        for cell in (cells + [""] * n_cols)[:n_cols]:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", *_inline(cell))
            tr += entry
        return tr

    thead = nodes.thead()
    thead += row(header)
    tbody = nodes.tbody()
    for cells in body:
        tbody += row(cells)
    group += thead
    group += tbody
    return table


def markdown_nodes(text: str) -> list[nodes.Node]:
    """The few markdown constructs of ``benchmarks/results/*.md`` as docutils nodes."""
    out: list[nodes.Node] = []
    block: list[str] = []
    kind = None

    def flush():
        nonlocal block, kind
        if block and kind == "table":
            out.append(_table(block))
        elif block:
            lines = nodes.line_block()
            for line in block:
                lines += nodes.line("", "", *_inline(line.rstrip()))
            out.append(lines)
        block, kind = [], None

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            flush()
        elif stripped.startswith("#"):
            flush()
            title = stripped.lstrip("#").strip()
            out.append(nodes.rubric(title, "", *_inline(title)))
        else:
            this = "table" if stripped.startswith("|") else "text"
            if kind is not None and kind != this:
                flush()
            kind = this
            block.append(stripped)
    flush()
    return out


class ResultsTables(Directive):
    """Render the markdown result files matching a glob, sorted by name."""

    required_arguments = 1
    final_argument_whitespace = False
    option_spec = {"exclude": directives.unchanged}

    def run(self):
        env = self.state.document.settings.env
        source_dir = os.path.dirname(env.doc2path(env.docname))
        pattern = os.path.normpath(os.path.join(source_dir, self.arguments[0]))
        excluded = set((self.options.get("exclude") or "").split())
        files = [f for f in sorted(glob.glob(pattern)) if os.path.basename(f) not in excluded]
        # A new result file changes the folder's mtime: the page is rebuilt.
        env.note_dependency(os.path.dirname(pattern))
        if not files:
            return [
                self.state.document.reporter.warning(
                    f"results-tables: no file matches {self.arguments[0]!r}", line=self.lineno
                )
            ]
        root = os.path.dirname(env.srcdir) if hasattr(env, "srcdir") else source_dir
        result: list[nodes.Node] = []
        for path in files:
            env.note_dependency(path)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            section = nodes.container(classes=["results-file"])
            section += markdown_nodes(text)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            section += nodes.paragraph("", "", nodes.emphasis("", "From "), nodes.literal(rel, rel))
            result.append(section)
        return result


# ---------------------------------------------------------------- checks
def _public_modules(package) -> list[str]:
    return sorted(
        f"{package.__name__}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )


def _expected_api_names() -> set[str]:
    import skvqad

    names = {f"skvqad.{n}" for n in skvqad.__all__}
    top_level = [getattr(skvqad, n) for n in skvqad.__all__]
    for module_name in _public_modules(skvqad):
        module = importlib.import_module(module_name)
        for n in getattr(module, "__all__", []):
            # A name re-exported by ``skvqad`` (the estimator) is documented there.
            if not any(getattr(module, n) is obj for obj in top_level):
                names.add(f"{module_name}.{n}")
    return names


def _api_classes() -> dict[str, type]:
    classes = {}
    for fullname in sorted(_expected_api_names()):
        module_name, _, name = fullname.rpartition(".")
        obj = getattr(importlib.import_module(module_name), name)
        if inspect.isclass(obj):
            classes[fullname] = obj
    return classes


def _is_ours(cls) -> bool:
    return cls.__module__.split(".")[0] == "skvqad"


def ignored_bases() -> list[str]:
    """Names of the bases, not skvqad's, of the public classes.

    Their members (scikit-learn's ``get_params``, skorch's ``fit``, torch's
    ``Module`` methods...) are left out of the API pages: they are
    documented by their projects, and their docstrings link to labels of
    those projects' documentation. Every such base is listed, because the
    meaning of ``:inherited-members: A, B`` changed in Sphinx 7.x (a member
    is now dropped when it is *defined* in A or B, no longer when A or B
    comes first in the method resolution order).
    """
    names = {"object"}
    for obj in _api_classes().values():
        names |= {cls.__name__ for cls in obj.__mro__ if not _is_ours(cls)}
    return sorted(names)


def documented_methods() -> dict[str, list[str]]:
    """Public methods autodoc documents for each public class, by full name.

    A method is documented when the first class of the method resolution
    order that defines it is skvqad's (the rule of
    ``:inherited-members: <ignored_bases()>``) and it has a docstring,
    possibly inherited.
    """
    result = {}
    for fullname, obj in _api_classes().items():
        methods = []
        for cls in obj.__mro__:
            for member, value in vars(cls).items():
                if member.startswith("_") or member in methods:
                    continue
                owner = next(c for c in obj.__mro__ if member in vars(c))
                if not _is_ours(owner):
                    continue
                if isinstance(value, (classmethod, staticmethod)):
                    value = value.__func__
                if inspect.isfunction(value) and inspect.getdoc(getattr(obj, member)):
                    methods.append(member)
        if methods:
            result[fullname] = methods
    return result


def _autosummary_names(source: str) -> set[str]:
    """Fully qualified names listed in the autosummary directives of ``source``."""
    names: set[str] = set()
    module = None
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        current = re.match(r"\s*\.\. (?:current)?module:: (\S+)", line)
        if current:
            module = current.group(1)
        if re.match(r"\s*\.\. autosummary::", line):
            indent = len(line) - len(line.lstrip())
            i += 1
            while i < len(lines) and (not lines[i].strip() or
                                      len(lines[i]) - len(lines[i].lstrip()) > indent):
                entry = lines[i].strip()
                if entry and not entry.startswith(":"):
                    entry = entry.lstrip("~")
                    names.add(entry if module is None or entry.startswith("skvqad.")
                              else f"{module}.{entry}")
                i += 1
            continue
        i += 1
    return names


def check_sources(app, docname, source):
    text = source[0]
    if docname == "api":
        missing = sorted(_expected_api_names() - _autosummary_names(text))
        for name in missing:
            logger.warning(
                f"api.rst: the public name {name} (in __all__) is not in any autosummary",
                location=docname,
            )
    elif docname == "user_guide":
        from skvqad import VQVAEAnomalyDetector

        params = inspect.signature(VQVAEAnomalyDetector).parameters
        for name in params:
            if f"``{name}``" not in text:
                logger.warning(
                    f"user_guide.rst: the VQVAEAnomalyDetector parameter {name!r} is "
                    "not described in the parameter guide",
                    location=docname,
                )


def check_gallery(app, config):
    """Fail if sphinx-gallery would execute a long example."""
    conf = config.sphinx_gallery_conf
    long_examples = re.compile(config.skvqad_long_examples)
    pattern = re.compile(conf.get("filename_pattern", ""))
    examples_dir = os.path.normpath(os.path.join(app.srcdir, conf["examples_dirs"]))
    for folder, _, files in os.walk(examples_dir):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and pattern.search(path) and long_examples.search(name):
                raise ConfigError(
                    f"sphinx-gallery would execute {path}, a long-running example; rename "
                    "it (only plot_*.py files run) or change LONG_EXAMPLES in docs/conf.py."
                )


def setup(app):
    app.add_directive("results-tables", ResultsTables)
    app.add_config_value("skvqad_long_examples", r"(?!)", "env")
    app.connect("source-read", check_sources)
    app.connect("config-inited", check_gallery)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
