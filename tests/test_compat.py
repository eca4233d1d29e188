"""The stack fixes take effect whatever the user imports first."""
import json
import os
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import parmesan_compat

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


def run_python(code, env_update=None, cwd='/'):
    env = dict(os.environ)
    env.pop('THEANO_FLAGS', None)
    env.update(env_update or {})
    result = subprocess.run([sys.executable, '-c', code], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split('\n')


@pytest.mark.parametrize('first', [
    'import theano', 'import lasagne', 'import parmesan',
    'import lasagne, parmesan', 'import parmesan, theano'])
def test_any_import_order_works_in_a_fresh_interpreter(first):
    out = run_python(first + '\n' + POOL_AND_SCAN)
    assert json.loads(out[0]) == EXPECTED_POOL
    assert json.loads(out[1]) == [0.0, 1.0, 3.0, 6.0]


def test_pool_shim_matches_numpy():
    out = run_python('import lasagne\n' + POOL_AND_SCAN)
    pooled = json.loads(out[0])
    ramp = np.arange(20.).reshape(4, 5)
    reference = [[ramp[r:r + 2, c:c + 2].max() for c in range(4)]
                 for r in range(3)]
    assert pooled == reference == EXPECTED_POOL


SETTINGS = ('import theano\nc = theano.config\nprint(c.floatX, c.allow_gc, '
            'repr(c.blas.ldflags), repr(c.gcc.cxxflags))')


def test_speed_defaults_apply_when_the_user_sets_nothing():
    out = run_python(SETTINGS)
    assert out[0] == "float32 False '' %r" % (
        parmesan_compat.THEANO_DEFAULTS.get('gcc.cxxflags', ''),)


def test_users_theano_flags_are_respected():
    out = run_python(SETTINGS, {'THEANO_FLAGS': 'floatX=float64,'
                                'blas.ldflags=-lm,allow_gc=True,'
                                'gcc.cxxflags=-O1'})
    assert out[0] == "float64 True '-lm' '-O1'"


def test_theanorc_settings_are_not_overridden(tmp_path):
    rc = tmp_path / 'theanorc'
    rc.write_text('[global]\nfloatX = float64\nallow_gc = True\n'
                  '[blas]\nldflags = -lm\n[gcc]\ncxxflags = -O1\n')
    out = run_python(SETTINGS, {'THEANORC': str(rc)})
    assert out[0] == "float64 True '-lm' '-O1'"


def test_flag_defaults_prepend_and_skip_user_keys(monkeypatch, tmp_path):
    monkeypatch.setenv('THEANORC', str(tmp_path / 'absent'))
    monkeypatch.setenv('THEANO_FLAGS', 'floatX=float64')
    ours = dict(parmesan_compat.THEANO_DEFAULTS)
    del ours['floatX']
    assert parmesan_compat.theano_flag_defaults() == ','.join(
        ['%s=%s' % kv for kv in sorted(ours.items())] + ['floatX=float64'])
    monkeypatch.setenv('THEANO_FLAGS', ','.join(
        '%s=%s' % kv for kv in sorted(parmesan_compat.THEANO_DEFAULTS.items())))
    assert parmesan_compat.theano_flag_defaults() == \
        os.environ['THEANO_FLAGS']


VECTOR_MATH = """
import json
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


def test_startup_hook_is_installed():
    site = sysconfig.get_paths()['purelib']
    with open(os.path.join(site, 'parmesan_compat.pth')) as hook:
        assert 'parmesan_compat.install()' in hook.read()


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
