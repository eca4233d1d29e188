"""Sample layers: batch-major layout, moments, reparameterised gradients,
seeding and input checks."""
import numpy as np
import pytest
import lasagne
import theano
import theano.tensor as T
from lasagne.layers import InputLayer, get_output

from parmesan.layers import (BernoulliSampleLayer, SampleLayer,
                             SimpleBernoulliSampleLayer, SimpleSampleLayer)
from conftest import RTOL, floatx


def gaussian_layers(layer_class, dim=3, **kwargs):
    mean, log_var = T.matrix('mean'), T.matrix('log_var')
    layer = layer_class(InputLayer((None, dim), mean),
                        InputLayer((None, dim), log_var), **kwargs)
    return layer, mean, log_var


def test_sample_layer_rows_are_batch_major():
    # A negligible spread makes each sample equal its example's mean.
    eq, iw = 2, 3
    layer, mean, log_var = gaussian_layers(SampleLayer, eq_samples=eq,
                                           iw_samples=iw, seed=1)
    sample = theano.function([mean, log_var], get_output(layer))
    means = np.arange(12.).reshape(4, 3)
    out = sample(floatx(means), floatx(np.full((4, 3), -60.0)))
    assert out.shape == (4 * eq * iw, 3)
    for b in range(4):
        for e in range(eq):
            for i in range(iw):
                np.testing.assert_allclose(out[b * eq * iw + e * iw + i],
                                           means[b], atol=1e-6)


def test_sample_layer_symbolic_counts_and_output_shape():
    eq, iw = T.iscalar('eq'), T.iscalar('iw')
    layer, mean, log_var = gaussian_layers(SampleLayer, eq_samples=eq,
                                           iw_samples=iw, seed=2)
    assert layer.output_shape == (None, 3)
    fixed, _, _ = gaussian_layers(SampleLayer, eq_samples=2, iw_samples=5)
    assert fixed.output_shape == (None, 3)
    l_mean = InputLayer((7, 3))
    assert SampleLayer(l_mean, InputLayer((7, 3)), 2, 5).output_shape == \
        (70, 3)
    sample = theano.function([mean, log_var, eq, iw], get_output(layer))
    zeros = floatx(np.zeros((4, 3)))
    assert sample(zeros, zeros, 3, 7).shape == (84, 3)


@pytest.mark.parametrize('layer_class,kwargs', [
    (SimpleSampleLayer, {}),
    (SampleLayer, {'eq_samples': 4, 'iw_samples': 5}),
])
def test_gaussian_samples_have_the_requested_moments(layer_class, kwargs):
    layer, mean, log_var = gaussian_layers(layer_class, dim=2, seed=3,
                                           **kwargs)
    sample = theano.function([mean, log_var], get_output(layer))
    means, log_vars = np.array([1.5, -2.0]), np.array([0.4, -1.2])
    n = 20000
    copies = n // (kwargs.get('eq_samples', 1) * kwargs.get('iw_samples', 1))
    draws = sample(floatx(np.tile(means, (copies, 1))),
                   floatx(np.tile(log_vars, (copies, 1))))
    std = np.exp(log_vars / 2)
    # Means within 4 standard errors; variances within 4 standard errors of
    # the sample variance of a Gaussian, sqrt(2/n) var.
    assert np.all(np.abs(draws.mean(0) - means) < 4 * std / np.sqrt(n))
    assert np.all(np.abs(draws.var(0) - std ** 2) <
                  4 * np.sqrt(2.0 / n) * std ** 2)
    # Samples of one example are independent of each other.
    assert abs(np.corrcoef(draws[::2, 0], draws[1::2, 0])[0, 1]) < 0.05


@pytest.mark.parametrize('nonlinearity,spread', [
    (lambda x: T.exp(0.5 * x), np.log(0.25)),
    (T.sqrt, 0.25),
    (lambda x: x, 0.5),
])
def test_nonlinearity_maps_the_second_input_to_a_std(nonlinearity, spread):
    layer, mean, log_var = gaussian_layers(SampleLayer, dim=1, seed=4,
                                           iw_samples=10,
                                           nonlinearity=nonlinearity)
    draws = theano.function([mean, log_var], get_output(layer))(
        floatx(np.zeros((2000, 1))), floatx(np.full((2000, 1), spread)))
    assert abs(draws.std() - 0.5) < 4 * 0.5 / np.sqrt(2 * 20000)


def test_reparameterised_gradients_match_finite_differences():
    layer, mean, log_var = gaussian_layers(SampleLayer, dim=3, eq_samples=2,
                                           iw_samples=2, seed=5)
    weights = floatx(np.random.RandomState(0).randn(16, 3))
    objective = T.sum(T.tanh(get_output(layer)) * weights)
    # Without the RNG update every call reuses the same noise, so the
    # objective is a deterministic function of (mean, log_var).
    value = theano.function([mean, log_var], objective,
                            no_default_updates=True)
    grads = theano.function([mean, log_var],
                            T.grad(objective, [mean, log_var]),
                            no_default_updates=True)
    rng = np.random.RandomState(1)
    point = [rng.randn(4, 3), rng.randn(4, 3) * 0.5]
    analytic = grads(*[floatx(p) for p in point])
    step = 1e-5 if theano.config.floatX == 'float64' else 1e-2
    for which in range(2):
        numeric = np.zeros_like(point[which])
        for index in np.ndindex(*point[which].shape):
            up = [p.copy() for p in point]
            down = [p.copy() for p in point]
            up[which][index] += step
            down[which][index] -= step
            numeric[index] = (value(*map(floatx, up)) -
                              value(*map(floatx, down))) / (2 * step)
        np.testing.assert_allclose(analytic[which], numeric, rtol=1e-4,
                                   atol=1e-6)


