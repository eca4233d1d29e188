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


def test_users_theano_flags_are_respected():
    out = run_python('import theano\nprint(theano.config.floatX, '
                     'repr(theano.config.blas.ldflags))',
                     {'THEANO_FLAGS': 'floatX=float32,blas.ldflags=-lm'})
    assert out[0] == "float32 '-lm'"


def test_theanorc_settings_are_not_overridden(tmp_path):
    rc = tmp_path / 'theanorc'
    rc.write_text('[global]\nfloatX = float32\n[blas]\nldflags = -lm\n')
    out = run_python('import theano\nprint(theano.config.floatX, '
                     'repr(theano.config.blas.ldflags))',
                     {'THEANORC': str(rc)})
    assert out[0] == "float32 '-lm'"


def test_flag_defaults_prepend_and_skip_user_keys(monkeypatch, tmp_path):
    monkeypatch.setenv('THEANORC', str(tmp_path / 'absent'))
    monkeypatch.setenv('THEANO_FLAGS', 'floatX=float32')
    assert parmesan_compat.theano_flag_defaults() == \
        'blas.ldflags=,floatX=float32'
    monkeypatch.setenv('THEANO_FLAGS', 'floatX=float32,blas.ldflags=-lm')
    assert parmesan_compat.theano_flag_defaults() == \
        'floatX=float32,blas.ldflags=-lm'


def test_numpy_aliases_are_the_builtins():
    parmesan_compat.apply_before_theano()
    assert (np.bool, np.int, np.float, np.complex, np.object) == \
        (bool, int, float, complex, object)


def test_startup_hook_is_installed():
    site = sysconfig.get_paths()['purelib']
    with open(os.path.join(site, 'parmesan_compat.pth')) as hook:
        assert 'parmesan_compat.install()' in hook.read()
