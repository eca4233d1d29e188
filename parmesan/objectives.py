"""Objectives for training latent-variable models: the importance-weighted
bound and VIMCO's gradient estimator for discrete latents.

:func:`importance_weighted_bound` (Burda et al. 2015) is the K-sample bound
of Parmesan's sample layers' batch-major layout, reparameterised latents.
For discrete latents, which cannot be reparameterised, VIMCO (Mnih & Rezende
2016) gives every sample of the K-sample bound

    L = log (1/K) sum_k w_k,    w_k = p(x, h_k) / q(h_k | x),  h_k ~ q(h | x)

its own learning signal: L minus the bound recomputed with w_j replaced by
the geometric mean of the other K - 1 weights,

    L_{-j} = log (1/K) (sum_{i != j} w_i + exp(mean_{i != j} log w_i)),

which does not depend on h_j and is therefore a valid baseline. The whole
gradient is

    grad L ~= sum_j (L - L_{-j}) grad log q(h_j | x)
              + sum_j w~_j grad log w_j,       w~_j = w_j / sum_i w_i,

where the second term is the ordinary gradient of L through the
log-weights (it is all the generative model's parameters receive).
:func:`vimco_surrogate` is a scalar whose Theano gradient is exactly this.

References
----------
Burda, Y., Grosse, R. and Salakhutdinov, R. (2015). Importance weighted
autoencoders. ICLR 2016.

Mnih, A. and Rezende, D. J. (2016). Variational inference for Monte Carlo
objectives. ICML.
"""
import numpy as np
import theano
import theano.tensor as T

from .utils import importance_weighted_bound, log_mean_exp

__all__ = ['importance_weighted_bound', 'vimco_learning_signals',
           'vimco_surrogate']


def _as_rows(tensor, num_samples, what):
    """View per-sample values as (rows, K): batch-major vectors of length
    rows * K, or any tensor whose last axis holds the K samples."""
    if tensor.ndim == 1:
        if num_samples is None:
            raise ValueError('%s is a vector; pass num_samples (K) to say how '
                             'many consecutive entries belong to one example'
                             % what)
        return tensor.reshape((-1, num_samples))
    return tensor.reshape((-1, tensor.shape[-1]))


def _check_num_samples(num_samples):
    if isinstance(num_samples, (int, np.integer)) and num_samples < 2:
        raise ValueError('VIMCO needs at least 2 samples per example (the '
                         'baseline of a sample is built from the others), '
                         'got %d' % num_samples)


def vimco_learning_signals(log_weights, num_samples=None):
    """Per-sample VIMCO learning signals L - L_{-j}, computed in log space.

    L_{-j} is the K-sample bound with the weight of sample j replaced by the
    geometric mean of the other K - 1 weights (Mnih & Rezende 2016, eq. 9),
    not their arithmetic mean.

    Parameters
    ----------
    log_weights : Theano tensor
        log w = log p(x, h) - log q(h | x) per sample: a batch-major vector
        of length rows * K (row ``b*K + k`` is sample k of example b; with
        Parmesan's eq axis, ``b*eq*K + e*K + k``), or a tensor whose last
        axis has length K, such as (batch, K) or (batch, eq, K).
    num_samples : int or Theano integer scalar, optional
        K; needed only when `log_weights` is a vector. At least 2.

    Returns
    -------
    Theano matrix (rows, K), rows = batch (* eq): the learning signal of
    each sample.

    Examples
    --------
    With K = 2 weights (1, 3): L = log 2; replacing w_1 by the geometric
    mean of the others (3) gives log 3, replacing w_2 gives log 1:

    >>> import numpy as np
    >>> import theano.tensor as T
    >>> from parmesan.objectives import vimco_learning_signals
    >>> log_w = T.constant(np.log([[1., 3.]]))       # (batch, K)
    >>> np.allclose(vimco_learning_signals(log_w).eval(),
    ...             [[np.log(2) - np.log(3), np.log(2) - np.log(1)]])
    True
    """
    _check_num_samples(num_samples)
    log_w = _as_rows(log_weights, num_samples, 'log_weights')
    count = log_w.shape[1]
    # Both the bound and the geometric mean shift with a constant added to a
    # row, and summing K centred log-weights loses far less precision than
    # summing K log-weights of -100s of nats each.
    centred = log_w - theano.gradient.zero_grad(
        T.max(log_w, axis=1, keepdims=True))
    others_mean = (centred.sum(axis=1, keepdims=True) - centred) / \
        T.cast(count - 1, log_w.dtype)
    index = T.arange(count)
    on_diagonal = T.eq(index.dimshuffle(0, 'x'), index.dimshuffle('x', 0))
    # replaced[r, j, i] is log w_i of row r, with w_j swapped for the
    # geometric mean of the others.
    replaced = T.switch(on_diagonal.dimshuffle('x', 0, 1),
                        others_mean.dimshuffle(0, 1, 'x'),
                        centred.dimshuffle(0, 'x', 1))
    bound = log_mean_exp(centred, axis=1, keepdims=True)
    return bound - log_mean_exp(replaced, axis=2)


def vimco_surrogate(log_weights, log_q, num_samples=None):
    """A scalar whose gradient is the VIMCO estimate of the gradient of the
    K-sample bound, averaged over the examples (and eq samples).

    Its value is the batch mean of L = log (1/K) sum_k w_k, so it doubles
    as the training bound to monitor. Its gradient is, per row,
    ``sum_j stopgrad(L - L_{-j}) grad log q(h_j|x) + sum_j stopgrad(w~_j)
    grad log w_j``, divided by the number of rows: parameters that enter
    only ``log_weights`` (the generative model) get the gradient of L, and
    the inference network also gets the score-function term with the
    per-sample VIMCO signals. The discrete samples h themselves must carry
    no gradient (Parmesan's Bernoulli sample layers pass none).

    Parameters
    ----------
    log_weights : Theano tensor
        log p(x, h_k) - log q(h_k | x), laid out as in
        :func:`vimco_learning_signals`.
    log_q : Theano tensor of the same layout
        log q(h_k | x) of the same samples.
    num_samples : int or Theano integer scalar, optional
        K; needed when the inputs are vectors.

    Returns
    -------
    Theano scalar to maximise.

    Examples
    --------
    Its value is the bound, here log 2:

    >>> import numpy as np
    >>> import theano.tensor as T
    >>> from parmesan.objectives import vimco_surrogate
    >>> log_w = T.constant(np.log([[1., 3.]]))
    >>> log_q = T.constant(np.log([[0.5, 0.25]]))
    >>> bool(np.isclose(vimco_surrogate(log_w, log_q).eval(), np.log(2)))
    True

    Training maximises it: ``lasagne.updates.adam(-objective, params)``.
    """
    _check_num_samples(num_samples)
    log_w = _as_rows(log_weights, num_samples, 'log_weights')
    log_q = _as_rows(log_q, num_samples, 'log_q')
    signals = theano.gradient.zero_grad(vimco_learning_signals(log_w))
    bound = log_mean_exp(log_w, axis=1)
    # log_q - stopgrad(log_q) is zero in value but has log_q's gradient, so
    # the surrogate's value stays the bound.
    score = (signals * (log_q - theano.gradient.zero_grad(log_q))).sum(axis=1)
    return T.mean(bound + score)
