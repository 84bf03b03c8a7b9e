"""Local Sphinx extension of the skvqad docs.

* ``.. results-tables:: PATTERN``: includes the markdown files that match
  ``PATTERN`` (a glob relative to the page, e.g.
  ``../benchmarks/results/*.md``), parsed by MyST, so the committed result
  tables are shown as they are in the repository and never copied by hand.
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

from docutils.parsers.rst import Directive, directives
from sphinx.errors import ConfigError
from sphinx.util import logging

logger = logging.getLogger(__name__)


# ------------------------------------------------------------ markdown tables
class ResultsTables(Directive):
    """Include the markdown result files matching a glob, sorted by name.

    Each file is parsed by MyST (``myst_parser``, a docs requirement) through
    an ``include`` directive; this directive only adds the glob, which
    ``include`` lacks, and a line naming each file.
    """

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
        root = os.path.dirname(env.srcdir)
        lines: list[str] = []
        for path in files:
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            include = os.path.relpath(path, source_dir).replace(os.sep, "/")
            lines += [f".. include:: {include}", "   :parser: myst_parser.sphinx_", "",
                      f"*From* ``{rel}``", ""]
        self.state_machine.insert_input(lines, self.state_machine.input_lines.source(0))
        return []


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
