"""Relaxed categorical sample layers: simplex and batch-major layout,
temperature limits and annealing, the Gumbel-max property, logistic-normal
statistics, straight-through estimators, densities, seeding and input
checks."""
import numpy as np
import pytest
import lasagne
import scipy.integrate
import scipy.special
import scipy.stats
import theano
import theano.tensor as T
from lasagne.layers import InputLayer, get_output

from parmesan.distributions import log_concrete
from parmesan.layers import (GumbelSoftmaxSampleLayer,
                             LogisticNormalSampleLayer)
from conftest import RTOL, floatx


def gumbel(dim=3, temperature=1.0, **kwargs):
    logits = T.matrix('logits')
    layer = GumbelSoftmaxSampleLayer(InputLayer((None, dim), logits),
                                     temperature, **kwargs)
    return layer, [logits]


def logistic_normal(dim=3, temperature=1.0, **kwargs):
    mean, log_var = T.matrix('mean'), T.matrix('log_var')
    layer = LogisticNormalSampleLayer(InputLayer((None, dim), mean),
                                      InputLayer((None, dim), log_var),
                                      temperature, **kwargs)
    return layer, [mean, log_var]


def one_hot(indices, num_categories):
    return np.eye(num_categories)[indices]


def four_sigma_frequencies(counts, probabilities):
    """Every category's frequency within 4 binomial standard errors."""
    n = counts.sum()
    stderr = np.sqrt(probabilities * (1 - probabilities) / n)
    return np.all(np.abs(counts / n - probabilities) <= 4 * stderr)


@pytest.mark.parametrize('build', [gumbel, logistic_normal])
def test_rows_lie_on_the_simplex_and_are_batch_major(build):
    eq, iw, dim = 2, 3, 4
    layer, inputs = build(dim=dim, eq_samples=eq, iw_samples=iw, seed=1)
    sample = theano.function(inputs, get_output(layer))
    # Gaps of 1000 swamp the noise, so every sample is its example's argmax
    # one-hot vector; different argmaxes tell the examples' rows apart.
    classes = np.array([2, 0, 3, 1, 2])
    scores = 1000.0 * one_hot(classes, dim)
    extra = [np.zeros_like(scores)] if build is logistic_normal else []
    out = sample(floatx(scores), *map(floatx, extra))
    assert out.shape == (len(classes) * eq * iw, dim)
    for b, c in enumerate(classes):
        for e in range(eq):
            for i in range(iw):
                np.testing.assert_allclose(out[b * eq * iw + e * iw + i],
                                           one_hot(c, dim), atol=1e-6)
    # Moderate scores: strictly inside the simplex, rows sum to 1.
    rng = np.random.RandomState(0)
    moderate = [rng.randn(50, dim) for _ in [scores] + extra]
    out = sample(*map(floatx, moderate))
    assert np.all(out >= 0) and np.all(out <= 1)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=RTOL)


def test_output_shapes_symbolic_counts_and_symbolic_temperature():
    l_logits = InputLayer((7, 3))
    assert GumbelSoftmaxSampleLayer(l_logits, 1.0, 2, 5).output_shape == \
        (70, 3)
    assert LogisticNormalSampleLayer(l_logits, l_logits, 1.0,
                                     iw_samples=4).output_shape == (28, 3)
    eq, iw, tau = T.iscalar('eq'), T.iscalar('iw'), T.scalar('tau')
    layer, inputs = gumbel(temperature=tau, eq_samples=eq, iw_samples=iw,
                           seed=2)
    assert layer.output_shape == (None, 3)
    sample = theano.function(inputs + [tau, eq, iw], get_output(layer))
    out = sample(floatx(np.zeros((4, 3))), 0.5, 3, 7)
    assert out.shape == (84, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=RTOL)


