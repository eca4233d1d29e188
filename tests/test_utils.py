"""log-sum-exp against scipy, the importance-weighted bound on a linear
Gaussian model with an exact likelihood, and the confusion matrix."""
import numpy as np
import pytest
import scipy.special
import scipy.stats
import theano
import theano.tensor as T
import lasagne

from parmesan.distributions import log_normal, log_normal2, log_stdnormal
from parmesan.layers import SampleLayer
from parmesan.utils import (ConfusionMatrix, importance_weighted_bound,
                            log_mean_exp, log_sum_exp, one_hot)
from conftest import RTOL, floatx


@pytest.mark.parametrize('axis,keepdims', [(None, False), (1, False),
                                           (1, True), ((0, 2), False),
                                           (-1, True)])
def test_log_sum_exp_and_log_mean_exp_match_scipy(axis, keepdims):
    data = np.random.RandomState(0).randn(3, 4, 5) * 300
    data[0, 0] = -np.inf  # a slice of -inf values must stay finite
    x = T.tensor3()
    lse, lme = theano.function(
        [x], [log_sum_exp(x, axis, keepdims=keepdims),
              log_mean_exp(x, axis, keepdims=keepdims)])(
            floatx(data))
    reference = scipy.special.logsumexp(data, axis=axis, keepdims=keepdims)
    count = data.size if axis is None else np.prod(
        [data.shape[a] for a in np.atleast_1d(axis)])
    np.testing.assert_allclose(lse, reference, rtol=RTOL)
    np.testing.assert_allclose(lme, reference - np.log(count), rtol=RTOL)
    assert np.shape(lse) == np.shape(reference)


def test_log_sum_exp_third_argument_is_the_original_sum_op():
    # The original Parmesan: log_sum_exp(A, axis=None, sum_op=T.sum), so
    # log_sum_exp(x, 1, T.mean) is the log-mean-exp over axis 1.
    data = np.random.RandomState(3).randn(4, 6) * 50
    x = T.matrix()
    by_position, by_keyword, with_keepdims = theano.function([x], [
        log_sum_exp(x, 1, T.mean), log_sum_exp(x, axis=1, sum_op=T.mean),
        log_sum_exp(x, 1, T.sum, keepdims=True)])(floatx(data))
    reference = scipy.special.logsumexp(data, axis=1)
    np.testing.assert_allclose(by_position, reference - np.log(6), rtol=RTOL)
    np.testing.assert_allclose(by_keyword, reference - np.log(6), rtol=RTOL)
    np.testing.assert_allclose(with_keepdims, reference[:, None], rtol=RTOL)
    with pytest.raises(TypeError, match='sum_op'):
        log_sum_exp(x, 1, True)


@pytest.mark.parametrize('dtype', ['int32', 'int64', 'uint8'])
def test_one_hot_matches_numpy_eye_and_compiles_without_scatter(dtype):
    labels = np.random.RandomState(2).randint(0, 5, size=7).astype(dtype)
    lv = T.vector(dtype=dtype)
    function = theano.function([lv], one_hot(lv, 5))
    values = function(labels)
    np.testing.assert_array_equal(values, np.eye(5)[labels])
    assert values.dtype == theano.config.floatX
    assert one_hot(lv, 5, dtype='int8').dtype == 'int8'
    ops = {type(n.op).__name__ for n in function.maker.fgraph.toposort()}
    assert not any(op.startswith('AdvancedIncSubtensor') for op in ops), ops


def test_one_hot_rejects_what_is_not_an_integer_vector():
    with pytest.raises(TypeError, match='one_hot: labels must be an integer'):
        one_hot(T.vector(), 3)
    with pytest.raises(TypeError, match='one_hot: labels must be an integer'):
        one_hot(T.imatrix(), 3)


@pytest.mark.parametrize('sum_op,offset', [(T.sum, 0.), (T.mean, np.log(3))])
def test_log_sum_exp_with_infinite_entries_matches_scipy(sum_op, offset):
    data = np.array([[np.inf, 0., 1.], [-np.inf, -np.inf, -np.inf],
                     [np.inf, np.inf, -np.inf], [1e3, -np.inf, 2.]])
    x, v = T.matrix(), T.vector()
    rows, whole, keepdims, pair = theano.function([x, v], [
        log_sum_exp(x, 1, sum_op), log_sum_exp(x, None, sum_op),
        log_sum_exp(x, axis=1, sum_op=sum_op, keepdims=True),
        log_sum_exp(v, sum_op=sum_op)])(floatx(data), floatx([np.inf, 0.]))
    with np.errstate(invalid='ignore'):
        reference = scipy.special.logsumexp(data, axis=1)
    np.testing.assert_allclose(rows, reference - offset, rtol=RTOL)
    np.testing.assert_allclose(keepdims[:, 0], reference - offset, rtol=RTOL)
    assert whole == np.inf and pair == np.inf


