"""Sphinx configuration of Parmesan's API reference (numpydoc docstrings).

Build: ``sphinx-build -W docs docs/_build/html`` (CI treats warnings as
errors).
"""
import os
import sys

# the checkout's package, also when it is not installed
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

project = 'Parmesan'
author = 'the Parmesan developers'
copyright = 'the Parmesan developers'

extensions = ['sphinx.ext.autodoc', 'sphinx.ext.autosummary',
              'sphinx.ext.mathjax', 'numpydoc']
autosummary_generate = False
autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True}
# numpydoc: one table of methods, not an autosummary stub per method
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
html_theme = 'alabaster'
exclude_patterns = ['_build']