def test_gumbel_max_frequencies_match_softmax_and_st_is_one_hot():
    logits = np.array([[1.0, 0.0, -1.0, 0.5], [-2.0, 0.3, 0.3, 1.2]])
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    soft, inputs = gumbel(dim=4, temperature=0.7, eq_samples=5,
                          iw_samples=1000, seed=3)
    hard = GumbelSoftmaxSampleLayer(soft.input_layer, 0.7, eq_samples=5,
                                    iw_samples=1000, straight_through=True,
                                    seed=4)
    draw = theano.function(inputs, get_output([soft, hard]))
    soft_out, hard_out = draw(floatx(logits))
    assert set(np.unique(hard_out)) == {0.0, 1.0}
    np.testing.assert_array_equal(hard_out.sum(axis=1), 1.0)
    for out in soft_out, hard_out:
        per_example = out.argmax(axis=1).reshape(2, 5000)
        for b in range(2):
            counts = np.bincount(per_example[b], minlength=4)
            assert four_sigma_frequencies(counts, probabilities[b])


def test_temperature_limits_and_annealing_without_recompiling():
    tau = theano.shared(floatx(1.0), name='tau')
    layer, inputs = gumbel(dim=3, temperature=tau, iw_samples=1000, seed=5)
    # Without RNG updates each call reuses the same Gumbel noise, so only the
    # temperature changes between calls.
    sample = theano.function(inputs, get_output(layer),
                             no_default_updates=True)
    logits = floatx([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])

    tau.set_value(floatx(1e-3))
    cold = sample(logits)
    assert np.mean(cold.max(axis=1) > 0.999) > 0.97
    tau.set_value(floatx(1e3))
    hot = sample(logits)
    # (logits + g) / tau stays within a few 1e-2 of 0, so y ~ 1/3 each.
    assert np.max(np.abs(hot - 1 / 3.)) < 0.02

    # tau * (log y - mean log y) = (logits + g) - mean, whatever the tau.
    centred = []
    for value in 0.6, 2.5:
        tau.set_value(floatx(value))
        log_y = np.log(sample(logits).astype(np.float64))
        centred.append(value * (log_y - log_y.mean(axis=1, keepdims=True)))
    atol = 1e-4 if theano.config.floatX == 'float32' else 1e-9
    np.testing.assert_allclose(centred[0], centred[1], rtol=0, atol=atol)


def exact_argmax_probabilities(mu, sigma):
    """P(argmax_k a_k = k) for independent a_k ~ N(mu_k, sigma_k^2)."""
    def integrand(x, k):
        others = [j for j in range(len(mu)) if j != k]
        return scipy.stats.norm.pdf(x, mu[k], sigma[k]) * np.prod(
            scipy.stats.norm.cdf(x, mu[others], sigma[others]))
    return np.array([scipy.integrate.quad(integrand, -np.inf, np.inf,
                                          args=(k,))[0]
                     for k in range(len(mu))])


def test_logistic_normal_matches_its_gaussian_scores():
    mu, sigma, tau = np.array([0.5, 0.0, -0.3]), np.array([1.0, 0.5, 1.5]), \
        0.5
    layer, inputs = logistic_normal(dim=3, temperature=tau, iw_samples=100,
                                    seed=6)
    draws = theano.function(inputs, get_output(layer))(
        floatx(np.tile(mu, (200, 1))),
        floatx(np.tile(np.log(sigma ** 2), (200, 1))))
    n = len(draws)
    assert n == 20000
    # tau * log(y_0 / y_1) = a_0 - a_1 ~ N(mu_0 - mu_1, s_0^2 + s_1^2): mean
    # 0 noise (not vae_ssl's mean 1) and division (not multiplication) by tau.
    diff = tau * np.log(draws[:, 0].astype(np.float64) / draws[:, 1])
    var = sigma[0] ** 2 + sigma[1] ** 2
    assert abs(diff.mean() - (mu[0] - mu[1])) < 4 * np.sqrt(var / n)
    assert abs(diff.var() - var) < 4 * np.sqrt(2.0 / n) * var
    counts = np.bincount(draws.argmax(axis=1), minlength=3)
    assert four_sigma_frequencies(counts, exact_argmax_probabilities(mu,
                                                                     sigma))


