"""Element-wise log-densities and KL divergences as Theano expressions.

Every function works element-wise and broadcasts like Theano arithmetic; sum
over the feature axis yourself. Naming follows the original Parmesan: the
suffix says how a Gaussian's spread is given, ``1`` for the variance and
``2`` for the log-variance; plain ``log_normal`` takes the standard
deviation. The ``eps`` arguments keep float32 graphs finite: in float32,
``1 - 1e-8 == 1``, so Bernoulli probabilities need ``eps`` around 1e-6.
"""
import math
import numbers

import numpy as np
import theano.tensor as T

from .nonlinearities import log_softmax
from .utils import one_hot

__all__ = ['log_normal', 'log_normal1', 'log_normal2', 'log_stdnormal',
           'log_bernoulli', 'log_bernoulli_logits', 'log_multinomial',
           'log_multinomial_logits',
           'kl_normal1_stdnormal', 'kl_normal2_stdnormal',
           'kl_normal1_normal1', 'kl_normal2_normal2',
           'log_concrete', 'kl_categorical_uniform',
           'kl_categorical_logits_uniform']

#: log of the standard normal density's normalising constant, -log(2 pi)/2.
C = -0.5 * math.log(2 * math.pi)


def _check_eps(function, eps, below=None):
    """Return `eps` as a float if it is a finite number >= 0 (and < `below`),
    else raise an error naming `function`."""
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, numbers.Real):
        raise TypeError('%s: eps must be a number, got %r' % (function, eps))
    allowed = '>= 0' if below is None else 'in [0, %g)' % below
    if not (math.isfinite(eps) and eps >= 0 and
            (below is None or eps < below)):
        raise ValueError('%s: eps must be %s, got %r'
                         % (function, allowed, eps))
    return float(eps)


def _xlogy(x, y):
    """x log y with 0 log 0 = 0: the term vanishes where x is 0 whatever y,
    and so does its gradient (the log is taken of 1 there, since switching
    after a log of 0 would still give 0 * inf = nan in the gradient)."""
    x_is_zero = T.eq(x, 0)
    return T.switch(x_is_zero, 0, x * T.log(T.switch(x_is_zero, 1, y)))


def _smallest_log_variance(log_var):
    """log of the smallest normal float of `log_var`'s dtype (float64 for
    non-float input): exp of anything smaller underflows to 0."""
    dtype = T.as_tensor_variable(log_var).dtype
    if not dtype.startswith('float'):
        dtype = 'float64'
    return float(np.log(np.finfo(dtype).tiny))


def log_normal(x, mean, std, eps=0.0):
    """Log-density of a Gaussian given its standard deviation.

    Parameters
    ----------
    x, mean, std : Theano tensors (broadcastable)
    eps : float
        Added to `std` to keep it away from zero.

    Returns
    -------
    Theano tensor: element-wise log N(x; mean, std**2).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> from parmesan.distributions import log_normal
    >>> x, mean, std = np.array([0.3, -1.2]), np.array([0., 1.]), np.array([1., 2.])
    >>> np.allclose(log_normal(x, mean, std).eval(), norm.logpdf(x, mean, std))
    True
    """
    std = std + _check_eps('log_normal', eps)
    return C - T.log(abs(std)) - (x - mean) ** 2 / (2 * std ** 2)


def log_normal1(x, mean, var, eps=0.0):
    """Log-density of a Gaussian given its variance.

    Parameters
    ----------
    x, mean, var : Theano tensors (broadcastable)
    eps : float
        Added to `var` to keep it away from zero.

    Returns
    -------
    Theano tensor: element-wise log N(x; mean, var).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> from parmesan.distributions import log_normal1
    >>> x, mean, var = np.array([0.3, -1.2]), np.array([0., 1.]), np.array([1., 4.])
    >>> np.allclose(log_normal1(x, mean, var).eval(),
    ...             norm.logpdf(x, mean, np.sqrt(var)))
    True
    """
    var = var + _check_eps('log_normal1', eps)
    return C - 0.5 * T.log(var) - (x - mean) ** 2 / (2 * var)


