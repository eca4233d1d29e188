"""The Concrete log-density against Maddison et al.'s formula, its
normalisation on the simplex and the exact K = 2 law; categorical KLs to the
uniform distribution against numpy."""
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import theano
import theano.tensor as T

from parmesan import distributions as D
from conftest import RTOL, floatx

FLOAT32 = theano.config.floatX == 'float32'

_y, _logits, _tau = T.matrix('y'), T.matrix('logits'), T.scalar('tau')
_log_concrete = None


def log_concrete(y, logits, tau):
    """The compiled D.log_concrete (built once, on first use)."""
    global _log_concrete
    if _log_concrete is None:
        _log_concrete = theano.function(
            [_y, _logits, _tau], D.log_concrete(_y, _logits, _tau))
    return _log_concrete(floatx(y), floatx(logits), floatx(tau))


def maddison_density(y, logits, tau):
    """Maddison et al. (2016) eq. 2, directly, in float64:
    (K-1)! tau^(K-1) prod_k alpha_k y_k^(-tau-1) / sum_i alpha_i y_i^(-tau).
    """
    alpha = np.exp(logits)
    k = y.shape[-1]
    denominator = np.sum(alpha * y ** -tau, axis=-1, keepdims=True)
    return (math.factorial(k - 1) * tau ** (k - 1) *
            np.prod(alpha * y ** (-tau - 1) / denominator, axis=-1))


@pytest.mark.parametrize('tau', [0.3, 1.0, 2.5])
def test_log_concrete_matches_maddisons_formula_for_five_classes(tau):
    rng = np.random.RandomState(0)
    y = rng.dirichlet(np.ones(5), size=8)
    logits = rng.randn(8, 5) * 2
    np.testing.assert_allclose(log_concrete(y, logits, tau),
                               np.log(maddison_density(y, logits, tau)),
                               rtol=RTOL)


def density_on_the_segment(logits, tau):
    """The density in the free coordinate y_1 of (y_1, 1 - y_1)."""
    def density(y1):
        # Kept 1e-30 from the ends, where the log-density is undefined
        # (QUADPACK's weighted rule evaluates at the endpoints).
        point = np.maximum([y1, 1 - y1], 1e-30)
        return math.exp(log_concrete([point], [logits], tau)[0])
    return density


@pytest.mark.parametrize('logits,tau', [
    ([0.3, -0.5], 0.5),     # U-shaped, integrable singularities at 0 and 1
    ([1.0, 2.0], 2.0),      # unimodal
    ([-1.0, 1.5], 1.0),
])
def test_log_concrete_integrates_to_one_on_the_two_class_simplex(logits,
                                                                 tau):
    # The density behaves like y^(tau-1) (1-y)^(tau-1) at the ends, which
    # QUADPACK's algebraic weight integrates exactly; what remains is smooth,
    # so float32 round-off cannot upset the extrapolation.
    density = density_on_the_segment(logits, tau)

    def smooth_part(y1):
        return density(y1) / max(y1 * (1 - y1), 1e-30) ** (tau - 1)

    tol = 1e-6 if FLOAT32 else 1e-8
    total, _ = scipy.integrate.quad(smooth_part, 0, 1, weight='alg',
                                    wvar=(tau - 1, tau - 1), epsabs=tol,
                                    epsrel=tol)
    assert abs(total - 1) < 10 * tol


def test_log_concrete_integrates_to_one_on_the_three_class_simplex():
    logits, tau = [0.5, -0.2, 1.0], 1.5

    def density(y2, y1):
        return math.exp(log_concrete([[y1, y2, 1 - y1 - y2]], [logits],
                                     tau)[0])

    total, _ = scipy.integrate.dblquad(density, 0, 1, 0, lambda y1: 1 - y1,
                                       epsabs=1e-7, epsrel=1e-7)
    assert abs(total - 1) < (1e-4 if FLOAT32 else 1e-6)


