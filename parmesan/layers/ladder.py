"""Ladder-network parts (Rasmus et al. 2015): decoder normalisation and the
denoising combinator."""
import theano.tensor as T
from lasagne import init, nonlinearities
from lasagne.layers import MergeLayer

__all__ = ['DecoderNormalizeLayer', 'DenoiseLayer', 'GaussianDenoiseLayer']


class DecoderNormalizeLayer(MergeLayer):
    """Normalise with statistics computed elsewhere: (x - mean)/sqrt(var+eps).

    The ladder decoder compares its reconstruction with the clean encoder's
    pre-activations after normalising both with the clean encoder's batch
    statistics, which a :class:`NormalizeLayer` built with
    ``return_stats=True`` provides.

    Parameters
    ----------
    incoming : Layer, shape (batch, features)
    mean, var : Layers, shape (features,) or (1, features)
        The statistics to normalise with.
    epsilon : float
        Added to `var`; the original Parmesan used none.

    Returns
    -------
    A layer with the shape of `incoming`.

    Examples
    --------
    Normalising a batch with its own encoder statistics:

    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import (DecoderNormalizeLayer, ListIndexLayer,
    ...                              NormalizeLayer)
    >>> l_z = InputLayer((None, 3))
    >>> l_stats = NormalizeLayer(l_z, return_stats=True)
    >>> l_mean = ListIndexLayer(l_stats, 1)
    >>> l_var = ListIndexLayer(l_stats, 2)
    >>> l_zhat_bn = DecoderNormalizeLayer(l_z, l_mean, l_var)
    >>> z = floatX(np.random.RandomState(0).normal(2, 5, size=(100, 3)))
    >>> out = get_output(l_zhat_bn, z).eval()
    >>> np.allclose(out, (z - z.mean(axis=0)) / z.std(axis=0), atol=1e-4)
    True
    """

    def __init__(self, incoming, mean, var, epsilon=0.0, **kwargs):
        super(DecoderNormalizeLayer, self).__init__([incoming, mean, var],
                                                    **kwargs)
        x_shape, mean_shape, var_shape = self.input_shapes
        for name, shape in (('mean', mean_shape), ('var', var_shape)):
            # (features,), or the input's rank with 1 (or unknown) on every
            # axis but the last, as NormalizeLayer(return_stats=True) gives.
            leading_ok = len(shape) == 1 or (
                len(shape) == len(x_shape) and
                all(size in (1, None) for size in shape[:-1]))
            if not leading_ok or (None not in (shape[-1], x_shape[-1]) and
                                  shape[-1] != x_shape[-1]):
                raise ValueError('%s: %s must be a vector of the %s features '
                                 'of the input (or of shape (1, %s)), got '
                                 'shape %s'
                                 % (type(self).__name__, name, x_shape[-1],
                                    x_shape[-1], shape))
        self.epsilon = epsilon

    def get_output_shape_for(self, input_shapes):
        return input_shapes[0]

    def get_output_for(self, inputs, **kwargs):
        x, mean, var = inputs
        mean, var = (self._broadcastable(stat, x.ndim) for stat in (mean, var))
        return (x - mean) / T.sqrt(var + self.epsilon)

    @staticmethod
    def _broadcastable(stat, ndim):
        """A (1, D) statistic made to broadcast over the batch."""
        if stat.ndim != ndim:
            return stat
        return T.addbroadcast(stat, *range(ndim - 1))


class _PerUnitCombinator(MergeLayer):
    """Shared base of the ladder combinators g(u, z).

    Merges the top-down signal `u_net` and the lateral signal `z_net`, whose
    last axes must have the same, known number of units, and creates one
    trainable vector of that length per entry of the class attribute
    ``_INITIAL`` (name -> constant initial value), in the dict's order, as an
    attribute of that name; those named in ``_NOT_REGULARIZED`` are not
    tagged regularizable. The output has the shape of `z_net`.
    """

    _INITIAL = {}
    _NOT_REGULARIZED = ()

    def __init__(self, u_net, z_net, **kwargs):
        super(_PerUnitCombinator, self).__init__([u_net, z_net], **kwargs)
        u_shape, z_shape = self.input_shapes
        if None in (u_shape[-1], z_shape[-1]) or u_shape[-1] != z_shape[-1]:
            raise ValueError('%s: u_net and z_net need the same known number '
                             'of units in the last axis, got shapes %s and %s'
                             % (type(self).__name__, u_shape, z_shape))
        num_units = z_shape[-1]
        for name, value in self._INITIAL.items():
            setattr(self, name, self.add_param(
                init.Constant(value), (num_units,), name,
                regularizable=name not in self._NOT_REGULARIZED))

    def get_output_shape_for(self, input_shapes):
        return input_shapes[1]