def test_log_sum_exp_gradient_is_softmax_even_when_huge():
    data = floatx(np.random.RandomState(1).randn(4, 6) * 1000)
    x = T.matrix()
    grad = theano.function([x], T.grad(log_sum_exp(x, axis=1).sum(), x))
    softmax = np.exp(data - scipy.special.logsumexp(data, 1, keepdims=True))
    np.testing.assert_allclose(grad(data), softmax, rtol=RTOL, atol=1e-12)


class LinearGaussian(object):
    """z ~ N(0, I_dz), x | z ~ N(W z + b, sigma^2 I): log p(x) is exact."""

    def __init__(self, dim_z, dim_x, seed):
        rng = np.random.RandomState(seed)
        self.W = rng.randn(dim_x, dim_z)
        self.b = rng.randn(dim_x)
        self.sigma = 0.8
        self.rng = rng

    def data(self, n):
        z = self.rng.randn(n, self.W.shape[1])
        return z.dot(self.W.T) + self.b + self.sigma * self.rng.randn(
            n, self.W.shape[0])

    def log_px(self, x):
        cov = self.W.dot(self.W.T) + self.sigma ** 2 * np.eye(len(self.b))
        return scipy.stats.multivariate_normal(self.b, cov).logpdf(x)

    def posterior(self, x):
        """Exact posterior mean and covariance of z given each row of x."""
        precision = np.eye(self.W.shape[1]) + \
            self.W.T.dot(self.W) / self.sigma ** 2
        cov = np.linalg.inv(precision)
        return (x - self.b).dot(self.W).dot(cov) / self.sigma ** 2, cov

    def elbo(self, x, q_mean, q_var):
        """The closed-form ELBO under q = N(q_mean, diag(q_var))."""
        residual = x - q_mean.dot(self.W.T) - self.b
        spread = q_var.dot((self.W ** 2).T)
        log_lik = (-0.5 * np.log(2 * np.pi * self.sigma ** 2) -
                   (residual ** 2 + spread) / (2 * self.sigma ** 2)).sum(1)
        log_prior = (-0.5 * np.log(2 * np.pi) - (q_mean ** 2 + q_var) / 2
                     ).sum(1)
        entropy = (0.5 * np.log(2 * np.pi * np.e * q_var)).sum(1)
        return log_lik + log_prior + entropy

    def bound_function(self, eq_samples, iw_samples):
        """Compile x, q_mean, q_log_var -> (per-example bound, log-weights)
        through a SampleLayer."""
        x, q_mean, q_log_var = T.matrix('x'), T.matrix('m'), T.matrix('lv')
        dim_z = self.W.shape[1]
        l_mean = lasagne.layers.InputLayer((None, dim_z), q_mean)
        l_log_var = lasagne.layers.InputLayer((None, dim_z), q_log_var)
        l_z = SampleLayer(l_mean, l_log_var, eq_samples, iw_samples, seed=7)
        z = lasagne.layers.get_output(l_z)
        W, b = floatx(self.W), floatx(self.b)
        per_example = (x.shape[0], eq_samples, iw_samples, -1)
        z4 = z.reshape(per_example)
        x_mean = T.dot(z4, W.T) + b
        log_px_z = log_normal(x.dimshuffle(0, 'x', 'x', 1), x_mean,
                              floatx(self.sigma)).sum(-1)
        log_qz = log_normal2(z4, q_mean.dimshuffle(0, 'x', 'x', 1),
                             q_log_var.dimshuffle(0, 'x', 'x', 1)).sum(-1)
        log_w = (log_px_z + log_stdnormal(z4).sum(-1) - log_qz).flatten()
        inputs = [x, q_mean, q_log_var]
        extra = [s for s in (eq_samples, iw_samples)
                 if isinstance(s, T.Variable)]
        return theano.function(
            inputs + extra,
            [importance_weighted_bound(log_w, eq_samples, iw_samples), log_w])


def test_exact_posterior_gives_log_px_for_every_sample_in_batch_major_order():
    # With one latent the diagonal q is the exact posterior, so every
    # importance weight equals p(x) of its own example: any mix-up of rows
    # between examples would show.
    model = LinearGaussian(dim_z=1, dim_x=4, seed=3)
    x = model.data(6)
    mean, cov = model.posterior(x)
    log_var = np.log(np.diag(cov))[None].repeat(len(x), 0)
    bound, log_w = model.bound_function(2, 3)(
        floatx(x), floatx(mean), floatx(log_var))
    np.testing.assert_allclose(bound, model.log_px(x), rtol=RTOL)
    np.testing.assert_allclose(log_w, model.log_px(x).repeat(6), rtol=RTOL)