@pytest.mark.parametrize('build', [gumbel, logistic_normal])
def test_straight_through_is_one_hot_with_the_soft_gradient(build):
    dim, rows = 5, 6 * 2 * 3
    soft, inputs = build(dim=dim, eq_samples=2, iw_samples=3, seed=7)
    incoming = soft.input_layers if build is logistic_normal \
        else [soft.input_layer]
    hard = type(soft)(*incoming, temperature=1.0, eq_samples=2,
                      iw_samples=3, straight_through=True, seed=7)
    weights = floatx(np.random.RandomState(1).randn(rows, dim))
    outputs = get_output([soft, hard])
    # A linear objective has the same dL/dy at the hard and the soft sample,
    # so the straight-through gradient must equal the soft one exactly.
    grads = [T.grad(T.sum(weights * out), inputs) for out in outputs]
    # Both layers share a seed; without RNG updates they share the noise.
    evaluate = theano.function(inputs, outputs + grads[0] + grads[1],
                               no_default_updates=True)
    rng = np.random.RandomState(2)
    values = evaluate(*[floatx(rng.randn(6, dim)) for _ in inputs])
    soft_out, hard_out = values[:2]
    soft_grads = values[2:2 + len(inputs)]
    hard_grads = values[2 + len(inputs):]
    # At temperature 1, argmax(y_soft) is the argmax of the softmax's input.
    np.testing.assert_array_equal(hard_out,
                                  one_hot(soft_out.argmax(axis=1), dim))
    for soft_grad, hard_grad in zip(soft_grads, hard_grads):
        assert np.any(soft_grad != 0)
        np.testing.assert_array_equal(hard_grad, soft_grad)


def test_gumbel_samples_follow_the_concrete_distribution():
    # For K = 2, y_1 = sigmoid((delta + L) / tau) with L = g_1 - g_2 standard
    # logistic, so P(y_1 <= t) = sigmoid(tau logit(t) - delta) exactly.
    logits, tau = np.array([0.8, -0.4]), 0.6
    delta = logits[0] - logits[1]
    layer, inputs = gumbel(dim=2, temperature=tau, iw_samples=20000, seed=8)
    y = theano.function(inputs, get_output(layer))(floatx(logits[None]))
    y1 = y[:, 0].astype(np.float64)

    def cdf(t):
        with np.errstate(divide='ignore'):
            return scipy.special.expit(tau * scipy.special.logit(t) - delta)

    assert scipy.stats.kstest(y1, cdf).pvalue > 1e-3
    # The same samples against bins of log_concrete's density (chi-square).
    y_var, l_var = T.matrix(), T.matrix()
    density = theano.function([y_var, l_var], T.exp(log_concrete(
        y_var, l_var, tau)))

    def pdf_of_logit(s):
        # Integrate over s = logit(y_1), dy_1 = y_1 (1 - y_1) ds, which takes
        # away the density's singularities at 0 and 1.
        t, one_minus_t = scipy.special.expit([s, -s])
        if t * one_minus_t < 1e-30:
            return 0.0  # far in a tail that decays like exp(-tau |s|)
        return density(floatx([[t, one_minus_t]]),
                       floatx(logits[None]))[0] * t * one_minus_t

    edges = np.linspace(0, 1, 21)
    with np.errstate(divide='ignore'):
        logit_edges = scipy.special.logit(edges)
    expected = np.array([scipy.integrate.quad(pdf_of_logit, a, b)[0]
                         for a, b in zip(logit_edges[:-1], logit_edges[1:])])
    np.testing.assert_allclose(expected.sum(), 1.0, rtol=1e-3)
    observed = np.histogram(y1, edges)[0]
    chi2 = np.sum((observed - len(y1) * expected) ** 2 /
                  (len(y1) * expected))
    assert scipy.stats.chi2.sf(chi2, len(expected) - 1) > 1e-3


def test_unseeded_layers_follow_lasagnes_rng_and_differ_from_each_other():
    def build_two():
        lasagne.random.set_rng(np.random.RandomState(42))
        first, inputs = gumbel(iw_samples=2)
        second = GumbelSoftmaxSampleLayer(first.input_layer, 1.0,
                                          iw_samples=2)
        return theano.function(inputs, get_output([first, second]))

    try:
        draw, draw_again = build_two(), build_two()
    finally:
        lasagne.random.set_rng(np.random)
    zeros = floatx(np.zeros((5, 3)))
    a, b = draw(zeros)
    assert not np.allclose(a, b)
    again = draw_again(zeros)
    np.testing.assert_array_equal(a, again[0])
    np.testing.assert_array_equal(b, again[1])


