"""Sphinx configuration of the skvqad documentation.

Build (warnings are errors; no network needed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The example gallery is ``../examples``: only scripts named ``plot_*.py`` are
executed; the others (digits, CIFAR-10, grid search, MVTec, UCSD, magnetic
tiles: minutes to hours of training) are rendered as code, never run.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the package, when it is not installed
sys.path.insert(0, str(HERE / "_ext"))

import sphinx_gallery  # noqa: E402
from packaging.version import Version  # noqa: E402

import skvqad  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "skvqad"
author = "skvqad developers"
copyright = "skvqad developers"
release = skvqad.__version__
version = release

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",  # parses the markdown result files that results-tables includes
    "skvqad_docs",  # docs/_ext/skvqad_docs.py: result tables and coverage checks
]
# No sphinx.ext.intersphinx: it downloads inventories at build time, and the
# build must work offline. References to numpy, scikit-learn, torch... are
# rendered as code without links.

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"
pygments_style = "sphinx"
today_fmt = "%Y-%m-%d"

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections give the types
# Defaults as written in the source: optimizer=torch.optim.Adam, not <class ...adam.Adam'>.
autodoc_preserve_defaults = True
add_module_names = False

numpydoc_show_class_members = False  # methods are listed by the class template
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# -- sphinx-gallery -----------------------------------------------------------
# Scripts that train for minutes to hours: never executed by the docs build,
# whatever they are named (a guard in skvqad_docs.py fails the build if one of
# them matches filename_pattern).
LONG_EXAMPLES = r"(digits|cifar|grid_search|mvtec|ucsd|magnetic)"
skvqad_long_examples = LONG_EXAMPLES

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # only plot_*.py run; the others are shown as code
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "sphinx_gallery.sorting.FileNameSortKey",
    "doc_module": ("skvqad",),
    "backreferences_dir": "generated",  # git-ignored, like autosummary's pages
    "download_all_examples": False,
    "min_reported_time": 10,
}
# sphinx-gallery < 0.18 either fails under Sphinx >= 7.3 with -W (its
# configuration cannot be pickled) or writes sg_execution_times.rst into docs/.
if Version(sphinx_gallery.__version__) < Version("0.18"):
    raise RuntimeError(
        f"The docs need sphinx-gallery >= 0.18, found {sphinx_gallery.__version__}: "
        'pip install -e ".[docs]"'
    )
sphinx_gallery_conf["write_computation_times"] = False  # no sg_execution_times.rst

# -- HTML ----------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"skvqad {release}"
html_theme_options = {
    "description": "Image anomaly detection with VQ-VAEs, scikit-learn compatible",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_sidebars = {
    "**": ["about.html", "navigation.html", "relations.html", "searchbox.html"],
}
html_static_path = []
html_show_sourcelink = False

# -- API pages -------------------------------------------------------------------
from skvqad_docs import documented_methods, ignored_bases  # noqa: E402

# Methods of scikit-learn's, skorch's, torch's and Python's bases are left out
# (see docs/_templates/autosummary/class.rst).
autosummary_context = {
    "ignored_bases": ignored_bases(),
    "documented_methods": documented_methods(),
}


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    """NamedTuple fields are described in the Attributes section already."""
    doc = getattr(obj, "__doc__", None) or ""
    if what == "class" and doc.startswith("Alias for field number"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
