"""Nonlinearities that Lasagne 0.1 lacks."""
import theano.tensor as T

__all__ = ['softplus', 'exp_half']


def softplus(x):
    """Softplus log(1 + exp(x)), numerically stable for large |x|.

    Parameters
    ----------
    x : Theano tensor

    Returns
    -------
    Theano tensor, element-wise softplus of `x`.

    Example
    -------
    >>> from parmesan.nonlinearities import softplus
    >>> layer = lasagne.layers.DenseLayer(l_in, 10, nonlinearity=softplus)
    """
    return T.nnet.softplus(x)


def exp_half(x):
    """exp(x / 2): maps a log-variance to a standard deviation."""
    return T.exp(0.5 * x)
