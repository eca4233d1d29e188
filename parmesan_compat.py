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
* ``COp.c_code_cache_version`` (``theano.gof.op``) puts Python's ``hash()``
  of the op's C source into the compile cache's key. String hashes are
  salted per process (``PYTHONHASHSEED``), so the key of every module with
  such an op (``DimShuffle`` in every model, ...) changed from one process
  to the next and each new process compiled them again. The version is
  now a SHA-256 digest of the same source: stable, so a second process
  that builds the same model compiles nothing.

Parmesan's speed defaults (measured with ``benchmarks/run.py
--ablations``; each applies only where the user set nothing):

* ``floatX=float32``: the VAE's training step is 1.4-1.7x faster than in
  float64, and the float32 data sets are not copied on every call.
* ``gcc.cxxflags=-D__FAST_MATH__`` on x86-64 Linux with glibc >= 2.22: the
  macro makes glibc's headers declare the SIMD versions of exp, log, log1p,
  tanh, ... from its vector math library libmvec, so gcc vectorises Theano's
  element-wise loops with them: softplus and the Bernoulli log-likelihood
  from logits went from 35-41 to about 2 ns per float32 element. Only
  declarations change: none of ``-ffast-math``'s IEEE relaxations (NaN and
  inf, signed zeros, reassociation) is switched on, and libmvec is accurate
  to 4 ulp.
* ``allow_gc=False``: intermediate arrays are kept between calls instead of
  being freed and reallocated on every call (Theano's own advice for
  speed; within the noise of this machine in our measurements).
"""
import hashlib
import importlib.abc
import importlib.machinery
import os
import sys

__all__ = ['install', 'apply_before_theano', 'theano_flag_defaults',
           'stable_source_version']


def _vector_math_cxxflags():
    """'-D__FAST_MATH__' where glibc >= 2.22 provides libmvec (x86-64 Linux),
    else ''."""
    import platform
    if not sys.platform.startswith('linux') or \
            platform.machine() not in ('x86_64', 'AMD64'):
        return ''
    try:
        libc, version = os.confstr('CS_GNU_LIBC_VERSION').split()
        release = tuple(int(part) for part in version.split('.')[:2])
    except (AttributeError, OSError, TypeError, ValueError):
        return ''
    return '-D__FAST_MATH__' if libc == 'glibc' and release >= (2, 22) \
        else ''


#: Theano settings Parmesan needs or recommends, used only where the user
#: set nothing.
THEANO_DEFAULTS = {'blas.ldflags': '', 'floatX': 'float32',
                   'allow_gc': 'False'}
_VECTOR_MATH = _vector_math_cxxflags()
if _VECTOR_MATH:
    THEANO_DEFAULTS['gcc.cxxflags'] = _VECTOR_MATH

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
    # a .theanorc's option names reach us lower-cased (as Theano reads them)
    taken = {key.lower() for key in taken}
    ours = ['%s=%s' % kv for kv in sorted(THEANO_DEFAULTS.items())
            if kv[0].lower() not in taken]
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


def stable_source_version(sources):
    """An int that identifies the C `sources` (a sequence of str), the same
    in every process (Python's ``hash()`` of a str is not)."""
    digest = hashlib.sha256('\0'.join(sources).encode('utf-8')).hexdigest()
    return int(digest[:16], 16)


def _stable_cop_cache_version(op_module):
    """Make ``COp.c_code_cache_version`` independent of the hash seed."""
    cop = op_module.COp

    def c_code_cache_version(self):
        version = (stable_source_version(self.func_codes),)
        if hasattr(self, 'params_type'):
            version += (self.params_type.c_code_cache_version(),)
        return version
    c_code_cache_version.__doc__ = cop.c_code_cache_version.__doc__
    cop.c_code_cache_version = c_code_cache_version


#: module name -> fix applied right after the module is executed
_AFTER_IMPORT = {'theano.gof.op': _stable_cop_cache_version}


class _PatchAfterExec(importlib.abc.Loader):
    """Run a module's own loader, then a fix on the fresh module."""

    def __init__(self, loader, fix):
        self.loader, self.fix = loader, fix

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.fix(module)


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


#: Where Debian and Ubuntu install python3-pygpu (the gpuarray backend's
#: pygpu, which is not on PyPI).
SYSTEM_PYGPU_DIRS = ('/usr/lib/python3/dist-packages',)


def system_pygpu_spec(dirs=SYSTEM_PYGPU_DIRS):
    """Spec of a system-wide ``pygpu`` built for this interpreter, or None.

    A virtualenv does not see the system's site directories, and exposing all
    of them would let Debian's numpy and friends shadow the pinned stack; so
    only the ``pygpu`` package itself is offered, and only where the venv has
    none of its own and the system's extension matches this Python's ABI.
    """
    if importlib.machinery.PathFinder.find_spec('pygpu') is not None:
        return None
    for folder in dirs:
        package = os.path.join(folder, 'pygpu')
        if not any(os.path.exists(os.path.join(package, 'gpuarray' + suffix))
                   for suffix in importlib.machinery.EXTENSION_SUFFIXES):
            continue
        return importlib.machinery.PathFinder.find_spec('pygpu', [folder])
    return None


class _StackFixer(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname == 'theano':
            apply_before_theano()
        elif fullname == _DOWNSAMPLE:
            return importlib.machinery.ModuleSpec(fullname, _DownsampleShim())
        elif fullname == 'pygpu':
            return system_pygpu_spec()
        elif fullname in _AFTER_IMPORT:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchAfterExec(spec.loader,
                                              _AFTER_IMPORT[fullname])
            return spec
        return None


def install():
    """Register the import hook, once per interpreter."""
    if not any(isinstance(f, _StackFixer) for f in sys.meta_path):
        sys.meta_path.insert(0, _StackFixer())
