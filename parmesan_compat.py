"""Make Theano 1.0.5 and Lasagne 0.1 run on Python 3.11 and numpy 1.2x.

This is the one place that knows what the old stack needs today. Installing
Parmesan puts ``parmesan_compat.pth`` into site-packages; Python executes it
at start-up, which calls :func:`install`. That registers an import hook and
nothing else (no numpy, no Theano is imported at start-up; a stale or broken
install is skipped in silence, and ``import parmesan`` then reports it). The
fixes are applied at the moment Theano or Lasagne is first imported,
whichever comes first, so ``import theano``, ``import lasagne`` and
``import parmesan`` work in any order, in any program of the environment.

The fixes:

* numpy >= 1.24 removed the aliases ``np.bool``, ``np.int``, ``np.float``,
  ``np.complex`` and ``np.object`` that Theano uses; they are restored as the
  builtins they always were.
* Theano's BLAS auto-detection reads ``numpy.distutils`` build info, which
  crashes with numpy 1.23 and is meaningless with numpy >= 1.26. Unless the
  user configured ``blas.ldflags`` (``THEANO_FLAGS`` or a ``.theanorc``),
  it defaults to empty: Theano then calls BLAS through numpy's C API, and
  its warning saying so is silenced, since that is the intended set-up.
* Lasagne 0.1 imports ``theano.tensor.signal.downsample``, which Theano 1.0
  renamed to ``pool``; a shim module maps ``max_pool_2d(ds, st, padding)`` to
  ``pool_2d(ws, stride, pad)``.
* Theano's Cython scan extension includes ``longintrepr.h``, which moved in
  Python 3.11, so it can never build there. Marking it as absent makes
  Theano use its Python scan at once instead of failing a compile per
  process.
* Python >= 3.12 (the GPU machines' Python, with Theano installed from a
  patched build): numpy has no ``numpy.distutils`` there and Python no
  ``distutils``; Theano gets a stand-in for the first (numpy's include
  folder) and setuptools' vendored copy of the second.
* pygpu, which Theano's GPU backend (gpuarray) needs, is not on PyPI; where
  the system has one built for this Python (Debian/Ubuntu: python3-pygpu),
  a virtualenv without its own imports that one package from the system's
  site directory, and nothing else from there (:func:`system_pygpu_spec`).
* ``COp.c_code_cache_version`` (``theano.gof.op``) puts Python's ``hash()``
  of the op's C source into the compile cache's key. String hashes are
  salted per process (``PYTHONHASHSEED``), so the key of every module with
  such an op (``DimShuffle`` in every model, ...) changed from one process
  to the next and each new process compiled them again. The version is
  now a SHA-256 digest of the same source: stable, so a second process
  that builds the same model compiles nothing.
* Theano's element-wise ``maximum`` and ``minimum`` write ``nan("")`` for a
  NaN operand, which OpenCL C lacks: no GPU kernel holding one (Theano
  puts the shape arithmetic of reshapes there too) built on OpenCL. They
  now return the NaN operand itself: the same results, in C that every
  backend compiles (:func:`_nan_operand_extrema`).

Parmesan's speed defaults (measured with ``benchmarks/run.py
--ablations``) are for Parmesan's users only: they apply when ``import
parmesan`` (or a Parmesan trainer) comes before Theano's import, each only
where the user set nothing, and never when the environment variable
``PARMESAN_NO_SPEED_DEFAULTS`` is set to anything but ``0`` or empty:

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

A program that imports Theano before Parmesan keeps Theano's own
configuration (float64, ``allow_gc=True``): Theano fixes its configuration
at import, and graphs built before ``import parmesan`` must not change type
under the program. The defaults are given to Theano at its import without
touching ``THEANO_FLAGS``, so child processes see the user's environment
as it was.
"""
# No importlib.abc: it pulls in importlib.resources (tens of ms at every
# interpreter start); the import system needs only the methods below.
import hashlib
import importlib.machinery
import os
import sys

__all__ = ['install', 'enable_speed_defaults', 'theano_defaults',
           'apply_before_theano', 'system_pygpu_spec',
           'stable_source_version']

#: What the old stack needs: used only where the user set nothing.
COMPAT_DEFAULTS = {'blas.ldflags': ''}

#: Set it (to anything but 0) to keep Theano's own configuration under
#: ``import parmesan`` too.
OPT_OUT_VARIABLE = 'PARMESAN_NO_SPEED_DEFAULTS'