def draws_of(layer_builder):
    layer, mean, log_var = layer_builder()
    zeros = floatx(np.zeros((5, 3)))
    return theano.function([mean, log_var], get_output(layer))(zeros, zeros)


def test_unseeded_layers_follow_lasagnes_rng_and_differ_from_each_other():
    def build_two():
        lasagne.random.set_rng(np.random.RandomState(42))
        first = gaussian_layers(SampleLayer, iw_samples=2)
        second = gaussian_layers(SampleLayer, iw_samples=2)
        return first, second

    try:
        first, second = build_two()
        first_again, _ = build_two()
    finally:
        lasagne.random.set_rng(np.random)
    a, b = draws_of(lambda: first), draws_of(lambda: second)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, draws_of(lambda: first_again))


def test_explicit_seed_and_reseeding_reproduce_the_noise():
    layer, mean, log_var = gaussian_layers(SampleLayer, seed=9, iw_samples=2)
    twin = gaussian_layers(SampleLayer, seed=9, iw_samples=2)
    first = draws_of(lambda: (layer, mean, log_var))
    np.testing.assert_array_equal(first, draws_of(lambda: twin))
    sample = theano.function([mean, log_var], get_output(layer))
    zeros = floatx(np.zeros((5, 3)))
    before = sample(zeros, zeros)
    assert not np.allclose(before, sample(zeros, zeros))
    layer.seed(123)
    after_reseed = sample(zeros, zeros)
    layer.seed(123)
    np.testing.assert_array_equal(after_reseed, sample(zeros, zeros))


def test_bernoulli_layers_frequencies_layout_and_no_gradient():
    p = T.matrix('p')
    probabilities = np.array([[0.1, 0.5, 0.9], [0.0, 1.0, 0.3]])
    layer = BernoulliSampleLayer(InputLayer((None, 3), p), eq_samples=2,
                                 iw_samples=500, seed=6)
    draws = theano.function([p], get_output(layer))(floatx(probabilities))
    assert draws.shape == (2000, 3)
    assert set(np.unique(draws)) <= {0.0, 1.0}
    per_example = draws.reshape(2, 1000, 3).mean(1)
    stderr = np.sqrt(probabilities * (1 - probabilities) / 1000)
    assert np.all(np.abs(per_example - probabilities) <= 4 * stderr + 1e-12)
    simple = SimpleBernoulliSampleLayer(InputLayer((None, 3), p), seed=6)
    one = theano.function([p], get_output(simple))(
        floatx(np.tile(probabilities[:1], (4000, 1))))
    assert np.all(np.abs(one.mean(0) - probabilities[0]) <
                  4 * np.sqrt(0.25 / 4000))
    grad = theano.function([p], T.grad(get_output(layer).sum(), p,
                                       disconnected_inputs='ignore'))
    assert np.all(grad(floatx(probabilities)) == 0)


def test_bad_arguments_are_named():
    l_a, l_b = InputLayer((None, 3)), InputLayer((None, 4))
    with pytest.raises(ValueError, match='mean has shape.*log_var'):
        SampleLayer(l_a, l_b)
    with pytest.raises(ValueError, match='mean has shape.*log_var'):
        SimpleSampleLayer(l_a, l_b)
    with pytest.raises(ValueError, match='eq_samples must be at least 1'):
        SampleLayer(l_a, l_a, eq_samples=0)
    with pytest.raises(ValueError, match='iw_samples must be at least 1'):
        BernoulliSampleLayer(l_a, iw_samples=-2)
    with pytest.raises(TypeError, match='iw_samples'):
        SampleLayer(l_a, l_a, iw_samples=2.5)
    with pytest.raises(TypeError, match='eq_samples'):
        SampleLayer(l_a, l_a, eq_samples=T.fscalar())
    with pytest.raises(ValueError, match='matrix'):
        SampleLayer(InputLayer((None, 3, 2)), InputLayer((None, 3, 2)))


@pytest.mark.parametrize('layer_class', [SampleLayer, BernoulliSampleLayer])
def test_symbolic_counts_below_one_are_reported_when_the_function_runs(
        layer_class):
    eq, iw = T.iscalar('eq'), T.iscalar('iw')
    mean = T.matrix('mean')
    incoming = [InputLayer((None, 3), mean)] * \
        (2 if layer_class is SampleLayer else 1)
    layer = layer_class(*incoming, eq_samples=eq, iw_samples=iw, seed=3)
    sample = theano.function([mean, eq, iw], get_output(layer))
    means = floatx(np.full((2, 3), 0.5))
    assert sample(means, 2, 3).shape == (12, 3)
    for bad_eq, bad_iw, culprit in ((1, 0, 'iw_samples'),
                                    (1, -4, 'iw_samples'),
                                    (0, 5, 'eq_samples')):
        with pytest.raises(AssertionError,
                           match='%s: %s must be at least 1'
                                 % (layer_class.__name__, culprit)):
            sample(means, bad_eq, bad_iw)
