"""DecoderNormalizeLayer, DenoiseLayer and GaussianDenoiseLayer against
numpy formulas."""
import lasagne
import numpy as np
import pytest
import theano
import theano.tensor as T
from lasagne.layers import InputLayer, get_output

from parmesan.layers import (DecoderNormalizeLayer, DenoiseLayer,
                             GaussianDenoiseLayer, ListIndexLayer,
                             NormalizeLayer)
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
    # Laid out as the original Parmesan saves them: a1..a4, c1..c4, b1.
    names = ('a1', 'a2', 'a3', 'a4', 'c1', 'c2', 'c3', 'c4', 'b1')
    for name in names:
        params[name] = rng.randn(5)
    lasagne.layers.set_all_param_values(
        layer, [floatx(params[name]) for name in names])
    p = params
    zu = z_value * u_value
    expected = (p['a1'] + p['a2'] * z_value + p['a3'] * u_value +
                p['a4'] * zu + p['b1'] * sigmoid(
                    p['c1'] + p['c2'] * z_value + p['c3'] * u_value +
                    p['c4'] * zu))
    np.testing.assert_allclose(combine(floatx(u_value), floatx(z_value)),
                               expected, rtol=RTOL * 10)
    assert [p.name for p in layer.get_params(trainable=True)] == list(names)
    assert [p.name for p in layer.get_params(regularizable=False)] == ['b1']


def test_decoder_normalize_uses_the_given_statistics():
    x, mean, var = T.matrix(), T.vector(), T.vector()
    layer = DecoderNormalizeLayer(InputLayer((None, 3), x),
                                  InputLayer((3,), mean), InputLayer((3,), var))
    data, mu, v = rng.randn(4, 3), rng.randn(3), rng.rand(3) + 0.5
    out = theano.function([x, mean, var], get_output(layer))(
        floatx(data), floatx(mu), floatx(v))
    np.testing.assert_allclose(out, (data - mu) / np.sqrt(v), rtol=RTOL)


def test_decoder_normalize_with_statistics_of_a_normalize_layer():
    # The original ladder: NormalizeLayer(return_stats=True) gives the
    # batch mean and variance as (1, D), which the decoder reuses.
    x, x_hat = T.matrix('x'), T.matrix('x_hat')
    l_stats = NormalizeLayer(InputLayer((None, 3), x), return_stats=True)
    layer = DecoderNormalizeLayer(InputLayer((None, 3), x_hat),
                                  ListIndexLayer(l_stats, 1),
                                  ListIndexLayer(l_stats, 2))
    data, other = rng.randn(6, 3) * 2 + 1, rng.randn(4, 3)
    out = theano.function([x, x_hat], get_output(layer))(floatx(data),
                                                         floatx(other))
    np.testing.assert_allclose(out, (other - data.mean(0)) /
                               np.sqrt(data.var(0)), rtol=RTOL * 10)


def test_shape_mismatches_are_named():
    with pytest.raises(ValueError, match='same known number of units'):
        DenoiseLayer(InputLayer((None, 4)), InputLayer((None, 5)))
    with pytest.raises(ValueError, match='mean must be a vector of the 3'):
        DecoderNormalizeLayer(InputLayer((None, 3)), InputLayer((4,)),
                              InputLayer((3,)))


GAUSS_PARAMS = ('a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8', 'a9', 'a10')


def gauss_combinator(u, z, p):
    """Independent float64 reference of Rasmus et al.'s "gauss" g(u, z)."""
    mu = p['a1'] * sigmoid(p['a2'] * u + p['a3']) + p['a4'] * u + p['a5']
    v = p['a6'] * sigmoid(p['a7'] * u + p['a8']) + p['a9'] * u + p['a10']
    return (z - mu) * v + mu


def build_gauss(units=4):
    u, z = T.matrix('u'), T.matrix('z')
    layer = GaussianDenoiseLayer(InputLayer((None, units), u),
                                 InputLayer((None, units), z))
    return u, z, layer


def test_gaussian_denoise_layer_matches_numpy_formula():
    r = np.random.RandomState(11)
    u, z, layer = build_gauss()
    combine = theano.function([u, z], get_output(layer))
    u_value, z_value = r.randn(2, 6, 4)
    # Official initial values: a2 = a7 = 1, rest 0, so mu = v = 0, z_hat = 0.
    for name in GAUSS_PARAMS:
        expected = 1. if name in ('a2', 'a7') else 0.
        np.testing.assert_array_equal(getattr(layer, name).get_value(),
                                      np.full(4, expected))
    np.testing.assert_array_equal(combine(floatx(u_value), floatx(z_value)),
                                  np.zeros((6, 4)))
    params = {}
    for name in GAUSS_PARAMS:
        params[name] = floatx(r.randn(4)).astype(np.float64)
        getattr(layer, name).set_value(floatx(params[name]))
    u_value, z_value = (floatx(a).astype(np.float64) for a in (u_value,
                                                               z_value))
    np.testing.assert_allclose(combine(floatx(u_value), floatx(z_value)),
                               gauss_combinator(u_value, z_value, params),
                               rtol=RTOL * 10, atol=RTOL)
    trainable = layer.get_params(trainable=True)
    assert [p.name for p in trainable] == list(GAUSS_PARAMS)
    assert layer.get_output_shape_for([(None, 4), (7, 4)]) == (7, 4)


def test_gaussian_denoise_gradients_match_finite_differences():
    r = np.random.RandomState(12)
    u, z, layer = build_gauss(units=3)
    u_value, z_value, weights = r.randn(3, 5, 3)
    # Scalar objective sum(w * z_hat); theano's gradients w.r.t. every
    # parameter against central differences of the float64 reference.
    cost = T.sum(floatx(weights) * get_output(layer))
    shareds = [getattr(layer, name) for name in GAUSS_PARAMS]
    gradients = theano.function([u, z], T.grad(cost, shareds))
    u_in, z_in = floatx(u_value), floatx(z_value)

    at_init = dict(zip(GAUSS_PARAMS, gradients(u_in, z_in)))
    for name in ('a2', 'a3', 'a7', 'a8'):
        np.testing.assert_array_equal(at_init[name], 0)
    for name in ('a1', 'a4', 'a5', 'a6', 'a9', 'a10'):
        assert np.all(at_init[name] != 0), name

    params = {}
    for name in GAUSS_PARAMS:
        params[name] = floatx(r.randn(3)).astype(np.float64)
        getattr(layer, name).set_value(floatx(params[name]))
    u64, z64 = u_in.astype(np.float64), z_in.astype(np.float64)
    eps = 1e-6
    for name, grad in zip(GAUSS_PARAMS, gradients(u_in, z_in)):
        numeric = np.empty(3)
        for unit in range(3):
            shifted = []
            for sign in (1, -1):
                p = dict(params)
                p[name] = params[name].copy()
                p[name][unit] += sign * eps
                shifted.append(np.sum(weights * gauss_combinator(u64, z64, p)))
            numeric[unit] = (shifted[0] - shifted[1]) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=max(RTOL * 10, 1e-6),
                                   atol=1e-6, err_msg=name)


def test_gaussian_denoise_shape_mismatches_are_named():
    with pytest.raises(ValueError, match=r'GaussianDenoiseLayer: .*same known '
                       r'number of units.*\(None, 4\) and \(None, 5\)'):
        GaussianDenoiseLayer(InputLayer((None, 4)), InputLayer((None, 5)))
    with pytest.raises(ValueError, match='same known number of units'):
        GaussianDenoiseLayer(InputLayer((None, None)), InputLayer((None, 5)))
