"""The stack fixes take effect whatever the user imports first."""
import itertools
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import parmesan_compat
from conftest import REPO

POOL_AND_SCAN = '''
import json
import numpy as np
import theano, theano.tensor as T
import lasagne
x = T.tensor4('x')
l_in = lasagne.layers.InputLayer((None, 1, 4, 5), x)
l_pool = lasagne.layers.MaxPool2DLayer(l_in, pool_size=2, stride=1, pad=0)
pool = theano.function([x], lasagne.layers.get_output(l_pool))
data = np.arange(20.).reshape(1, 1, 4, 5).astype(theano.config.floatX)
v = T.vector('v')
cumulative, _ = theano.scan(lambda a, acc: acc + a, sequences=[v],
                            outputs_info=[T.zeros((), dtype=v.dtype)])
scan = theano.function([v], cumulative)
print(json.dumps(pool(data)[0, 0].tolist()))
print(json.dumps(scan(np.arange(4.).astype(v.dtype)).tolist()))
'''
# A 2x2 max pool with stride 1 of a 4x5 ramp picks the lower-right corners.
EXPECTED_POOL = [[6.0 + 5 * r + c for c in range(4)] for r in range(3)]


def run_python(code, env_update=None, cwd='/', flags=(), quiet=True):
    """Run `code` in a fresh interpreter without the suite's THEANO_FLAGS;
    return its stdout lines. `quiet`: it must print nothing to stderr (no
    warning from the default set-up)."""
    env = dict(os.environ)
    env.pop('THEANO_FLAGS', None)
    env.pop(parmesan_compat.OPT_OUT_VARIABLE, None)
    env.update(env_update or {})
    result = subprocess.run([sys.executable] + list(flags) + ['-c', code],
                            env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    if quiet:
        # waiting for another process's lock on the shared compile cache
        # is news, not a warning
        assert [line for line in result.stderr.splitlines() if not
                line.startswith('INFO (theano.gof.compilelock)')] == []
    return result.stdout.split('\n')


@pytest.mark.parametrize('order', list(itertools.permutations(
    ['theano', 'lasagne', 'parmesan'])), ids='-'.join)
def test_any_import_order_works_in_a_fresh_interpreter(order):
    out = run_python(''.join('import %s\n' % name for name in order) +
                     POOL_AND_SCAN)
    assert json.loads(out[0]) == EXPECTED_POOL
    assert json.loads(out[1]) == [0.0, 1.0, 3.0, 6.0]


def test_pool_shim_matches_numpy():
    out = run_python('import lasagne\n' + POOL_AND_SCAN)
    pooled = json.loads(out[0])
    ramp = np.arange(20.).reshape(4, 5)
    reference = [[ramp[r:r + 2, c:c + 2].max() for c in range(4)]
                 for r in range(3)]
    assert pooled == reference == EXPECTED_POOL


SETTINGS = ('import os, json, subprocess, sys\nimport theano\n'
            'c = theano.config\nprint(c.floatX, c.allow_gc, '
            'repr(c.blas.ldflags), repr(c.gcc.cxxflags))\n'
            'print(json.dumps(os.environ.get("THEANO_FLAGS")))\n'
            'print(subprocess.run([sys.executable, "-c", "import os; '
            'print(os.environ.get(\'THEANO_FLAGS\'))"], capture_output=True,'
            ' text=True).stdout.strip())')
#: Theano 1.0.5's own defaults, blas.ldflags aside (the compatibility fix).
THEANO_OWN = "float64 True '' ''"
PARMESAN_SPEED = "float32 False '' %r" % (
    parmesan_compat.speed_defaults().get('gcc.cxxflags', ''),)


@pytest.mark.parametrize('first, expected', [
    ('import parmesan', PARMESAN_SPEED),
    ('import parmesan.experiments', PARMESAN_SPEED),
    ('import theano; import parmesan', THEANO_OWN),
    ('import lasagne, parmesan', THEANO_OWN),
    ('', THEANO_OWN)])
def test_speed_defaults_only_for_parmesan_imported_before_theano(
        first, expected):
    out = run_python(first + '\n' + SETTINGS)
    assert out[0] == expected
    # the environment, and so every child process, is left as it was
    assert out[1:3] == ['null', 'None']


def test_speed_defaults_can_be_switched_off():
    out = run_python('import parmesan\n' + SETTINGS,
                     {parmesan_compat.OPT_OUT_VARIABLE: '1'})
    assert out[0] == THEANO_OWN
    out = run_python('import parmesan\n' + SETTINGS,
                     {parmesan_compat.OPT_OUT_VARIABLE: '0'})
    assert out[0] == PARMESAN_SPEED


def test_users_theano_flags_are_respected_and_passed_on_unchanged():
    flags = 'floatX=float64,blas.ldflags=-lm,allow_gc=True,gcc.cxxflags=-O1'
    out = run_python('import parmesan\n' + SETTINGS, {'THEANO_FLAGS': flags},
                     quiet=False)
    assert out[0] == "float64 True '-lm' '-O1'"
    assert out[1:3] == [json.dumps(flags), flags]


def test_one_user_flag_leaves_the_other_defaults():
    out = run_python('import parmesan\n' + SETTINGS,
                     {'THEANO_FLAGS': 'allow_gc=True'})
    assert out[0] == PARMESAN_SPEED.replace('False', 'True')


def test_theanorc_settings_are_not_overridden(tmp_path):
    rc = tmp_path / 'theanorc'
    rc.write_text('[global]\nfloatX = float64\nallow_gc = True\n'
                  '[blas]\nldflags = -lm\n[gcc]\ncxxflags = -O1\n')
    out = run_python('import parmesan\n' + SETTINGS, {'THEANORC': str(rc)},
                     quiet=False)
    assert out[0] == "float64 True '-lm' '-O1'"


def test_theano_defaults_skip_the_users_keys(monkeypatch, tmp_path):
    monkeypatch.setenv('THEANORC', str(tmp_path / 'absent'))
    monkeypatch.setattr(parmesan_compat, '_speed_defaults_wanted', True)
    monkeypatch.setenv('THEANO_FLAGS', 'floatX=float64,device=cpu')
    expected = dict(parmesan_compat.COMPAT_DEFAULTS)
    expected.update(parmesan_compat.speed_defaults())
    del expected['floatX']
    assert parmesan_compat.theano_defaults() == expected
    monkeypatch.setattr(parmesan_compat, '_speed_defaults_wanted', False)
    monkeypatch.setenv('THEANO_FLAGS', '')
    assert parmesan_compat.theano_defaults() == {'blas.ldflags': ''}
    monkeypatch.setenv('THEANO_FLAGS', 'blas.ldflags=-lblas')
    assert parmesan_compat.theano_defaults() == {}


def test_numpy_blas_warning_silenced_only_where_parmesan_chose_it():
    run_python('import lasagne')  # quiet: asserts an empty stderr
    env = {'THEANO_FLAGS': 'blas.ldflags='}
    result = subprocess.run([sys.executable, '-c', 'import lasagne'],
                            env=dict(os.environ, **env), capture_output=True,
                            text=True, timeout=600)
    assert 'Using NumPy C-API based implementation for BLAS' in \
        result.stderr


VECTOR_MATH = """
import json
import parmesan  # its speed defaults: the vector math
import numpy as np
import theano, theano.tensor as T
x = T.vector('x')
f = theano.function([x], [T.nnet.softplus(x), T.exp(x), T.log(x),
                          T.log1p(x), T.tanh(x)])
special = [-np.inf, -1e30, -100., -30., -1., -1e-30, 0., 1e-30, 0.5, 1.,
           30., 88., 100., 1e30, np.inf, np.nan]
data = np.concatenate([special, np.linspace(-20, 20, 1001)])
print(json.dumps([data.tolist()] + [o.tolist() for o in f(
    data.astype(theano.config.floatX))]))
"""


@pytest.mark.parametrize('floatx', ['float32', 'float64'])
def test_vectorised_math_keeps_ieee_semantics_and_accuracy(floatx):
    """The shipped gcc.cxxflags vectorise exp, log, ... with glibc's libmvec:
    the results must match numpy's to a few ulp, and nan, inf and -inf must
    come out where IEEE arithmetic puts them (no -ffinite-math-only)."""
    out = run_python(VECTOR_MATH, {'THEANO_FLAGS': 'floatX=' + floatx})
    data, *found = [np.array(v, dtype=float) for v in json.loads(out[0])]
    x = data.astype(floatx)
    # Theano's softplus returns x itself above 14 (float32) or 16 (float64)
    cutoff = 14 if floatx == 'float32' else 16
    with np.errstate(all='ignore'):
        expected = [np.where(x > cutoff, x, np.logaddexp(0, x)), np.exp(x), np.log(x), np.log1p(x),
                    np.tanh(x)]
    ulp = np.finfo(floatx).eps
    for name, ours, ref in zip(['softplus', 'exp', 'log', 'log1p', 'tanh'],
                               found, expected):
        ref = ref.astype(float)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), name)
        infinite = np.isinf(ref)
        np.testing.assert_array_equal(ours[infinite], ref[infinite], name)
        finite = np.isfinite(ref)
        np.testing.assert_allclose(ours[finite], ref[finite], rtol=8 * ulp,
                                   atol=1e-30, err_msg=name)