class DenoiseLayer(_PerUnitCombinator):
    """The ladder network's per-unit denoising combinator g(u, z).

    z_hat = a1 + a2 z + a3 u + a4 z u + b1 nonlinearity(c1 + c2 z + c3 u +
    c4 z u), with one parameter of each kind per unit; a2 = c2 = 1 and all
    others 0 initially, so z_hat starts as z + b1 sigmoid(...) = z.

    Parameters
    ----------
    u_net : Layer
        The top-down signal, shape (batch, units).
    z_net : Layer
        The lateral (noisy) signal, same shape.
    nonlinearity : callable
        Sigmoid by default.

    Returns
    -------
    A layer with the shape of `z_net`.

    Notes
    -----
    The parameters come in the original Parmesan's order a1..a4, c1..c4,
    b1, each of shape (units,); b1 is not regularizable.

    Examples
    --------
    At its initial parameters the combinator passes the noisy z through:

    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import DenoiseLayer
    >>> l_u, l_z_noisy = InputLayer((None, 3)), InputLayer((None, 3))
    >>> l_zhat = DenoiseLayer(l_u, l_z_noisy)
    >>> u, z = floatX(np.ones((2, 3))), floatX(np.arange(6).reshape(2, 3))
    >>> np.allclose(get_output(l_zhat, {l_u: u, l_z_noisy: z}).eval(), z)
    True
    """

    # The original Parmesan's order and tags, so that its saved parameter
    # values (all of one shape) land on the same parameters.
    _INITIAL = {'a1': 0., 'a2': 1., 'a3': 0., 'a4': 0.,
                'c1': 0., 'c2': 1., 'c3': 0., 'c4': 0., 'b1': 0.}
    _NOT_REGULARIZED = ('b1',)

    def __init__(self, u_net, z_net, nonlinearity=nonlinearities.sigmoid,
                 **kwargs):
        super(DenoiseLayer, self).__init__(u_net, z_net, **kwargs)
        self.nonlinearity = nonlinearity

    def get_output_for(self, inputs, **kwargs):
        u, z = inputs
        zu = z * u
        linear = self.a1 + self.a2 * z + self.a3 * u + self.a4 * zu
        gate = self.c1 + self.c2 * z + self.c3 * u + self.c4 * zu
        return linear + self.b1 * self.nonlinearity(gate)


class GaussianDenoiseLayer(_PerUnitCombinator):
    """The ladder network's Gaussian ("gauss") denoising combinator g(u, z).

    Rasmus et al. (2015), "Semi-Supervised Learning with Ladder Networks",
    the combinator behind their 1.06 % result on MNIST with 100 labels. For
    a Gaussian latent with Gaussian corruption the optimal denoiser is linear
    in the noisy z, with a mean and a weight that depend on the top-down
    signal u::

        mu(u) = a1 sigmoid(a2 u + a3) + a4 u + a5
        v(u)  = a6 sigmoid(a7 u + a8) + a9 u + a10
        z_hat = (z - mu(u)) v(u) + mu(u)

    with one parameter of each kind per unit (all trainable). As in the
    authors' code (CuriousAI/ladder, ``ladder.py``, g type ``'gauss'``),
    a2 = a7 = 1 and all others are 0 initially. Then mu = v = 0, so z_hat
    starts as 0 for any u and z (unlike :class:`DenoiseLayer`, which starts
    as the identity in z). The gradients with respect to a1, a4, a5, a6, a9
    and a10 are not zero there, so training moves away from it; those with
    respect to a2, a3, a7 and a8 stay zero until a1 and a6 do not.

    Parameters
    ----------
    u_net : Layer
        The top-down signal u, shape (batch, units) (in the ladder network,
        batch-normalised).
    z_net : Layer
        The lateral (noisy) signal z, same shape. The last axes of `u_net`
        and `z_net` must have the same, known number of units.

    Returns
    -------
    A layer with the shape of `z_net`.

    Examples
    --------
    At its initial parameters (a1 ... a10 of the paper) the weight v is 0,
    so the estimate is the mean mu, also 0:

    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import GaussianDenoiseLayer
    >>> l_u, l_z_noisy = InputLayer((None, 3)), InputLayer((None, 3))
    >>> l_zhat = GaussianDenoiseLayer(l_u, l_z_noisy)
    >>> u, z = floatX(np.ones((2, 3))), floatX(np.arange(6).reshape(2, 3))
    >>> get_output(l_zhat, {l_u: u, l_z_noisy: z}).eval().tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """

    _INITIAL = {'a1': 0., 'a2': 1., 'a3': 0., 'a4': 0., 'a5': 0.,
                'a6': 0., 'a7': 1., 'a8': 0., 'a9': 0., 'a10': 0.}

    def get_output_for(self, inputs, **kwargs):
        u, z = inputs
        sigmoid = nonlinearities.sigmoid
        mu = self.a1 * sigmoid(self.a2 * u + self.a3) + self.a4 * u + self.a5
        v = self.a6 * sigmoid(self.a7 * u + self.a8) + self.a9 * u + self.a10
        return (z - mu) * v + mu