#: The message Theano logs when ``blas.ldflags`` is empty.
_NUMPY_BLAS_WARNING = 'Using NumPy C-API based implementation for BLAS'

_speed_defaults_wanted = False


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


def speed_defaults():
    """Parmesan's speed defaults for Theano, as a dict of config keys."""
    defaults = {'floatX': 'float32', 'allow_gc': 'False'}
    vector_math = _vector_math_cxxflags()
    if vector_math:
        defaults['gcc.cxxflags'] = vector_math
    return defaults


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


def enable_speed_defaults():
    """Ask for Parmesan's speed defaults at Theano's import.

    ``import parmesan`` calls it. It has an effect only before Theano's
    import and without ``PARMESAN_NO_SPEED_DEFAULTS``; the keys the user set
    in ``THEANO_FLAGS`` or a ``.theanorc`` stay the user's.

    Returns
    -------
    bool
        Whether the speed defaults will apply (False: Theano was imported
        already, or the user opted out).
    """
    global _speed_defaults_wanted
    if os.environ.get(OPT_OUT_VARIABLE, '') not in ('', '0') or \
            'theano.configparser' in sys.modules:
        return False
    _speed_defaults_wanted = True
    return True


def theano_defaults():
    """The Theano settings Parmesan gives Theano at its import.

    The compatibility defaults always, the speed defaults if
    :func:`enable_speed_defaults` asked for them, less every key the user
    set in ``THEANO_FLAGS`` or a ``.theanorc``.

    Returns
    -------
    dict
        Config key to value, as in ``THEANO_FLAGS``.
    """
    defaults = dict(COMPAT_DEFAULTS)
    if _speed_defaults_wanted:
        defaults.update(speed_defaults())
    # a .theanorc's option names reach us lower-cased (as Theano reads them)
    taken = {key.lower() for key in _user_theano_keys()}
    return {key: value for key, value in defaults.items()
            if key.lower() not in taken}


def _silence_numpy_blas_warning(record):
    return _NUMPY_BLAS_WARNING not in record.getMessage()


def apply_before_theano():
    """Apply the fixes that must precede ``import theano``. Idempotent."""
    import numpy as np
    for name, builtin in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, builtin)
    if sys.version_info >= (3, 11):
        sys.modules.setdefault(_SCAN_EXTENSION, None)


def _add_theano_defaults(configparser):
    """Hand ``theano.configparser`` Parmesan's defaults.

    Theano parses ``THEANO_FLAGS`` once, into ``THEANO_FLAGS_DICT``, while
    this module loads, and reads every setting from that dict (then from
    the ``.theanorc``) when the setting is declared, later in its import.
    Adding the defaults to the dict right after the module ran leaves the
    environment, and so every child process, as the user set it.
    """
    defaults = theano_defaults()
    for key, value in defaults.items():
        configparser.THEANO_FLAGS_DICT.setdefault(key, value)
    if defaults.get('blas.ldflags') == '':
        # our choice, not a misconfiguration the user must hear about
        import logging
        logging.getLogger('theano.tensor.blas').addFilter(
            _silence_numpy_blas_warning)


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


_EXTREMA_C_CODE = ('%(z)s = ((%(y)s){0}(%(x)s) ? (%(y)s) : '
                   '((%(x)s){0}=(%(y)s) ? (%(x)s) : '
                   '((%(x)s) != (%(x)s) ? (%(x)s) : (%(y)s))));')


def _nan_operand_extrema(scalar_basic):
    """Give Theano's scalar ``Maximum`` and ``Minimum`` C code without
    ``nan("")``: where an operand is NaN, the result is that operand."""
    for op_class, comparison in ((scalar_basic.Maximum, '>'),
                                 (scalar_basic.Minimum, '<')):
        template = _EXTREMA_C_CODE.format(comparison)
        version = op_class.c_code_cache_version

        def c_code(self, node, name, inputs, outputs, sub,
                   template=template):
            if any(i.type in scalar_basic.complex_types
                   for i in node.inputs):
                raise NotImplementedError()
            (x, y), (z,) = inputs, outputs
            return template % {'x': x, 'y': y, 'z': z}

        def c_code_cache_version(self, version=version):
            return tuple(version(self)) + ('nan-operand', 1)
        op_class.c_code = c_code
        op_class.c_code_cache_version = c_code_cache_version