def log_normal2(x, mean, log_var, eps=0.0):
    """Log-density of a Gaussian given its log-variance.

    Parameters
    ----------
    x, mean, log_var : Theano tensors (broadcastable)
    eps : float
        Added to the denominator 2 exp(log_var) only; `log_var` itself is
        finite by construction.

    Returns
    -------
    Theano tensor: element-wise log N(x; mean, exp(log_var)).

    Notes
    -----
    Where exp(log_var) underflows (log_var below about -87 in float32,
    -708 in float64) the variance in the quadratic term is held at the
    smallest normal float `tiny`: at ``x == mean`` the result stays exactly
    ``C - log_var / 2`` with finite gradients (instead of 0 / 0 = nan);
    elsewhere it is at most ``-(x - mean)**2 / (2 tiny)`` (where the true
    value is smaller still).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> from parmesan.distributions import log_normal2
    >>> z, mean, log_var = np.array([0.3, -1.2]), np.array([0., 1.]), np.log([1., 4.])
    >>> np.allclose(log_normal2(z, mean, log_var).eval(),
    ...             norm.logpdf(z, mean, np.exp(0.5 * log_var)))
    True
    """
    eps = _check_eps('log_normal2', eps)
    variance = T.exp(T.maximum(log_var, _smallest_log_variance(log_var)))
    return C - 0.5 * log_var - (x - mean) ** 2 / (2 * variance + eps)


def log_stdnormal(x):
    """Log-density of the standard normal, element-wise.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> import theano.tensor as T
    >>> from parmesan.distributions import log_stdnormal
    >>> z = np.array([0.3, -1.2])
    >>> np.allclose(log_stdnormal(T.constant(z)).eval(), norm.logpdf(z))
    True
    """
    return C - 0.5 * x ** 2


def log_bernoulli(x, p, eps=0.0):
    """Log-probability of binary (or [0, 1]-valued) `x` under Bernoulli(p).

    Parameters
    ----------
    x : Theano tensor, values in [0, 1]
    p : Theano tensor, probabilities
    eps : float in [0, 0.5)
        `p` is clipped to [eps, 1 - eps]; use about 1e-6 in float32. With
        the default 0 the result is exact at the boundaries: a pixel that
        agrees with a certain prediction (x = 0 where p = 0, x = 1 where
        p = 1) has log-probability 0 and a finite gradient, by 0 log 0 = 0.

    Returns
    -------
    Theano tensor: x log p + (1 - x) log(1 - p), element-wise.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import bernoulli
    >>> from parmesan.distributions import log_bernoulli
    >>> x, p = np.array([1., 0., 1.]), np.array([0.9, 0.2, 0.5])
    >>> np.allclose(log_bernoulli(x, p).eval(), bernoulli.logpmf(x, p))
    True
    """
    eps = _check_eps('log_bernoulli', eps, below=0.5)
    if eps:
        p = T.clip(p, eps, 1.0 - eps)
    return _xlogy(x, p) + _xlogy(1.0 - x, 1.0 - p)