def test_bound_rises_toward_log_px_with_more_importance_samples():
    model = LinearGaussian(dim_z=8, dim_x=12, seed=4)
    x = model.data(200)
    mean, cov = model.posterior(x)
    # A diagonal, over-dispersed and shifted q: the bound is loose.
    q_mean, q_var = mean + 0.5, np.diag(cov)[None].repeat(len(x), 0) * 3.0
    iw = T.iscalar('iw')
    bound = model.bound_function(1, iw)
    args = [floatx(x), floatx(q_mean), floatx(np.log(q_var))]
    log_px = model.log_px(x).mean()
    gaps = [log_px - bound(*(args + [k]))[0].mean()
            for k in (1, 10, 100, 1000)]
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] > -0.01
    assert gaps[-1] < 0.1 * gaps[0]


def test_eq_axis_averages_to_the_closed_form_elbo():
    model = LinearGaussian(dim_z=3, dim_x=5, seed=4)
    x = model.data(50)
    mean, cov = model.posterior(x)
    q_mean, q_var = mean + 0.3, np.diag(cov)[None].repeat(len(x), 0) * 2.0
    bound, log_w = model.bound_function(400, 1)(
        floatx(x), floatx(q_mean), floatx(np.log(q_var)))
    per_example_stderr = log_w.reshape(50, 400).std(1) / np.sqrt(400)
    elbo = model.elbo(x, q_mean, q_var)
    assert np.all(np.abs(bound - elbo) < 4.5 * per_example_stderr)
    assert abs(bound.mean() - elbo.mean()) < \
        4 * np.sqrt(np.sum(per_example_stderr ** 2)) / 50


def test_importance_weighted_bound_rejects_matrices():
    with pytest.raises(ValueError, match='vector'):
        importance_weighted_bound(T.matrix(), 1, 1)


def one_vs_rest(y_pred, y_true, c):
    predicted, actual = y_pred == c, y_true == c
    return (np.sum(predicted & actual), np.sum(~predicted & actual),
            np.sum(predicted & ~actual), np.sum(~predicted & ~actual))


def test_confusion_matrix_metrics_match_one_vs_rest_counts():
    rng = np.random.RandomState(5)
    y_true = rng.randint(0, 4, 300)
    y_pred = np.where(rng.rand(300) < 0.7, y_true, rng.randint(0, 4, 300))
    cm = ConfusionMatrix(4)
    cm.batchadd(y_pred[:100], y_true[:100])
    cm.batchadd(y_pred[100:], y_true[100:])
    counts = np.array([one_vs_rest(y_pred, y_true, c) for c in range(4)], float)
    tp, fn, fp, tn = counts.T
    np.testing.assert_allclose(cm.sensitivity(), tp / (tp + fn))
    np.testing.assert_allclose(cm.specificity(), tn / (tn + fp))
    np.testing.assert_allclose(cm.positivepredictivevalue(), tp / (tp + fp))
    np.testing.assert_allclose(cm.negativepredictivevalue(), tn / (tn + fn))
    np.testing.assert_allclose(cm.falsepositiverate(), fp / (fp + tn))
    np.testing.assert_allclose(cm.falsediscoveryrate(), fp / (tp + fp))
    np.testing.assert_allclose(cm.F1(), 2 * tp / (2 * tp + fp + fn))
    mcc = [np.corrcoef(y_pred == c, y_true == c)[0, 1] for c in range(4)]
    np.testing.assert_allclose(cm.matthewscorrelation(), mcc)
    assert cm.accuracy() == np.mean(y_pred == y_true)


def test_confusion_matrix_batchaddmask_counts_masked_rows_true_first():
    # The original's argument order: batchaddmask(y_true, y_pred, mask).
    rng = np.random.RandomState(8)
    y_true, y_pred = rng.randint(0, 3, 50), rng.randint(0, 3, 50)
    mask = rng.rand(50) < 0.6
    cm = ConfusionMatrix(3)
    cm.batchaddmask(y_true, y_pred, mask)
    cm.batchaddmask(y_true, y_pred, mask.astype(int))
    expected = np.histogram2d(y_true[mask], y_pred[mask],
                              bins=[np.arange(4)] * 2)[0]
    np.testing.assert_array_equal(cm.mat, 2 * expected)
    with pytest.raises(ValueError, match='mask'):
        cm.batchaddmask(y_true, y_pred, np.arange(50))


def test_confusion_matrix_small_example_and_mask():
    cm = ConfusionMatrix(2)
    cm.batchadd([0, 0, 1, 1, 1], [0, 0, 0, 1, 0], mask=[1, 1, 1, 1, 0])
    np.testing.assert_allclose(cm.sensitivity(), [2 / 3., 1.0])
    np.testing.assert_allclose(cm.specificity(), [1.0, 2 / 3.])
    np.testing.assert_allclose(cm.negativepredictivevalue(), [0.5, 1.0])
    with pytest.raises(ValueError, match='y_true'):
        cm.batchadd([0], [2])
    with pytest.raises(ValueError, match='n_classes'):
        ConfusionMatrix(1)