#: module name -> fix applied right after the module is executed
_AFTER_IMPORT = {'theano.configparser': _add_theano_defaults,
                 'theano.gof.op': _stable_cop_cache_version,
                 'theano.scalar.basic': _nan_operand_extrema}


class _PatchAfterExec(object):
    """Run a module's own loader, then a fix on the fresh module."""

    def __init__(self, loader, fix):
        self.loader, self.fix = loader, fix

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.fix(module)

    def __getattr__(self, name):
        # get_source, is_package, ... for tracebacks and introspection
        return getattr(self.loader, name)


class _DownsampleShim(object):
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
#: pygpu, which is not on PyPI), then where a pygpu built from source with
#: the system's pip lands.
SYSTEM_PYGPU_DIRS = ('/usr/lib/python3/dist-packages',
                     '/usr/local/lib/python%d.%d/dist-packages'
                     % sys.version_info[:2])


def system_pygpu_spec(dirs=SYSTEM_PYGPU_DIRS):
    """Spec of a system-wide ``pygpu`` built for this interpreter, or None.

    A virtualenv does not see the system's site directories, and exposing all
    of them would let Debian's numpy and friends shadow the pinned stack; so
    only the ``pygpu`` package itself is offered, and only where the venv has
    none of its own and the system's extension matches this Python's ABI
    (an extension built for another Python would fail to load, and Theano
    would then report pygpu as missing anyway).
    """
    if importlib.machinery.PathFinder.find_spec('pygpu') is not None:
        return None
    for folder in dirs:
        package = os.path.join(folder, 'pygpu')
        if not os.path.isfile(os.path.join(package, '__init__.py')):
            continue
        if not any(os.path.isfile(os.path.join(package, 'gpuarray' + suffix))
                   for suffix in importlib.machinery.EXTENSION_SUFFIXES):
            continue
        return importlib.machinery.PathFinder.find_spec('pygpu', [folder])
    return None


class _NumpyDistutilsStandIn(object):
    """The two names Theano takes from ``numpy.distutils``, which numpy has
    no more on Python >= 3.12: the include folder of numpy's C headers, and
    (only to guess ``blas.ldflags``, which Parmesan sets) ``system_info``,
    here finding nothing."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        import types
        import numpy
        module.__path__ = []
        misc_util = types.ModuleType(module.__name__ + '.misc_util')
        misc_util.get_numpy_include_dirs = lambda: [numpy.get_include()]
        system_info = types.ModuleType(module.__name__ + '.system_info')
        system_info.get_info = lambda name, notfound_action=0: {}
        system_info.system_info = types.SimpleNamespace(verbosity=0)
        for name, submodule in (('misc_util', misc_util),
                                ('system_info', system_info)):
            setattr(module, name, submodule)
            sys.modules[submodule.__name__] = submodule


_NUMPY_DISTUTILS = 'numpy.distutils'


def _numpy_distutils_spec(numpy_path):
    """A stand-in ``numpy.distutils`` where numpy (at `numpy_path`) has
    none, else None."""
    if importlib.machinery.PathFinder.find_spec(_NUMPY_DISTUTILS,
                                                numpy_path) is not None:
        return None
    return importlib.machinery.ModuleSpec(_NUMPY_DISTUTILS,
                                          _NumpyDistutilsStandIn(),
                                          is_package=True)


def _provide_distutils():
    """Python >= 3.12 has no ``distutils``, which Theano imports; setuptools
    vendors one and exposes it through its ``_distutils_hack`` (a ``.pth``
    that a PYTHONPATH folder does not run)."""
    if importlib.machinery.PathFinder.find_spec('distutils') is not None:
        return
    try:
        __import__('_distutils_hack').add_shim()
    except ImportError:
        pass  # no setuptools: Theano's import will name distutils


class _StackFixer(object):
    def find_spec(self, fullname, path, target=None):
        if fullname == 'theano':
            apply_before_theano()
            if sys.version_info >= (3, 12):
                _provide_distutils()
        elif fullname == _DOWNSAMPLE:
            return importlib.machinery.ModuleSpec(fullname, _DownsampleShim())
        elif fullname == 'pygpu':
            return system_pygpu_spec()
        elif fullname == _NUMPY_DISTUTILS:
            return _numpy_distutils_spec(path)
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
