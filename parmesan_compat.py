"""Make Theano 1.0.5 and Lasagne 0.1 run on Python 3.11 and numpy 1.2x.

This is the one place that knows what the old stack needs today. Installing
Parmesan puts ``parmesan_compat.pth`` into site-packages; Python executes it
at start-up, which calls :func:`install`. That registers an import hook and
nothing else (no numpy, no Theano is imported at start-up). The fixes are
applied at the moment Theano or Lasagne is first imported, whichever comes
first, so ``import theano``, ``import lasagne`` and ``import parmesan`` work
in any order.

The fixes:

* numpy >= 1.24 removed the aliases ``np.bool``, ``np.int``, ``np.float``,
  ``np.complex`` and ``np.object`` that Theano uses; they are restored as the
  builtins they always were.
* Theano's BLAS auto-detection reads ``numpy.distutils`` build info, which
  crashes with numpy 1.23 and is meaningless with numpy >= 1.26. Unless the
  user configured ``blas.ldflags`` (``THEANO_FLAGS`` or a ``.theanorc``),
  it defaults to empty: Theano then calls BLAS through numpy's C API.
* Lasagne 0.1 imports ``theano.tensor.signal.downsample``, which Theano 1.0
  renamed to ``pool``; a shim module maps ``max_pool_2d(ds, st, padding)`` to
  ``pool_2d(ws, stride, pad)``.
* Theano's Cython scan extension includes ``longintrepr.h``, which moved in
  Python 3.11, so it can never build there. Marking it as absent makes
  Theano use its Python scan at once instead of failing a compile per
  process.
"""
import importlib.abc
import importlib.machinery
import os
import sys

__all__ = ['install', 'apply_before_theano', 'theano_flag_defaults']

#: Theano settings Parmesan needs, used only where the user set nothing.
THEANO_DEFAULTS = {'blas.ldflags': ''}

_NUMPY_ALIASES = {'bool': bool, 'int': int, 'float': float,
                  'complex': complex, 'object': object}
_DOWNSAMPLE = 'theano.tensor.signal.downsample'
_SCAN_EXTENSION = 'theano.scan_module.scan_perform_ext'


def _user_theano_keys():
    """Config keys the user set in ``THEANO_FLAGS`` or a ``.theanorc``."""
    import configparser
    keys = set()
    for item in os.environ.get('THEANO_FLAGS', '').split(','):
        if '=' in item:
            keys.add(item.split('=', 1)[0].strip())
    rc_paths = os.environ.get('THEANORC', '~/.theanorc' + os.pathsep +
                              '~/.theanorc.txt')
    parser = configparser.ConfigParser(interpolation=None)
    parser.read([os.path.expanduser(p) for p in rc_paths.split(os.pathsep)])
    for section in parser.sections():
        for option in parser.options(section):
            keys.add(option if section == 'global'
                     else section + '.' + option)
    return keys


def theano_flag_defaults():
    """Return the ``THEANO_FLAGS`` string with Parmesan's defaults prepended.

    Theano lets a later key override an earlier one, so the user's own flags,
    which come after, always win; keys set in a ``.theanorc`` are left out
    because ``THEANO_FLAGS`` would override the file.
    """
    user_flags = os.environ.get('THEANO_FLAGS', '')
    taken = _user_theano_keys()
    ours = ['%s=%s' % kv for kv in sorted(THEANO_DEFAULTS.items())
            if kv[0] not in taken]
    return ','.join(ours + ([user_flags] if user_flags else []))


def apply_before_theano():
    """Apply the fixes that must precede ``import theano``. Idempotent."""
    import numpy as np
    for name, builtin in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, builtin)
    if 'theano.configparser' not in sys.modules:
        os.environ['THEANO_FLAGS'] = theano_flag_defaults()
    if sys.version_info >= (3, 11):
        sys.modules.setdefault(_SCAN_EXTENSION, None)


class _DownsampleShim(importlib.abc.Loader):
    """Serve Lasagne 0.1's ``downsample`` from Theano 1.0's ``pool``."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        from theano.tensor.signal.pool import pool_2d

        def max_pool_2d(input, ds, ignore_border=None, st=None,
                        padding=(0, 0), mode='max'):
            return pool_2d(input, ws=ds, ignore_border=ignore_border,
                           stride=st, pad=padding, mode=mode)
        module.max_pool_2d = max_pool_2d


class _StackFixer(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname == 'theano':
            apply_before_theano()
        elif fullname == _DOWNSAMPLE:
            return importlib.machinery.ModuleSpec(fullname, _DownsampleShim())
        return None


def install():
    """Register the import hook, once per interpreter."""
    if not any(isinstance(f, _StackFixer) for f in sys.meta_path):
        sys.meta_path.insert(0, _StackFixer())
