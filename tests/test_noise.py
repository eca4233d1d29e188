"""Training-pass noise layers: the noise's distribution against closed
forms, the clean passes, seeding and argument checks."""
import numpy as np
import pytest
import scipy.stats
import theano
import theano.tensor as T
from lasagne.layers import InputLayer, get_output

from parmesan.layers import DropoutCorruptionLayer, GaussianCorruptionLayer
from conftest import floatx

X = floatx(np.random.RandomState(3).uniform(1, 2, size=(400, 50)))


def outputs(layer, **kwargs):
    x = T.matrix('x')
    return theano.function([x], get_output(layer, x, **kwargs))(X)


def test_gaussian_noise_has_the_requested_moments():
    layer = GaussianCorruptionLayer(InputLayer((None, 50)), 0.3, seed=1)
    noise = (outputs(layer) - X).ravel()
    # 20,000 draws: a Kolmogorov-Smirnov test against N(0, 0.3^2)
    assert scipy.stats.kstest(noise, 'norm', args=(0, 0.3)).pvalue > 1e-3
    assert abs(noise.std() - 0.3) < 0.01


def test_dropout_zeroes_a_fraction_p_and_rescales_the_rest():
    layer = DropoutCorruptionLayer(InputLayer((None, 50)), p=0.25, seed=2)
    out = outputs(layer)
    dropped = out == 0
    # binomial(20000, 0.25): 4 standard deviations are about 0.012
    assert abs(dropped.mean() - 0.25) < 0.012
    np.testing.assert_allclose(out[~dropped], X[~dropped] / 0.75,
                               rtol=1e-6)


@pytest.mark.parametrize('make', [
    lambda l: GaussianCorruptionLayer(l, 0.3, seed=1),
    lambda l: DropoutCorruptionLayer(l, 0.5, seed=1)])
@pytest.mark.parametrize('flag', ['deterministic', 'clean', 'collect'])
def test_clean_passes_return_the_input(make, flag):
    layer = make(InputLayer((None, 50)))
    np.testing.assert_array_equal(outputs(layer, **{flag: True}), X)


def test_zero_noise_is_the_identity():
    for layer in (GaussianCorruptionLayer(InputLayer((None, 50)), 0),
                  DropoutCorruptionLayer(InputLayer((None, 50)), 0)):
        np.testing.assert_array_equal(outputs(layer), X)


def test_seeds_reproduce_and_differ():
    first = outputs(DropoutCorruptionLayer(InputLayer((None, 50)), seed=7))
    again = outputs(DropoutCorruptionLayer(InputLayer((None, 50)), seed=7))
    other = outputs(DropoutCorruptionLayer(InputLayer((None, 50)), seed=8))
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)


def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match='GaussianCorruptionLayer.*std'):
        GaussianCorruptionLayer(InputLayer((None, 5)), -1)
    with pytest.raises(ValueError, match='DropoutCorruptionLayer.*p'):
        DropoutCorruptionLayer(InputLayer((None, 5)), 1.0)