def test_log_concrete_is_the_derivative_of_the_exact_two_class_cdf():
    # y_1 = sigmoid((delta + L) / tau) with L standard logistic, so
    # P(y_1 <= t) = sigmoid(u), u = tau logit(t) - delta, and the density is
    # sigmoid(u) (1 - sigmoid(u)) tau / (t (1 - t)).
    logits, tau = np.array([0.7, -1.1]), 0.4
    t = np.linspace(0.01, 0.99, 25)
    u = tau * scipy.special.logit(t) - (logits[0] - logits[1])
    s = scipy.special.expit(u)
    reference = np.log(s * (1 - s) * tau / (t * (1 - t)))
    y = np.stack([t, 1 - t], axis=1)
    np.testing.assert_allclose(
        log_concrete(y, np.tile(logits, (25, 1)), tau), reference,
        rtol=RTOL, atol=1e-4 if FLOAT32 else 1e-10)


def test_log_concrete_is_finite_at_extreme_points_and_eps_clips_zeros():
    # A low-temperature sample: a log-space numpy reference (scipy's
    # logsumexp) stays exact where y_k^(-tau) would be huge.
    y = np.array([[1 - 2e-30, 1e-30, 1e-30], [1e-20, 1 - 1e-20, 0.0]])
    logits, tau = np.array([[0.0, 5.0, -5.0], [2.0, 0.0, 1.0]]), 0.1
    log_y = np.log(np.maximum(y, 1e-30))
    scores = logits - tau * log_y
    reference = (math.lgamma(3) + 2 * math.log(tau)
                 + np.sum(scores - scipy.special.logsumexp(
                     scores, axis=1, keepdims=True), axis=1)
                 - log_y.sum(axis=1))
    y_var, l_var = T.matrix(), T.matrix()
    clipped = theano.function([y_var, l_var],
                              D.log_concrete(y_var, l_var, tau, eps=1e-30))
    np.testing.assert_allclose(clipped(floatx(y), floatx(logits)), reference,
                               rtol=RTOL)
    # Without eps the exact zero has no finite log-density.
    assert np.isfinite(log_concrete(y[:1], logits[:1], tau)).all()
    assert not np.isfinite(log_concrete(y[1:], logits[1:], tau)).any()


def test_categorical_kls_to_uniform_match_numpy():
    rng = np.random.RandomState(3)
    logits = np.vstack([rng.randn(4, 6) * 3, [[800.0, 0, 0, -800, 0, 1]]])
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    # xlogy(0, 0) = 0: zero probabilities contribute nothing.
    reference = np.sum(scipy.special.xlogy(probs, probs), axis=1) + np.log(6)
    p_var, l_var = T.matrix('p'), T.matrix('logits')
    kl_p = D.kl_categorical_uniform(p_var)
    kl_l = D.kl_categorical_logits_uniform(l_var)
    evaluate = theano.function(
        [p_var, l_var],
        [kl_p, kl_l, T.grad(kl_p.sum(), p_var), T.grad(kl_l.sum(), l_var)])
    from_probs, from_logits, grad_p, grad_l = evaluate(floatx(probs),
                                                       floatx(logits))
    atol = 1e-5 if FLOAT32 else 1e-12
    np.testing.assert_allclose(from_probs, reference, rtol=RTOL, atol=atol)
    np.testing.assert_allclose(from_logits, reference, rtol=RTOL, atol=atol)
    # The last row's probabilities underflow to exactly 0, yet the gradients
    # stay finite; d KL / d logits = p (log p - sum_j p_j log p_j).
    assert np.all(probs[-1, 1:5] == 0)
    assert np.isfinite(grad_p).all() and np.isfinite(grad_l).all()
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = probs * (log_p - np.sum(probs * log_p, axis=1,
                                       keepdims=True))
    np.testing.assert_allclose(grad_l, expected, rtol=1e-3 if FLOAT32 else
                               1e-7, atol=atol)
    # A uniform row has KL 0; a one-hot row has KL log K.
    np.testing.assert_allclose(
        evaluate(floatx(np.full((1, 6), 1 / 6.)), floatx(np.zeros((1, 6))))
        [:2], [[0.0], [0.0]], atol=atol)
    np.testing.assert_allclose(from_probs[-1], np.log(6), rtol=RTOL)