def test_explicit_seed_and_reseeding_reproduce_the_noise():
    layer, inputs = logistic_normal(iw_samples=2, seed=9)
    twin = LogisticNormalSampleLayer(*layer.input_layers, temperature=1.0,
                                     iw_samples=2, seed=9)
    sample = theano.function(inputs, get_output([layer, twin]))
    zeros = floatx(np.zeros((5, 3)))
    first, first_twin = sample(zeros, zeros)
    np.testing.assert_array_equal(first, first_twin)
    assert not np.allclose(first, sample(zeros, zeros)[0])
    layer.seed(123)
    after_reseed = sample(zeros, zeros)[0]
    layer.seed(123)
    np.testing.assert_array_equal(after_reseed, sample(zeros, zeros)[0])


def test_bad_arguments_are_named():
    l_a, l_b = InputLayer((None, 3)), InputLayer((None, 4))
    for bad in 0.0, -1.0, float('nan'), float('inf'):
        with pytest.raises(ValueError, match='temperature must be finite'):
            GumbelSoftmaxSampleLayer(l_a, bad)
    with pytest.raises(ValueError, match='temperature.*shared'):
        LogisticNormalSampleLayer(l_a, l_a, theano.shared(0.0))
    for bad in True, '1.0', None, T.vector(), T.iscalar().astype('bool'):
        with pytest.raises(TypeError, match='temperature'):
            GumbelSoftmaxSampleLayer(l_a, bad)
    with pytest.raises(ValueError, match='matrix.*logits'):
        GumbelSoftmaxSampleLayer(InputLayer((None, 3, 2)), 1.0)
    with pytest.raises(ValueError, match='matrix.*mean'):
        LogisticNormalSampleLayer(InputLayer((None,)), InputLayer((None,)),
                                  1.0)
    with pytest.raises(ValueError, match='at least 2 categories'):
        GumbelSoftmaxSampleLayer(InputLayer((None, 1)), 1.0)
    with pytest.raises(ValueError, match='mean has shape.*log_var'):
        LogisticNormalSampleLayer(l_a, l_b, 1.0)
    with pytest.raises(ValueError, match='eq_samples must be at least 1'):
        GumbelSoftmaxSampleLayer(l_a, 1.0, eq_samples=0)
    with pytest.raises(ValueError, match='iw_samples must be at least 1'):
        LogisticNormalSampleLayer(l_a, l_a, 1.0, iw_samples=-1)
    with pytest.raises(TypeError, match='iw_samples'):
        GumbelSoftmaxSampleLayer(l_a, 1.0, iw_samples=2.5)
    with pytest.raises(TypeError, match='straight_through'):
        GumbelSoftmaxSampleLayer(l_a, 1.0, straight_through='yes')
    with pytest.raises(TypeError, match='nonlinearity'):
        LogisticNormalSampleLayer(l_a, l_a, 1.0, nonlinearity=2)
    # Accepted forms of the temperature.
    for good in 1, np.float32(0.5), theano.shared(2.0), T.scalar(),\
            T.iscalar():
        GumbelSoftmaxSampleLayer(l_a, good)


@pytest.mark.parametrize('make', [gumbel, logistic_normal])
def test_a_shared_temperature_set_out_of_range_fails_when_the_function_runs(
        make):
    tau = theano.shared(floatx(1.0), name='tau')
    layer, inputs = make(dim=3, temperature=tau, iw_samples=4, seed=6)
    sample = theano.function(inputs, get_output(layer),
                             no_default_updates=True)
    arrays = [floatx(np.zeros((2, 3))) for _ in inputs]
    np.testing.assert_allclose(sample(*arrays).sum(axis=1), 1.0, rtol=RTOL)
    for bad in 0.0, -1.0, np.nan, np.inf:
        tau.set_value(floatx(bad))
        with pytest.raises(AssertionError,
                           match='%s: temperature must be finite and > 0'
                                 % type(layer).__name__):
            sample(*arrays)
