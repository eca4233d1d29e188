"""Sphinx configuration of Parmesan's API reference (numpydoc docstrings).

Build: ``sphinx-build -W docs docs/_build/html`` (CI treats warnings as
errors).
"""
import importlib
import os
import pkgutil
import re
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

# Docstrings come from the package, not from the Lasagne classes it extends.
autodoc_inherit_docstrings = False


_EXAMPLE_HEADING = re.compile(r'^(\s*)Example\n(\s*)-------$', re.MULTILINE)


def _numpydoc_example_headings():
    """Some of the package's docstrings head their examples 'Example';
    numpydoc knows only 'Examples' (and reads the docstrings themselves,
    also for signatures), so rename the heading in the imported objects
    for the build. The source stays as it is."""
    import parmesan
    modules = [parmesan] + [importlib.import_module(info.name) for info in
                            pkgutil.walk_packages(parmesan.__path__,
                                                  'parmesan.')
                            if not info.name.endswith('__main__')]
    for module in modules:
        for obj in vars(module).values():
            if getattr(obj, '__module__', None) != module.__name__:
                continue
            members = [obj] + (list(vars(obj).values())
                               if isinstance(obj, type) else [])
            for member in members:
                member = getattr(member, '__func__', member)
                doc = getattr(member, '__doc__', None)
                if doc and _EXAMPLE_HEADING.search(doc):
                    member.__doc__ = _EXAMPLE_HEADING.sub(
                        r'\1Examples\n\2--------', doc)


def setup(app):
    _numpydoc_example_headings()
    # numpydoc reports malformed docstrings as Python warnings: make them
    # fail the build as Sphinx's own warnings do under -W
    import warnings
    warnings.filterwarnings('error', category=UserWarning,
                            module=r'numpydoc\.')
