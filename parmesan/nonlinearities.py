"""Nonlinearities that Lasagne 0.1 lacks."""
import theano.tensor as T

__all__ = ['softplus', 'exp_half']


def softplus(x):
    """Softplus log(1 + exp(x)), numerically stable for large ``|x|``.

    Parameters
    ----------
    x : Theano tensor

    Returns
    -------
    Theano tensor, element-wise softplus of `x`.

    Examples
    --------
    >>> import numpy as np
    >>> import theano.tensor as T
    >>> from lasagne.layers import DenseLayer, InputLayer
    >>> from parmesan.nonlinearities import softplus
    >>> layer = DenseLayer(InputLayer((None, 5)), 10, nonlinearity=softplus)
    >>> x = np.array([-3., 0., 3.])
    >>> np.allclose(softplus(T.constant(x)).eval(), np.log1p(np.exp(x)))
    True
    """
    return T.nnet.softplus(x)


def exp_half(x):
    """exp(x / 2): maps a log-variance to a standard deviation."""
    return T.exp(0.5 * x)
