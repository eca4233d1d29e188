"""The VIMCO estimator (Mnih & Rezende, 2016): the learning signals against
the paper's formula written out in numpy, and the surrogate's value and
gradients."""
import itertools

import numpy as np
import pytest
import scipy.special
import theano
import theano.tensor as T

from parmesan.objectives import vimco_learning_signals, vimco_surrogate
from conftest import RTOL, floatx


def paper_learning_signals(log_w):
    """Mnih & Rezende (2016), eqs. 8-10, one sample at a time: the signal
    of sample j is L - log (1/K)(sum_{i!=j} f_i + f^_{-j}), where f^_{-j}
    is the geometric mean of the other K - 1 weights."""
    rows, count = log_w.shape
    signals = np.empty_like(log_w)
    for r in range(rows):
        bound = scipy.special.logsumexp(log_w[r]) - np.log(count)
        for j in range(count):
            others = np.delete(log_w[r], j)
            log_geometric_mean = others.mean()
            signals[r, j] = bound - (scipy.special.logsumexp(
                np.append(others, log_geometric_mean)) - np.log(count))
    return signals


def compiled_signals():
    log_w = T.matrix('log_w')
    return theano.function([log_w], vimco_learning_signals(log_w))


@pytest.mark.parametrize('count', [2, 3, 7])
def test_learning_signals_match_the_papers_formula(count):
    rng = np.random.RandomState(count)
    # Log-weights of the size a binary-latent MNIST model produces.
    log_w = rng.normal(-120.0, 4.0, size=(5, count))
    np.testing.assert_allclose(compiled_signals()(floatx(log_w)),
                               paper_learning_signals(log_w), rtol=RTOL,
                               atol=1e-8)


def test_learning_signals_differ_from_the_arithmetic_leave_one_out():
    # The original Parmesan example replaced w_j by the arithmetic mean of
    # the others; the paper uses the geometric mean. With unequal weights
    # the two differ, so a match above is not a coincidence of the data.
    rng = np.random.RandomState(0)
    log_w = rng.normal(-50.0, 3.0, size=(4, 5))
    count = log_w.shape[1]
    arithmetic = np.empty_like(log_w)
    for r, j in itertools.product(range(4), range(count)):
        others = np.delete(log_w[r], j)
        arithmetic[r, j] = scipy.special.logsumexp(log_w[r]) - \
            scipy.special.logsumexp(np.append(
                others, scipy.special.logsumexp(others) - np.log(count - 1)))
    ours = compiled_signals()(floatx(log_w))
    assert np.max(np.abs(ours - arithmetic)) > 1e-2


def test_learning_signals_are_stable_for_far_apart_and_huge_log_weights():
    log_w = np.array([[-1e5, -1e5 + 800.0, -1e5 - 900.0, -1e5 + 3.0],
                      [-3000.0, -3000.0, -3000.0, -3000.0]])
    signals = compiled_signals()(floatx(log_w))
    assert np.all(np.isfinite(signals))
    np.testing.assert_allclose(signals, paper_learning_signals(log_w),
                               rtol=RTOL, atol=1e-6)
    # Equal weights: replacing one by the mean of the rest changes nothing.
    np.testing.assert_allclose(signals[1], 0.0, atol=1e-9)


def test_vector_and_eq_axis_layouts_give_the_same_signals():
    rng = np.random.RandomState(1)
    batch, eq, count = 3, 2, 4
    log_w = rng.normal(-80.0, 3.0, size=(batch, eq, count))
    vector, cube = T.vector('log_w'), T.tensor3('log_w')
    from_vector = theano.function(
        [vector], vimco_learning_signals(vector, num_samples=count))
    from_cube = theano.function([cube], vimco_learning_signals(cube))
    expected = paper_learning_signals(log_w.reshape(-1, count))
    np.testing.assert_allclose(from_vector(floatx(log_w.ravel())), expected,
                               rtol=RTOL, atol=1e-8)
    np.testing.assert_allclose(from_cube(floatx(log_w)), expected,
                               rtol=RTOL, atol=1e-8)


def test_fewer_than_two_samples_or_a_vector_without_k_is_an_error():
    with pytest.raises(ValueError, match='at least 2 samples'):
        vimco_learning_signals(T.vector(), num_samples=1)
    with pytest.raises(ValueError, match='num_samples'):
        vimco_surrogate(T.vector(), T.vector())


def test_surrogate_value_is_the_bound_and_its_gradients_are_vimcos():
    rng = np.random.RandomState(2)
    batch, count = 4, 6
    log_w_value = rng.normal(-100.0, 3.0, size=(batch, count))
    log_q_value = rng.normal(-30.0, 2.0, size=(batch, count))
    log_w, log_q = T.matrix('log_w'), T.matrix('log_q')
    surrogate = vimco_surrogate(log_w, log_q)
    value, grad_w, grad_q = theano.function(
        [log_w, log_q], [surrogate] + T.grad(surrogate, [log_w, log_q]))(
            floatx(log_w_value), floatx(log_q_value))
    bounds = scipy.special.logsumexp(log_w_value, axis=1) - np.log(count)
    np.testing.assert_allclose(value, bounds.mean(), rtol=RTOL)
    # Averaged over the batch: each example contributes 1/batch of its own
    # normalised weights and learning signals (the original summed the
    # score term over the batch but averaged the bound).
    normalised = scipy.special.softmax(log_w_value, axis=1)
    np.testing.assert_allclose(grad_w, normalised / batch, rtol=RTOL,
                               atol=1e-12)
    np.testing.assert_allclose(
        grad_q, paper_learning_signals(log_w_value) / batch, rtol=RTOL,
        atol=1e-10)
