"""Sphinx configuration for the ssmred documentation (``make docs``).

Sphinx + myst-nb: the pages are MyST Markdown, the teaching notebooks are MyST/jupytext text files
executed at build time (cached in ``docs/_build/.jupyter_cache``), and the API reference is generated
from the numpydoc docstrings by autodoc + numpydoc. The build is strict: ``make docs`` runs
``sphinx-build -W --keep-going``, so any warning (a broken reference, a docstring that does not parse,
a notebook cell that raises) fails it. Everything the pages need is served from the build folder,
MathJax included, so the site opens offline from ``file://``.

This file is import-safe (no side effects beyond path setup) so that ``pytest docs`` can import it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for sub in ("", "adapters", "app"):
    path = str(ROOT / sub) if sub else str(ROOT)
    if path not in sys.path:
        sys.path.insert(0, path)

project = "ssmred"
author = "ssmred developers"
copyright = "ssmred developers"  # noqa: A001 (Sphinx's name)
try:
    from importlib.metadata import version as _version

    release = _version("ssmred")
except Exception:  # pragma: no cover - source tree without installation
    release = "0.0.0+unknown"
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

root_doc = "index"
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "conftest.py",
]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None and __import__(name) is not None
    except Exception:  # an optional framework (jax, equinox, optax) missing or broken
        return False


# The JAX adapter is documented when it imports (jax, equinox and optax installed); the API toctree
# uses a glob, so the page simply disappears otherwise.
HAVE_JAX = _importable("ssmred_jax")
if not HAVE_JAX:
    exclude_patterns.append("api/jax.md")

# --- MyST and notebooks ---------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "cache"
nb_execution_timeout = 300  # seconds per cell; tests/test_notebooks.py enforces the per-notebook budgets
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_execution_excludepatterns: list[str] = []

# myst-nb's stream merging (myst_nb.core.utils.coalesce_streams) strips every chunk and appends a
# newline, so a print that the kernel happened to flush in two chunks (ipykernel flushes on a timer,
# which a loaded machine hits mid-line) is shown broken over two lines. Adjacent chunks of the same
# stream are joined exactly first; the original function then does the rest.
def _install_exact_stream_merge() -> None:
    import myst_nb.core.render as render

    original = getattr(render, "coalesce_streams", None)
    if original is None or getattr(original, "_ssmred_exact", False):  # another myst-nb layout, or done
        return

    def coalesce_streams(outputs):  # noqa: ANN001, ANN202
        merged = []
        for out in outputs or []:
            prev = merged[-1] if merged else None
            if (
                prev is not None
                and out.get("output_type") == "stream"
                and prev.get("output_type") == "stream"
                and prev.get("name") == out.get("name")
            ):
                prev["text"] = prev["text"] + out["text"]
            else:
                merged.append(out)
        return original(merged)

    coalesce_streams._ssmred_exact = True  # type: ignore[attr-defined]
    render.coalesce_streams = coalesce_streams


_install_exact_stream_merge()

# --- API reference ----------------------------------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = False  # True breaks on functools.wraps-decorated functions (no __kwdefaults__)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_validation_checks: set[str] = set()

# --- HTML -------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"ssmred {release}"
html_static_path: list[str] = []
html_show_sourcelink = True
html_copy_source = True
pygments_style = "friendly"
pygments_dark_style = "monokai"

# MathJax 3 from the sphinx-mathjax-offline wheel (no CDN): copied into _static/mathjax.
_MATHJAX = importlib.util.find_spec("sphinx-mathjax-offline")
if _MATHJAX is not None and _MATHJAX.submodule_search_locations:
    html_static_path.append(str(Path(next(iter(_MATHJAX.submodule_search_locations))) / "static"))
    mathjax_path = "mathjax/tex-chtml.js"


# --- the doctested tutorial -------------------------------------------------------------------------
# docs/tutorials/*.md are plain doctest files (pytest runs every ``>>>`` line). In Markdown a line
# starting with ``>`` is a block quote, so at read time each doctest example (a ``>>>`` line, its
# ``...`` continuations and its expected output, up to the next blank line) is wrapped in a ``pycon``
# code fence. The file on disk stays a valid doctest.
def _fence_doctests(text: str) -> str:
    out: list[str] = []
    in_example = False
    in_fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and not in_example and line.startswith(">>>"):
            out.append("```pycon")
            in_example = True
        elif in_example and not line.strip():
            out.append("```")
            in_example = False
        out.append(line)
    if in_example:
        out.append("```")
    return "\n".join(out) + "\n"


# --- the application's API page ----------------------------------------------------------------------
# One automodule section per module of ssmred_app, found at build time (the package is still changing).
_APP_MARKER = "<!-- ssmred-app-modules -->"


def _app_sections() -> str:
    import pkgutil

    import ssmred_app

    parts = []
    for info in sorted(pkgutil.iter_modules(ssmred_app.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        name = f"ssmred_app.{info.name}"
        parts.append(f"## `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n   :members:\n```\n")
    return "\n".join(parts)


def _on_source_read(app, docname: str, source: list[str]) -> None:  # noqa: ANN001
    if docname.startswith("tutorials/"):
        source[0] = _fence_doctests(source[0])
    elif docname == "index" and not HAVE_JAX:
        source[0] = source[0].replace("\napi/jax\n", "\n").replace("[`ssmred_jax`](api/jax.md) (JAX adapter) ·\n", "")
    elif docname == "api/app" and _APP_MARKER in source[0]:
        source[0] = source[0].replace(_APP_MARKER, _app_sections())


# --- module docstrings with numpydoc section titles ----------------------------------------------------
# numpydoc turns "Examples\n--------" into a rubric in function and class docstrings, but leaves it a
# real section title in a *module* docstring; several modules on one API page then give duplicate
# section ids. Module docstrings get rubrics too.
def _module_sections_to_rubrics(app, what, name, obj, options, lines) -> None:  # noqa: ANN001
    if what != "module":
        return
    out: list[str] = []
    i = 0
    while i < len(lines):
        title = lines[i]
        under = lines[i + 1] if i + 1 < len(lines) else ""
        rule = under.strip()
        if title.strip() and not title.startswith(" ") and rule and set(rule) <= set("-=~^") and len(set(rule)) == 1 \
                and len(rule) >= len(title.strip()):
            out.extend([f".. rubric:: {title.strip()}", ""])
            i += 2
            continue
        out.append(title)
        i += 1
    lines[:] = out


def _encrypt_kernel_transport() -> None:
    """Let the notebook kernels use CurveZMQ keys (``transport_encryption="auto"``).

    ipykernel >= 7.3 warns on every start over plain TCP ("Kernel is running over TCP without
    encryption"), once per notebook in the build log. myst-nb and jupyter-cache create their kernel
    managers themselves, so the default of the trait is set (older jupyter_client: no such trait, no
    warning).
    """
    try:
        from jupyter_client.manager import KernelManager
    except ImportError:
        return
    trait = KernelManager.class_traits().get("transport_encryption")
    if trait is not None:
        trait.default_value = "auto"


def setup(app):  # noqa: ANN001, ANN201
    _encrypt_kernel_transport()
    app.connect("source-read", _on_source_read)
    app.connect("autodoc-process-docstring", _module_sections_to_rubrics, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
