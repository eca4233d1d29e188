"""DecoderNormalizeLayer and DenoiseLayer against numpy formulas."""
import numpy as np
import pytest
import theano
import theano.tensor as T
from lasagne.layers import InputLayer, get_output

from parmesan.layers import DecoderNormalizeLayer, DenoiseLayer
from conftest import RTOL, floatx

rng = np.random.RandomState(7)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_denoise_layer_matches_numpy_formula():
    u, z = T.matrix('u'), T.matrix('z')
    layer = DenoiseLayer(InputLayer((None, 5), u), InputLayer((None, 5), z))
    combine = theano.function([u, z], get_output(layer))
    u_value, z_value = rng.randn(2, 8, 5)
    # Initially a2 = c2 = 1 and the rest 0: the output is z.
    np.testing.assert_allclose(combine(floatx(u_value), floatx(z_value)),
                               z_value, rtol=RTOL)
    params = {}
    for name in ('a1', 'a2', 'a3', 'a4', 'b1', 'c1', 'c2', 'c3', 'c4'):
        params[name] = rng.randn(5)
        getattr(layer, name).set_value(floatx(params[name]))
    p = params
    zu = z_value * u_value
    expected = (p['a1'] + p['a2'] * z_value + p['a3'] * u_value +
                p['a4'] * zu + p['b1'] * sigmoid(
                    p['c1'] + p['c2'] * z_value + p['c3'] * u_value +
                    p['c4'] * zu))
    np.testing.assert_allclose(combine(floatx(u_value), floatx(z_value)),
                               expected, rtol=RTOL * 10)
    assert len(layer.get_params(trainable=True)) == 9


def test_decoder_normalize_uses_the_given_statistics():
    x, mean, var = T.matrix(), T.vector(), T.vector()
    layer = DecoderNormalizeLayer(InputLayer((None, 3), x),
                                  InputLayer((3,), mean), InputLayer((3,), var))
    data, mu, v = rng.randn(4, 3), rng.randn(3), rng.rand(3) + 0.5
    out = theano.function([x, mean, var], get_output(layer))(
        floatx(data), floatx(mu), floatx(v))
    np.testing.assert_allclose(out, (data - mu) / np.sqrt(v), rtol=RTOL)


def test_shape_mismatches_are_named():
    with pytest.raises(ValueError, match='same known number of units'):
        DenoiseLayer(InputLayer((None, 4)), InputLayer((None, 5)))
    with pytest.raises(ValueError, match='mean must be a vector of the 3'):
        DecoderNormalizeLayer(InputLayer((None, 3)), InputLayer((4,)),
                              InputLayer((3,)))