def log_bernoulli_logits(x, logits, eps=0.0):
    """Log-probability of binary (or [0, 1]-valued) `x` under
    Bernoulli(sigmoid(logits)), computed from the logits.

    ``x * l - softplus(l)`` is exact and finite for any logit, also in
    float32, and much cheaper than :func:`log_bernoulli` of the
    probabilities: one exp and one log1p per element, which vectorise, where
    the probability form needs a sigmoid, a clip and two logs.

    Parameters
    ----------
    x : Theano tensor, values in [0, 1]
    logits : Theano tensor, the argument of the sigmoid
    eps : float in [0, 0.5)
        If positive, the logits are clipped to +-log((1 - eps) / eps), which
        is exactly ``log_bernoulli(x, sigmoid(logits), eps)``: the same
        values (more precisely computed) and the same zero gradient beyond
        the clip.

    Returns
    -------
    Theano tensor: x log p + (1 - x) log(1 - p), p = sigmoid(logits),
    element-wise.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import expit
    >>> from scipy.stats import bernoulli
    >>> from parmesan.distributions import log_bernoulli_logits
    >>> x, logits = np.array([1., 0., 1.]), np.array([2., -1., 0.])
    >>> np.allclose(log_bernoulli_logits(x, logits).eval(),
    ...             bernoulli.logpmf(x, expit(logits)))
    True
    """
    eps = _check_eps('log_bernoulli_logits', eps, below=0.5)
    if eps > 0:
        bound = math.log((1.0 - eps) / eps)
        logits = T.clip(logits, -bound, bound)
    return x * logits - T.nnet.softplus(logits)


def log_multinomial(x, p, eps=0.0):
    """Log-probability of one categorical draw per row.

    Parameters
    ----------
    x : Theano tensor
        Integer class labels of shape (N,), or one-hot / probability rows of
        shape (N, K).
    p : Theano matrix (N, K)
        Class probabilities per row.
    eps : float
        Added to `p` before the log.

    Returns
    -------
    Theano vector (N,): log p[n, x[n]] (or sum_k x[n, k] log p[n, k], where
    a class with x[n, k] = 0 contributes 0 even if p[n, k] = 0).

    Examples
    --------
    >>> import numpy as np
    >>> from parmesan.distributions import log_multinomial
    >>> p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    >>> labels = np.array([0, 2], dtype='int32')
    >>> np.allclose(log_multinomial(labels, p).eval(), np.log([0.7, 0.8]))
    True
    """
    eps = _check_eps('log_multinomial', eps)
    p = T.as_tensor_variable(p + eps if eps else p)
    return T.sum(_xlogy(_one_hot_rows(x, p), p), axis=-1)


def _one_hot_rows(x, like):
    """`x` as rows like `like`: integer labels become one-hot rows (by
    comparison, not Theano's scatter, which its GPU backend lacks)."""
    x = T.as_tensor_variable(x)
    if x.ndim == like.ndim:
        return x
    return one_hot(x, like.shape[-1], dtype=like.dtype)


def log_multinomial_logits(x, logits):
    """Log-probability of one categorical draw per row under
    Categorical(softmax(logits)), computed from the logits.

    The negative is the softmax cross-entropy. ``sum_k x_k log_softmax(l)_k``
    is finite for any finite logits, and compiles to element-wise ops and
    reductions, which Theano's GPU backend runs (its fused softmax
    cross-entropy kernel does not build on every OpenCL compiler).

    Parameters
    ----------
    x : Theano tensor
        Integer class labels of shape (N,), or one-hot / probability rows of
        shape (N, K).
    logits : Theano matrix (N, K)
        Unnormalised log-probabilities per row.

    Returns
    -------
    Theano vector (N,): log softmax(logits)[n, x[n]] (or its expectation
    under the rows of `x`).

    Examples
    --------
    >>> import numpy as np
    >>> from parmesan.distributions import log_multinomial_logits
    >>> logits = np.log([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    >>> labels = np.array([0, 2], dtype='int32')
    >>> np.allclose(log_multinomial_logits(labels, logits).eval(),
    ...             np.log([0.7, 0.8]))
    True
    """
    log_p = log_softmax(logits)
    return T.sum(_one_hot_rows(x, log_p) * log_p, axis=-1)


def kl_normal1_stdnormal(mean, var, eps=0.0):
    """KL(N(mean, var) || N(0, 1)), element-wise.

    Examples
    --------
    KL(N(1, 1) || N(0, 1)) is half the squared distance of the means:

    >>> from parmesan.distributions import kl_normal1_stdnormal
    >>> round(float(kl_normal1_stdnormal(1., 1.).eval()), 6)
    0.5
    """
    var = var + _check_eps('kl_normal1_stdnormal', eps)
    return 0.5 * (var + mean ** 2 - 1.0 - T.log(var))


