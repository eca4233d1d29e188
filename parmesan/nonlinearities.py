"""Nonlinearities that Lasagne 0.1 lacks, and a softmax that runs on
Theano's GPU backend."""
import theano.tensor as T

from .utils import log_sum_exp

__all__ = ['softplus', 'exp_half', 'log_softmax', 'softmax']


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


def log_softmax(x, axis=-1):
    """log softmax(x) along `axis`: x minus its max-shifted log-sum-exp.

    Finite for any finite `x` (a probability that underflows to 0 still has
    its log), and built from element-wise ops and reductions only: Theano's
    optimizer does not turn it into its Softmax / SoftmaxGrad or fused
    softmax cross-entropy ops, which have no implementation (SoftmaxGrad)
    or no kernel that every OpenCL compiler builds on its GPU backend.

    Parameters
    ----------
    x : Theano tensor
        Unnormalised log-probabilities (logits).
    axis : int
        The category axis (default: the last).

    Returns
    -------
    Theano tensor of `x`'s shape, log-probabilities along `axis`.

    Examples
    --------
    >>> import numpy as np
    >>> import theano.tensor as T
    >>> from scipy.special import log_softmax as reference
    >>> from parmesan.nonlinearities import log_softmax
    >>> logits = np.array([[1000., 0., -1000.], [1., 2., 3.]])
    >>> np.allclose(log_softmax(T.constant(logits)).eval(),
    ...             reference(logits, axis=-1))
    True
    """
    x = T.as_tensor_variable(x)
    return x - log_sum_exp(x, axis=axis, keepdims=True)


def softmax(x, axis=-1):
    """softmax(x) along `axis`, as the exp of :func:`log_softmax`.

    A drop-in for ``lasagne.nonlinearities.softmax`` (rows of a matrix by
    default) whose forward pass and gradient run on Theano's GPU backend,
    where Theano 1.0's softmax gradient stays on the host.

    Parameters
    ----------
    x : Theano tensor
    axis : int
        The category axis (default: the last).

    Returns
    -------
    Theano tensor of `x`'s shape, summing to 1 along `axis`.

    Examples
    --------
    >>> import numpy as np
    >>> from lasagne.layers import DenseLayer, InputLayer
    >>> from parmesan.nonlinearities import softmax
    >>> layer = DenseLayer(InputLayer((None, 5)), 3, nonlinearity=softmax)
    >>> probs = softmax(np.array([[0., np.log(3.)]])).eval()
    >>> np.allclose(probs, [[0.25, 0.75]])
    True
    """
    return T.exp(log_softmax(x, axis))
