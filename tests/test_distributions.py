"""Log-densities against scipy.stats; KL terms against closed forms and
Monte-Carlo estimates."""
import numpy as np
import pytest
import scipy.special
import scipy.stats
import theano
import theano.tensor as T

from parmesan import distributions as D
from conftest import RTOL, floatx

rng = np.random.RandomState(1234)
X, MU = rng.randn(2, 6, 5)
STD = np.exp(rng.randn(6, 5) * 0.5)
MU2 = rng.randn(6, 5)
STD2 = np.exp(rng.randn(6, 5) * 0.5)


def evaluate(function, *arrays, **kwargs):
    """Compile `function` over matrix inputs and evaluate it on `arrays`."""
    inputs = [T.matrix() for _ in arrays]
    compiled = theano.function(inputs, function(*inputs, **kwargs))
    return compiled(*[floatx(a) for a in arrays])


def test_gaussian_log_densities_match_scipy():
    reference = scipy.stats.norm.logpdf(X, MU, STD)
    np.testing.assert_allclose(evaluate(D.log_normal, X, MU, STD),
                               reference, rtol=RTOL)
    np.testing.assert_allclose(evaluate(D.log_normal1, X, MU, STD ** 2),
                               reference, rtol=RTOL)
    np.testing.assert_allclose(
        evaluate(D.log_normal2, X, MU, np.log(STD ** 2)), reference,
        rtol=RTOL)
    np.testing.assert_allclose(evaluate(D.log_stdnormal, X),
                               scipy.stats.norm.logpdf(X), rtol=RTOL)


def test_eps_keeps_degenerate_gaussians_finite():
    zeros = np.zeros_like(X)
    for function, spread in ((D.log_normal, zeros), (D.log_normal1, zeros)):
        assert np.all(np.isfinite(evaluate(function, X, MU, spread,
                                           eps=1e-6)))
    huge_negative_log_var = np.full_like(X, -200.0)
    assert np.all(np.isfinite(evaluate(D.log_normal2, X, MU,
                                       huge_negative_log_var, eps=1e-6)))


def test_log_bernoulli_matches_scipy_and_clips():
    p = scipy.special.expit(rng.randn(6, 5))
    x = (rng.rand(6, 5) < 0.5).astype(float)
    np.testing.assert_allclose(evaluate(D.log_bernoulli, x, p),
                               scipy.stats.bernoulli.logpmf(x, p), rtol=RTOL)
    certain = np.ones_like(p)
    clipped = evaluate(D.log_bernoulli, 1 - x, certain, eps=1e-6)
    assert np.all(np.isfinite(clipped))
    np.testing.assert_allclose(clipped[x == 1], np.log(1e-6), rtol=1e-3)


def test_log_bernoulli_logits_matches_scipy_far_into_the_tails():
    local = np.random.RandomState(5)
    logits = local.randn(6, 5) * 3
    logits[0, :] = [-60.0, -30.0, 30.0, 60.0, 0.0]  # sigmoid saturates here
    x = (local.rand(6, 5) < 0.5).astype(float)
    # log p(x) = -log(1 + exp(-l)) for x = 1, -log(1 + exp(l)) for x = 0
    reference = -np.logaddexp(0, np.where(x == 1, -logits, logits))
    # x l - softplus(l) loses the relative precision of log p near 0 (an
    # absolute 1e-13 at l = 30, 2e-7 in float32), irrelevant for a
    # log-likelihood
    atol = 1e-12 if theano.config.floatX == 'float64' else 1e-6
    np.testing.assert_allclose(evaluate(D.log_bernoulli_logits, x, logits),
                               reference, rtol=RTOL, atol=atol)
    np.testing.assert_allclose(
        reference[1:], scipy.stats.bernoulli.logpmf(
            x, scipy.special.expit(logits))[1:], rtol=1e-10)
    bound = np.log((1 - 1e-6) / 1e-6)
    np.testing.assert_allclose(
        evaluate(D.log_bernoulli_logits, x, logits, eps=1e-6),
        -np.logaddexp(0, np.clip(np.where(x == 1, -logits, logits),
                                 -bound, bound)), rtol=RTOL, atol=atol)


def test_log_multinomial_with_labels_and_one_hot():
    logits = rng.randn(7, 4)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.randint(0, 4, size=7)
    reference = np.array([scipy.stats.multinomial.logpmf(np.eye(4)[k], 1, row)
                          for k, row in zip(labels, p)])
    pv, lv = T.matrix(), T.ivector()
    by_label = theano.function([pv, lv], D.log_multinomial(lv, pv))
    np.testing.assert_allclose(by_label(floatx(p), labels.astype('int32')),
                               reference, rtol=RTOL)
    np.testing.assert_allclose(
        evaluate(lambda x, q: D.log_multinomial(x, q), np.eye(4)[labels], p),
        reference, rtol=RTOL)


