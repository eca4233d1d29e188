"""The L_k estimator against a linear-Gaussian model's exact log p(x), its
chunking, and active units."""
import numpy as np
import pytest
import scipy.stats

from parmesan.experiments.evaluation import (active_units,
                                             importance_sampled_log_likelihood)


class NumpyLinearGaussian(object):
    """z ~ N(0, 1), x | z ~ N(w z, s^2 I); q(z | x) a deliberately poor
    Gaussian. Log-weights in numpy, batch-major like Parmesan's layers."""

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)
        self.w, self.s = self.rng.randn(6), 0.5

    def data(self, n):
        return np.outer(self.rng.randn(n), self.w) + \
            self.s * self.rng.randn(n, 6)

    def log_px(self, x):
        cov = np.outer(self.w, self.w) + self.s ** 2 * np.eye(6)
        return scipy.stats.multivariate_normal(np.zeros(6), cov).logpdf(x)

    def log_weights(self, x, iw):
        precision = 1 + self.w.dot(self.w) / self.s ** 2
        post_mean = x.dot(self.w) / self.s ** 2 / precision
        q_mean, q_std = post_mean + 0.3, 2.0 / np.sqrt(precision)
        z = q_mean[:, None] + q_std * self.rng.randn(len(x), iw)
        log_lik = scipy.stats.norm.logpdf(
            x[:, None, :], z[..., None] * self.w, self.s).sum(-1)
        log_w = log_lik + scipy.stats.norm.logpdf(z) - \
            scipy.stats.norm.logpdf(z, q_mean[:, None], q_std)
        return log_w.reshape(-1)


def test_estimate_rises_with_k_and_converges_to_the_exact_likelihood():
    model = NumpyLinearGaussian(0)
    x = model.data(300)
    exact = model.log_px(x).mean()
    estimates = [importance_sampled_log_likelihood(
        model.log_weights, x, k, max_rows=2000, show_progress=False).mean()
        for k in (1, 10, 100, 5000)]
    assert all(a < b for a, b in zip(estimates, estimates[1:]))
    gaps = exact - np.array(estimates)
    assert gaps[0] > 0.5 and abs(gaps[-1]) < 0.01


@pytest.mark.parametrize('max_rows', [1, 7, 50, 10 ** 6])
def test_chunking_does_not_change_the_estimate(max_rows):
    x = np.random.RandomState(1).randn(9, 2)
    rows_per_call, drawn = [], {}

    def log_weights(batch, iw):
        # Sample i of an example has weight exp(x0 + i mod 3), whichever
        # chunk it falls in, so the exact L_12 is known.
        rows_per_call.append(len(batch) * iw)
        key = batch.tobytes()
        first = drawn.get(key, 0)
        drawn[key] = first + iw
        return (batch[:, :1] + (first + np.arange(iw)) % 3).reshape(-1)
    result = importance_sampled_log_likelihood(log_weights, x, 12,
                                               max_rows=max_rows,
                                               show_progress=False)
    exact = x[:, 0] + np.log(np.mean(np.exp(np.arange(12) % 3)))
    np.testing.assert_allclose(result, exact)
    assert max(rows_per_call) <= max_rows


def test_active_units_counts_units_that_vary_with_x():
    rng = np.random.RandomState(2)
    x = rng.randn(500, 3)
    stds = np.array([0.5, 0.2, 0.05, 0.0])

    def posterior_mean(batch):
        return np.column_stack([batch[:, 0] * s for s in stds])
    count, variances = active_units(posterior_mean, x, batch_size=64)
    np.testing.assert_allclose(variances, x[:, 0].var() * stds ** 2)
    assert count == int(np.sum(x[:, 0].var() * stds ** 2 > 0.01)) == 2