def test_numpy_aliases_are_the_builtins():
    parmesan_compat.apply_before_theano()
    assert (np.bool, np.int, np.float, np.complex, np.object) == \
        (bool, int, float, complex, object)


HOOK = os.path.join(REPO, 'parmesan_compat.pth')
HOOK_INSTALLED = """
import site, sys
site.addsitedir(sys.argv[1])
print(any(type(f).__name__ == '_StackFixer' for f in sys.meta_path))
"""


@pytest.mark.parametrize('module, installed', [
    (None, 'False'),                    # stale: the checkout moved away
    ('raise RuntimeError("broken")\n', 'False'),
    (open(parmesan_compat.__file__).read(), 'True')])
def test_startup_hook_is_silent_where_parmesan_is_gone_or_broken(
        tmp_path, module, installed):
    """Python runs the .pth of a site directory at start-up; -S keeps the
    venv's own site-packages (and the real parmesan_compat) out of it."""
    shutil.copy(HOOK, tmp_path)
    if module is not None:
        (tmp_path / 'parmesan_compat.py').write_text(module)
    result = subprocess.run(
        [sys.executable, '-S', '-c', HOOK_INSTALLED, str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd='/')
    assert (result.returncode, result.stderr) == (0, '')
    assert result.stdout.strip() == installed


def test_startup_hook_is_installed():
    site = sysconfig.get_paths()['purelib']
    with open(os.path.join(site, 'parmesan_compat.pth')) as installed, \
            open(HOOK) as source:
        assert installed.read() == source.read()


def _fake_pygpu(folder, extension):
    package = folder / 'pygpu'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text('')
    (package / ('gpuarray' + extension)).write_text('')
    return str(package / '__init__.py')


def test_system_pygpu_is_offered_only_when_built_for_this_python(tmp_path):
    import importlib.machinery
    this_abi = importlib.machinery.EXTENSION_SUFFIXES[0]
    matching = _fake_pygpu(tmp_path / 'ok', this_abi)
    _fake_pygpu(tmp_path / 'other', '.cpython-27-x86_64-linux-gnu.so')
    (tmp_path / 'empty').mkdir()
    folders = [str(tmp_path / name) for name in ('empty', 'other', 'ok')]
    spec = parmesan_compat.system_pygpu_spec(folders)
    if spec is None:  # this environment has a pygpu of its own
        assert importlib.machinery.PathFinder.find_spec('pygpu') is not None
        return
    assert spec.origin == matching
    assert spec.submodule_search_locations == [os.path.dirname(matching)]
    assert parmesan_compat.system_pygpu_spec(folders[:2]) is None


def test_own_pygpu_takes_precedence_over_the_systems(tmp_path, monkeypatch):
    import importlib.machinery
    this_abi = importlib.machinery.EXTENSION_SUFFIXES[0]
    _fake_pygpu(tmp_path / 'venv', this_abi)
    _fake_pygpu(tmp_path / 'system', this_abi)
    monkeypatch.syspath_prepend(str(tmp_path / 'venv'))
    assert parmesan_compat.system_pygpu_spec([str(tmp_path / 'system')]) \
        is None


DEBIAN_PYGPU = os.path.join(parmesan_compat.SYSTEM_PYGPU_DIRS[0], 'pygpu')


def test_venv_imports_the_systems_pygpu_and_nothing_else():
    """In this virtualenv (no pygpu of its own), ``import pygpu`` loads
    Debian's python3-pygpu while numpy stays the venv's."""
    import importlib.util
    reason = None
    if not os.path.isdir(DEBIAN_PYGPU):
        reason = 'no system pygpu at %s (apt-get install python3-pygpu)' % \
            DEBIAN_PYGPU
    elif importlib.util.find_spec('mako') is None:
        reason = 'pygpu needs mako (pip install mako)'
    if reason:
        if os.environ.get('PARMESAN_REQUIRE_GPU_TESTS', '') not in ('', '0'):
            pytest.fail(reason)
        pytest.skip(reason)
    out = run_python('import numpy, pygpu, pygpu.gpuarray, sys\n'
                     'print(pygpu.__file__)\nprint(numpy.__file__)\n'
                     'print(sys.prefix)')
    assert out[0] == os.path.join(DEBIAN_PYGPU, '__init__.py')
    assert out[1].startswith(out[2]) and out[2] == sys.prefix


def test_numpy_distutils_stand_in_where_numpy_has_none(tmp_path):
    """Where numpy has no distutils (Python >= 3.12), Theano's two uses of
    it are served: numpy's include folder, and no BLAS found."""
    import importlib.util
    assert parmesan_compat._numpy_distutils_spec(np.__path__) is None
    spec = parmesan_compat._numpy_distutils_spec([str(tmp_path)])
    module = importlib.util.module_from_spec(spec)
    names = ('numpy.distutils.misc_util', 'numpy.distutils.system_info')
    before = {name: sys.modules.get(name) for name in names}
    try:
        spec.loader.exec_module(module)
        assert module.misc_util.get_numpy_include_dirs() == \
            [np.get_include()]
        assert os.path.isfile(os.path.join(
            module.misc_util.get_numpy_include_dirs()[0], 'numpy',
            'arrayobject.h'))
        assert module.system_info.get_info('blas_opt') == {}
    finally:
        for name, previous in before.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


COP_VERSION = '''
import json, theano
from theano.tensor.elemwise import DimShuffle
op = DimShuffle((False, False), (1, 0))
print(json.dumps([op.c_code_cache_version()[0], op.func_codes]))
'''


def test_cop_cache_version_is_a_digest_of_the_source_in_every_process():
    """Theano 1.0.5 keyed COps by hash() of their C source, which changes
    with PYTHONHASHSEED; the fixed version is the same in every process and
    is the SHA-256 of the source (hashlib here is the reference)."""
    import hashlib
    found = [json.loads(run_python(COP_VERSION, {'PYTHONHASHSEED': seed})[0])
             for seed in ('1', '2')]
    assert found[0] == found[1]
    version, sources = found[0]
    digest = hashlib.sha256('\0'.join(sources).encode()).hexdigest()
    assert version == int(digest[:16], 16)


COMPILE_AND_COUNT = '''
import glob, os, theano, theano.tensor as T
x = T.matrix('x')
f = theano.function([x], (x.T * 2).dimshuffle('x', 0, 1))
assert f([[1., 2.]]).shape == (1, 2, 1)
print(len(glob.glob(os.path.join(theano.config.compiledir, 'tmp*',
                                 'mod.cpp'))))
'''


@pytest.mark.slow
def test_a_second_process_compiles_nothing_again(tmp_path):
    """Two processes with different hash seeds build the same graph on one
    compile cache: the second finds every module of the first."""
    flags = {'THEANO_FLAGS': 'base_compiledir=%s' % tmp_path}
    counts = [int(run_python(COMPILE_AND_COUNT,
                             dict(flags, PYTHONHASHSEED=seed))[0])
              for seed in ('1', '2', '3')]
    assert counts[0] > 0
    assert counts[1] == counts[2] == counts[0]


def test_elementwise_extrema_return_the_nan_operand_without_nan_call():
    """Theano's maximum / minimum C code called nan(""), which OpenCL C
    lacks; the fixed code returns the NaN operand: numpy's results, NaNs
    included, from compiled C."""
    import theano
    import theano.tensor as T
    from theano.scalar import basic
    x, y = T.vector('x'), T.vector('y')
    compiled = theano.function([x, y], [T.maximum(x, y), T.minimum(x, y),
                                        2 * T.maximum(x, y) + 1])
    assert any(isinstance(getattr(node.op, 'scalar_op', None),
                          basic.Composite)
               for node in compiled.maker.fgraph.toposort())
    a = np.array([1, np.nan, 3, np.nan, -1, 0], dtype=theano.config.floatX)
    b = np.array([2, 1, np.nan, np.nan, -1, -0.5],
                 dtype=theano.config.floatX)
    largest, smallest, fused = compiled(a, b)
    np.testing.assert_array_equal(largest, np.maximum(a, b))
    np.testing.assert_array_equal(smallest, np.minimum(a, b))
    np.testing.assert_array_equal(fused, 2 * np.maximum(a, b) + 1)
    node = T.maximum(x, y).owner
    code = basic.maximum.c_code(node, 'n', ['a', 'b'], ['z'], {})
    assert 'nan(' not in code and 'a' in code
    assert basic.maximum.c_code_cache_version()[-2:] == ('nan-operand', 1)
