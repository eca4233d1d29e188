"""Evaluation shared by the trainers: the importance-sampled test
log-likelihood in memory-bounded chunks, active units, classification
error, and batch-norm statistics collection."""
import numpy as np
import scipy.special

from .training import iterate_minibatches, progress

__all__ = ['importance_sampled_log_likelihood', 'active_units',
           'classification_error', 'collect_statistics']


def importance_sampled_log_likelihood(log_weights, x, num_samples=5000,
                                      max_rows=25000, show_progress=True):
    """Estimate log p(x) per example with `num_samples` importance samples.

    log p(x) ~= log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x),
    the bound L_k of Burda et al. (2015); it rises toward log p(x) as k
    grows. The k samples of an example are drawn in chunks so that one call
    of `log_weights` never handles more than `max_rows` samples, which
    bounds memory whatever k is.

    Parameters
    ----------
    log_weights : callable(x_batch, iw) -> array (len(x_batch) * iw,)
        Per-sample log-weights in Parmesan's batch-major layout with one
        Monte-Carlo sample (eq = 1), e.g. a compiled Theano function of the
        model's importance weights.
    x : array (N, D)
    num_samples : int
        k, the importance samples per example.
    max_rows : int
        The most samples evaluated in one call.
    show_progress : bool

    Returns
    -------
    array (N,): L_k for each example.

    Examples
    --------
    With weights that do not depend on the sample, L_k is their log,
    whatever the chunking:

    >>> import numpy as np
    >>> from parmesan.experiments.evaluation import (
    ...     importance_sampled_log_likelihood)
    >>> def log_weights(x_batch, iw):  # a model's compiled function goes here
    ...     return np.repeat(np.log(x_batch[:, 0]), iw)
    >>> x = np.array([[2.], [5.]])
    >>> ll = importance_sampled_log_likelihood(log_weights, x, 5000,
    ...                                        max_rows=3000)
    >>> np.allclose(ll, np.log([2., 5.]))
    True
    """
    if num_samples < 1 or max_rows < 1:
        raise ValueError('num_samples and max_rows must be at least 1, got '
                         '%r and %r' % (num_samples, max_rows))
    chunk = min(num_samples, max_rows)
    batch_size = max(1, max_rows // chunk)
    chunks = [chunk] * (num_samples // chunk)
    if num_samples % chunk:
        chunks.append(num_samples % chunk)
    result = np.empty(len(x))
    batches = list(iterate_minibatches(len(x), batch_size))
    for rows in progress(batches, len(batches), 'L_%d' % num_samples,
                         min_seconds=2.0 if show_progress else np.inf):
        partial = [scipy.special.logsumexp(
            np.asarray(log_weights(x[rows], size), dtype=np.float64)
            .reshape(len(rows), size), axis=1) for size in chunks]
        result[rows] = scipy.special.logsumexp(partial, axis=0) - \
            np.log(num_samples)
    return result


def active_units(posterior_mean, x, threshold=0.01, batch_size=1000):
    """Count latent units whose posterior mean varies with x.

    Burda et al. (2015) call unit u active if Cov_x(E_q[z_u | x]) > 0.01.

    Parameters
    ----------
    posterior_mean : callable(x_batch) -> array (batch, num_latent)
    x : array (N, D)
    threshold : float
    batch_size : int

    Returns
    -------
    (int, array): the number of active units and every unit's variance.

    Examples
    --------
    >>> import numpy as np
    >>> from parmesan.experiments.evaluation import active_units
    >>> x = np.random.RandomState(1).normal(size=(500, 2))
    >>> count, variances = active_units(lambda x_batch: x_batch * [1, 0.01], x)
    >>> count
    1
    """
    means = np.concatenate([posterior_mean(x[rows]) for rows in
                            iterate_minibatches(len(x), batch_size)])
    variances = means.var(axis=0)
    return int(np.sum(variances > threshold)), variances


def classification_error(predict, x, targets, batch_size=1000):
    """The percentage of rows of `x` whose most probable class under
    ``predict`` is not the target.

    Parameters
    ----------
    predict : callable(x_batch) -> array (batch, num_classes)
    x : array (N, D)
    targets : int array (N,)
    batch_size : int

    Returns
    -------
    float, in percent.

    Example
    -------
    >>> classification_error(lambda x: x, np.eye(3), np.array([0, 1, 0]))
    33.333333333333336
    """
    wrong = 0
    for rows in iterate_minibatches(len(x), batch_size):
        wrong += np.sum(np.argmax(predict(x[rows]), axis=1) != targets[rows])
    return 100. * wrong / len(x)


def collect_statistics(collect, x, normalize_layers, batch_size=1000):
    """Fill the stored statistics of batch-normalisation layers from `x`.

    Parameters
    ----------
    collect : callable(x_batch)
        A compiled function of the model's output with
        ``deterministic=True, collect=True`` (the original Parmesan's
        idiom): one pass gives every NormalizeLayer of a stack the
        statistics of the input the layers below it will give.
    x : array (N, D)
    normalize_layers : list of :class:`parmesan.layers.NormalizeLayer`
        Layers in 'running_average' mode are reset first, so the result is
        the average over `x` in batches of `batch_size`.
    batch_size : int

    Example
    -------
    Statistics averaged over equal batches are those of the whole set:

    >>> import numpy as np
    >>> import theano, theano.tensor as T
    >>> from lasagne.layers import InputLayer, get_output
    >>> from parmesan.layers import NormalizeLayer
    >>> x = T.matrix('x')
    >>> l_bn = NormalizeLayer(InputLayer((None, 2), x),
    ...                       alpha='running_average')
    >>> collect = theano.function([x], get_output(
    ...     l_bn, x, deterministic=True, collect=True))
    >>> data = np.random.RandomState(0).normal(3, 2, (3000, 2))
    >>> collect_statistics(collect, data.astype(theano.config.floatX), [l_bn])
    >>> np.allclose(l_bn.mean.get_value(), data.mean(axis=0), atol=1e-4)
    True
    """
    for layer in normalize_layers:
        if layer.alpha == 'running_average':
            layer.reset_stats()
    for rows in iterate_minibatches(len(x), batch_size):
        collect(x[rows])