def test_log_multinomial_logits_matches_scipy_with_gradient():
    logits = rng.randn(6, 4) * 3
    logits[0] = [700., -700., 0., 1.]  # softmax underflows to exactly 0
    labels = rng.randint(0, 4, size=6)
    log_p = scipy.special.log_softmax(logits, axis=1)
    reference = log_p[np.arange(6), labels]
    lv, xv = T.ivector(), T.matrix()
    by_label = D.log_multinomial_logits(lv, xv)
    by_label_value, gradient = theano.function(
        [lv, xv], [by_label, T.grad(T.sum(by_label), xv)])(
            labels.astype('int32'), floatx(logits))
    np.testing.assert_allclose(by_label_value, reference, rtol=RTOL)
    # d/dlogits of log softmax(l)[y] is onehot(y) - softmax(l)
    np.testing.assert_allclose(
        gradient, np.eye(4)[labels] - scipy.special.softmax(logits, axis=1),
        rtol=RTOL, atol=1e-12)
    rows = rng.dirichlet(np.ones(4), size=6)
    np.testing.assert_allclose(
        evaluate(D.log_multinomial_logits, rows, logits),
        np.sum(rows * log_p, axis=1), rtol=RTOL)


def test_integer_labels_compile_without_scatter_or_fused_crossentropy():
    # The GPU backend lacks the scatter behind an integer gather's gradient,
    # and PoCL cannot build Theano's fused softmax cross-entropy kernel.
    lv, xv = T.ivector(), T.matrix()
    loss = -T.sum(D.log_multinomial_logits(lv, xv)) - \
        T.sum(D.log_multinomial(lv, T.nnet.sigmoid(xv)))
    ops = {type(node.op).__name__ for node in theano.function(
        [lv, xv], T.grad(loss, xv)).maker.fgraph.toposort()}
    assert not ops & {'AdvancedIncSubtensor', 'AdvancedIncSubtensor1',
                      'CrossentropySoftmaxArgmax1HotWithBias',
                      'CrossentropySoftmax1HotWithBiasDx',
                      'CrossentropyCategorical1HotGrad', 'SoftmaxGrad'}, ops


def gaussian_kl(mean1, std1, mean2, std2):
    """KL between univariate Gaussians by numerical integration."""
    grid = np.linspace(mean1 - 12 * std1, mean1 + 12 * std1, 20001)
    q = scipy.stats.norm.pdf(grid, mean1, std1)
    log_ratio = (scipy.stats.norm.logpdf(grid, mean1, std1) -
                 scipy.stats.norm.logpdf(grid, mean2, std2))
    return scipy.integrate.trapezoid(q * log_ratio, grid)