def kl_normal2_stdnormal(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, 1)), element-wise.

    Examples
    --------
    KL(N(0, 4) || N(0, 1)) = (4 - 1 - log 4) / 2:

    >>> import numpy as np
    >>> from parmesan.distributions import kl_normal2_stdnormal
    >>> kl = kl_normal2_stdnormal(0., np.log(4.)).eval()
    >>> bool(np.isclose(kl, (4 - 1 - np.log(4)) / 2))
    True
    """
    return -0.5 * (1.0 + log_var - mean ** 2 - T.exp(log_var))


def kl_normal1_normal1(mean1, var1, mean2, var2, eps=0.0):
    """KL(N(mean1, var1) || N(mean2, var2)), element-wise.

    Parameters
    ----------
    mean1, var1 : Theano tensors, the first Gaussian
    mean2, var2 : Theano tensors, the second Gaussian
    eps : float
        Added to both variances.

    Examples
    --------
    KL(N(0, 1) || N(1, 4)) = (log 4 + (1 + 1) / 4 - 1) / 2:

    >>> import numpy as np
    >>> from parmesan.distributions import kl_normal1_normal1
    >>> kl = kl_normal1_normal1(0., 1., 1., 4.).eval()
    >>> bool(np.isclose(kl, (np.log(4) + 2 / 4 - 1) / 2))
    True
    """
    eps = _check_eps('kl_normal1_normal1', eps)
    var1, var2 = var1 + eps, var2 + eps
    return 0.5 * (T.log(var2) - T.log(var1)
                  + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)


def kl_normal2_normal2(mean1, log_var1, mean2, log_var2, eps=0.0):
    """KL(N(mean1, exp(log_var1)) || N(mean2, exp(log_var2))), element-wise.

    Parameters
    ----------
    mean1, log_var1 : Theano tensors, the first Gaussian
    mean2, log_var2 : Theano tensors, the second Gaussian
    eps : float
        Added to the denominator 2 exp(log_var2).

    Examples
    --------
    The same KL as in :func:`kl_normal1_normal1`, from log-variances:

    >>> import numpy as np
    >>> from parmesan.distributions import kl_normal2_normal2
    >>> kl = kl_normal2_normal2(0., 0., 1., np.log(4.)).eval()
    >>> bool(np.isclose(kl, (np.log(4) + 2 / 4 - 1) / 2))
    True
    """
    eps = _check_eps('kl_normal2_normal2', eps)
    return (0.5 * (log_var2 - log_var1)
            + (T.exp(log_var1) + (mean1 - mean2) ** 2)
            / (2.0 * T.exp(log_var2) + eps) - 0.5)


def log_concrete(y, logits, temperature, eps=0.0):
    """Log-density of the Concrete (relaxed one-hot categorical) distribution.

    The density of ``y = softmax((logits + g) / temperature)`` with standard
    Gumbel noise ``g``, i.e. of a :class:`GumbelSoftmaxSampleLayer` sample,
    with respect to Lebesgue measure on the first K - 1 coordinates of the
    simplex (Maddison et al. 2016, eq. 2):

    ``log (K-1)! + (K-1) log t + sum_k [logits_k - (t+1) log y_k]
    - K logsumexp_k(logits_k - t log y_k)``,

    computed as ``log (K-1)! + (K-1) log t + sum_k log_softmax(a)_k
    - sum_k log y_k`` with ``a = logits - t log y``, which never exponentiates
    anything larger than 1.

    Unlike the element-wise functions above, this one reduces over the last
    (category) axis.

    Parameters
    ----------
    y : Theano tensor (..., K)
        Points of the simplex (rows summing to 1).
    logits : Theano tensor (..., K)
        Unnormalised log-probabilities, broadcastable against `y`. For
        batch-major layer samples repeat them to match:
        ``T.repeat(logits, eq_samples * iw_samples, axis=0)``.
    temperature : float or Theano scalar
        The temperature t > 0 the samples were drawn with.
    eps : float
        `y` is clipped below at eps before the log; entries of low-temperature
        float32 samples underflow to 0, so use e.g. 1e-30 there.

    Returns
    -------
    Theano tensor (...): one log-density per row.

    Examples
    --------
    With equal logits and temperature 1 the Concrete distribution is
    uniform on the simplex: its log-density is 0 everywhere.

    >>> import numpy as np
    >>> from parmesan.distributions import log_concrete
    >>> y = np.array([[0.2, 0.8], [0.5, 0.5]])
    >>> np.allclose(log_concrete(y, np.zeros(2), 1.0).eval(), [0, 0])
    True

    For samples of :class:`parmesan.layers.GumbelSoftmaxSampleLayer` with
    ``iw_samples=5``, repeat the logits:
    ``log_concrete(y, T.repeat(logits, 5, axis=0), 0.5, eps=1e-30)``.
    """
    eps = _check_eps('log_concrete', eps)
    log_y = T.log(T.clip(y, eps, 1.0)) if eps else T.log(y)
    temperature = T.cast(temperature, log_y.dtype)
    num_categories = T.cast(y.shape[-1], log_y.dtype)
    scores = logits - temperature * log_y
    return (T.gammaln(num_categories)
            + (num_categories - 1) * T.log(temperature)
            + T.sum(log_softmax(scores), axis=-1)
            - T.sum(log_y, axis=-1))


def kl_categorical_uniform(probs):
    """KL(Categorical(probs) || Uniform(K)) = sum_k p_k log p_k + log K.

    Reduces over the last (category) axis. Zero probabilities contribute 0,
    to the value and to the gradient, so no eps is needed.

    Parameters
    ----------
    probs : Theano tensor (..., K)
        Class probabilities, rows summing to 1.

    Returns
    -------
    Theano tensor (...): one KL per row.

    Examples
    --------
    A certain outcome of 4 is log 4 nats away from the uniform:

    >>> import numpy as np
    >>> import theano.tensor as T
    >>> from parmesan.distributions import kl_categorical_uniform
    >>> probs = T.constant([[1., 0., 0., 0.], [.25, .25, .25, .25]])
    >>> kl = kl_categorical_uniform(probs)
    >>> np.allclose(kl.eval(), [np.log(4), 0])
    True
    """
    num_categories = T.cast(probs.shape[-1], probs.dtype)
    # Take the log of 1 where p = 0: switching after the log would still
    # give 0 * log 0 = nan in the gradient.
    safe = T.switch(T.gt(probs, 0), probs, 1)
    return T.sum(probs * T.log(safe), axis=-1) + T.log(num_categories)


def kl_categorical_logits_uniform(logits):
    """KL(Categorical(softmax(logits)) || Uniform(K)), from the logits.

    Stable for any logits: uses log_softmax rather than log(softmax), so a
    probability that underflows to 0 still contributes its (vanishing) term
    without producing nan.

    Parameters
    ----------
    logits : Theano tensor (..., K)
        Unnormalised log-probabilities.

    Returns
    -------
    Theano tensor (...): one KL per row.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import softmax
    >>> from scipy.stats import entropy
    >>> from parmesan.distributions import kl_categorical_logits_uniform
    >>> logits = np.array([[np.log(3.), 0.], [5., -2.]])
    >>> np.allclose(kl_categorical_logits_uniform(logits).eval(),
    ...             np.log(2) - entropy(softmax(logits, axis=1), axis=1))
    True
    """
    log_p = log_softmax(logits)
    num_categories = T.cast(logits.shape[-1], log_p.dtype)
    return T.sum(T.exp(log_p) * log_p, axis=-1) + T.log(num_categories)
