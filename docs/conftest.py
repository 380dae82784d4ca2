"""pytest: what under docs/ is not a test.

The pages and tutorials under ``docs/`` are collected as doctest files (``--doctest-glob='*.md'``
when ``docs`` is on the command line). Three things are not: the Sphinx configuration, the build
output (``make docs`` writes ``docs/_build``), and the notebooks, which contain no ``>>>`` examples
and are executed by ``tests/test_notebooks.py`` instead.
"""

collect_ignore = ["conf.py"]
collect_ignore_glob = ["_build/*", "notebooks/*"]