def test_kl_terms_match_numerical_integration():
    integrated = np.vectorize(gaussian_kl)(MU, STD, MU2, STD2)
    integrated_std = np.vectorize(gaussian_kl)(MU, STD, 0.0, 1.0)
    var, var2 = STD ** 2, STD2 ** 2
    np.testing.assert_allclose(
        evaluate(D.kl_normal1_normal1, MU, var, MU2, var2), integrated,
        rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        evaluate(D.kl_normal2_normal2, MU, np.log(var), MU2, np.log(var2)),
        integrated, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(evaluate(D.kl_normal1_stdnormal, MU, var),
                               integrated_std, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        evaluate(D.kl_normal2_stdnormal, MU, np.log(var)), integrated_std,
        rtol=1e-6, atol=1e-6)


def test_kl_equals_monte_carlo_estimate():
    mean, std, mean2, std2 = 0.3, 0.7, -0.5, 1.6
    samples = np.random.RandomState(0).normal(mean, std, size=400000)
    log_ratio = (scipy.stats.norm.logpdf(samples, mean, std) -
                 scipy.stats.norm.logpdf(samples, mean2, std2))
    estimate, stderr = log_ratio.mean(), log_ratio.std() / np.sqrt(400000)
    kl = evaluate(D.kl_normal1_normal1, [[mean]], [[std ** 2]], [[mean2]],
                  [[std2 ** 2]])[0, 0]
    assert abs(kl - estimate) < 4 * stderr


@pytest.mark.parametrize('eps', [1e-6])
def test_kl_eps_keeps_zero_variance_finite(eps):
    zeros = np.zeros_like(MU)
    assert np.all(np.isfinite(evaluate(D.kl_normal1_stdnormal, MU, zeros,
                                       eps=eps)))
    assert np.all(np.isfinite(evaluate(D.kl_normal1_normal1, MU, zeros, MU2,
                                       zeros, eps=eps)))


def value_and_gradient(function, x, p, **kwargs):
    """The summed log-density and its gradient in `p`, evaluated at arrays."""
    xv, pv = T.matrix(), T.matrix()
    total = function(xv, pv, **kwargs).sum()
    compiled = theano.function([xv, pv], [function(xv, pv, **kwargs),
                                          T.grad(total, pv)])
    return compiled(floatx(x), floatx(p))


def test_log_bernoulli_is_exact_where_a_certain_prediction_agrees():
    # 0 log 0 = 0: x = 0 at p = 0 and x = 1 at p = 1 have log-probability 0;
    # the derivative in p is -(1 - x)/(1 - p) + x/p with the vanishing term
    # left out: -1 at (x=0, p=0), +1 at (x=1, p=1).
    x = np.array([[0.0, 1.0, 0.0, 1.0]])
    p = np.array([[0.0, 1.0, 0.3, 0.8]])
    value, gradient = value_and_gradient(D.log_bernoulli, x, p)
    reference = scipy.stats.bernoulli.logpmf(x, p)
    np.testing.assert_allclose(value, reference, rtol=RTOL)
    assert value[0, 0] == 0 and value[0, 1] == 0
    np.testing.assert_allclose(gradient, [[-1.0, 1.0, -1 / 0.7, 1 / 0.8]],
                               rtol=RTOL)
    # A certain prediction that disagrees is impossible: -inf, not nan.
    disagree, _ = value_and_gradient(D.log_bernoulli, [[1.0, 0.0]],
                                     [[0.0, 1.0]])
    assert np.all(disagree == -np.inf)


def test_log_multinomial_of_one_hot_rows_ignores_impossible_classes():
    p = np.array([[0.0, 0.25, 0.75], [0.5, 0.5, 0.0]])
    x = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    value, gradient = value_and_gradient(D.log_multinomial, x, p)
    np.testing.assert_allclose(value, np.log([0.75, 0.5]), rtol=RTOL)
    # d/dp_k of sum_k x_k log p_k is x_k / p_k: 0 for the classes not drawn.
    np.testing.assert_allclose(gradient, [[0, 0, 1 / 0.75], [2, 0, 0]],
                               rtol=RTOL)


def test_log_normal2_at_the_mean_with_an_underflowing_variance():
    # exp(-200) underflows in float32 (and exp(-800) in float64); at
    # x == mean the density is still C - log_var / 2 with d/dlog_var = -1/2.
    log_var = -800.0 if theano.config.floatX == 'float64' else -200.0
    # (x and mean separate inputs: Theano would simplify x - x to 0.)
    x, mean, lv = T.matrix(), T.matrix(), T.matrix()
    density = D.log_normal2(x, mean, lv)
    compiled = theano.function([x, mean, lv], [
        density, T.grad(density.sum(), lv), T.grad(density.sum(), x)])
    at_mean = floatx([[0.3, -1.0]])
    value, d_log_var, d_x = compiled(at_mean, at_mean,
                                     floatx([[log_var, log_var]]))
    np.testing.assert_allclose(value, D.C - log_var / 2, rtol=RTOL)
    np.testing.assert_allclose(d_log_var, -0.5, rtol=RTOL)
    assert np.all(d_x == 0)
    # One unit away from the mean the true value, -exp(-log_var)/2, is
    # below every float; the result is at most -1/(2 tiny) there.
    away = evaluate(D.log_normal2, [[1.0]], [[0.0]], [[log_var]])
    tiny = np.finfo(theano.config.floatX).tiny
    assert away[0, 0] <= -0.5 / tiny * (1 - 1e-5)  # exp(log(tiny)) ~ tiny


@pytest.mark.parametrize('function, bad_eps', [
    (D.log_bernoulli, 0.6), (D.log_bernoulli, 0.5), (D.log_bernoulli, -1e-6),
    (D.log_bernoulli_logits, 1.0), (D.log_bernoulli_logits, 0.5),
    (D.log_normal2, -1.0), (D.log_normal2, float('nan')),
    (D.log_normal, float('inf')), (D.log_multinomial, -0.1)])
def test_eps_out_of_range_is_refused_naming_the_function(function, bad_eps):
    inputs = [T.matrix() for _ in
              range(3 if function in (D.log_normal2, D.log_normal) else 2)]
    with pytest.raises(ValueError,
                       match='%s: eps must be' % function.__name__):
        function(*inputs, eps=bad_eps)
    with pytest.raises(TypeError, match='eps must be a number'):
        function(*inputs, eps='1e-6')
