"""Ladder-network parts (Rasmus et al. 2015): decoder normalisation and the
denoising combinator."""
import theano.tensor as T
from lasagne import init, nonlinearities
from lasagne.layers import MergeLayer

__all__ = ['DecoderNormalizeLayer', 'DenoiseLayer']


class DecoderNormalizeLayer(MergeLayer):
    """Normalise with statistics computed elsewhere: (x - mean)/sqrt(var+eps).

    The ladder decoder compares its reconstruction with the clean encoder's
    pre-activations after normalising both with the clean encoder's batch
    statistics, which a :class:`NormalizeLayer` built with
    ``return_stats=True`` provides.

    Parameters
    ----------
    incoming : Layer, shape (batch, features)
    mean, var : Layers, shape (features,)
        The statistics to normalise with.
    epsilon : float
        Added to `var`; the original Parmesan used none.

    Returns
    -------
    A layer with the shape of `incoming`.

    Example
    -------
    >>> l_stats = NormalizeLayer(l_dense, return_stats=True)
    >>> l_mean = ListIndexLayer(l_stats, 1)
    >>> l_var = ListIndexLayer(l_stats, 2)
    >>> l_zhat_bn = DecoderNormalizeLayer(l_zhat, l_mean, l_var)
    """

    def __init__(self, incoming, mean, var, epsilon=0.0, **kwargs):
        super(DecoderNormalizeLayer, self).__init__([incoming, mean, var],
                                                    **kwargs)
        x_shape, mean_shape, var_shape = self.input_shapes
        for name, shape in (('mean', mean_shape), ('var', var_shape)):
            if len(shape) != 1 or (None not in (shape[0], x_shape[-1]) and
                                   shape[0] != x_shape[-1]):
                raise ValueError('%s: %s must be a vector of the %s features '
                                 'of the input, got shape %s'
                                 % (type(self).__name__, name, x_shape[-1],
                                    shape))
        self.epsilon = epsilon

    def get_output_shape_for(self, input_shapes):
        return input_shapes[0]

    def get_output_for(self, inputs, **kwargs):
        x, mean, var = inputs
        return (x - mean) / T.sqrt(var + self.epsilon)


class DenoiseLayer(MergeLayer):
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

    Example
    -------
    >>> l_zhat = DenoiseLayer(l_u, l_z_noisy)
    """

    _INITIAL = {'a1': 0., 'a2': 1., 'a3': 0., 'a4': 0., 'b1': 0.,
                'c1': 0., 'c2': 1., 'c3': 0., 'c4': 0.}

    def __init__(self, u_net, z_net, nonlinearity=nonlinearities.sigmoid,
                 **kwargs):
        super(DenoiseLayer, self).__init__([u_net, z_net], **kwargs)
        u_shape, z_shape = self.input_shapes
        if None in (u_shape[-1], z_shape[-1]) or u_shape[-1] != z_shape[-1]:
            raise ValueError('%s: u_net and z_net need the same known number '
                             'of units in the last axis, got shapes %s and %s'
                             % (type(self).__name__, u_shape, z_shape))
        self.nonlinearity = nonlinearity
        num_units = z_shape[-1]
        for name, value in sorted(self._INITIAL.items()):
            setattr(self, name, self.add_param(init.Constant(value),
                                               (num_units,), name))

    def get_output_shape_for(self, input_shapes):
        return input_shapes[1]

    def get_output_for(self, inputs, **kwargs):
        u, z = inputs
        zu = z * u
        linear = self.a1 + self.a2 * z + self.a3 * u + self.a4 * zu
        gate = self.c1 + self.c2 * z + self.c3 * u + self.c4 * zu
        return linear + self.b1 * self.nonlinearity(gate)
