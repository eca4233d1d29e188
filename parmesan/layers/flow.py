"""Normalizing flows: planar, radial and inverse autoregressive.

A flow layer maps a batch of latent samples ``z`` of shape
``(batch_size, num_latent)`` through an invertible function ``f`` and returns
the list ``[f(z), logdet]``, where ``logdet`` of shape ``(batch_size,)`` is
``log |det df/dz|`` per sample. By the change of variables, the density of
``z_K = f_K(...f_1(z_0))`` is

    log q_K(z_K) = log q_0(z_0) - sum_k logdet_k,

so a variational bound subtracts the summed ``logdet`` from ``log q_0``.
:class:`ListIndexLayer` picks ``f(z)`` (index 0) or ``logdet`` (index 1) out
of a flow layer, which is how flows are stacked. As in the original
Parmesan, a flow layer's ``output_shape`` is that of ``f(z)``; the shapes of
both outputs come from ``get_output_shapes_for``::

    l_z = ListIndexLayer(l_flow_1, 0)
    l_flow_2 = NormalizingRadialFlowLayer(l_z)

References
----------
Rezende, D. J. and Mohamed, S. (2015). Variational inference with
normalizing flows. ICML.

Kingma, D. P., Salimans, T., Jozefowicz, R., Chen, X., Sutskever, I. and
Welling, M. (2016). Improved variational inference with inverse
autoregressive flow. NIPS.

Germain, M., Gregor, K., Murray, I. and Larochelle, H. (2015). MADE: masked
autoencoder for distribution estimation. ICML.
"""
import numbers

import numpy as np
import theano
import theano.tensor as T
from lasagne import init, nonlinearities
from lasagne.layers import Layer, MergeLayer

from ..nonlinearities import softplus
from .special import describe_layer as _describe

__all__ = ['NormalizingPlanarFlowLayer', 'NormalizingRadialFlowLayer',
           'MaskedDenseLayer',
           'InverseAutoregressiveFlowLayer', 'made_input_degrees',
           'made_hidden_degrees', 'MASK_TYPES']

#: Mask types of :class:`MaskedDenseLayer`: a ``'hidden'`` unit of degree k
#: sees inputs of degree <= k, an ``'output'`` unit only those of degree < k.
MASK_TYPES = ('hidden', 'output')


def _matrix_width(layer, shape, what):
    """Number of columns of a (batch_size, num_features) shape.

    The flows hold one parameter per latent dimension, so the width must be
    known when the layer is built.
    """
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError('%s needs a matrix %s of shape (batch_size, '
                         'num_features), got %s shape %s with %d dimensions'
                         % (_describe(layer), what, what, shape, len(shape)))
    if shape[1] is None:
        raise ValueError('%s needs the number of features of its %s at '
                         'construction, got %s shape %s'
                         % (_describe(layer), what, what, shape))
    return int(shape[1])


class NormalizingPlanarFlowLayer(Layer):
    """Planar normalizing flow (Rezende and Mohamed, 2015).

    ``f(z) = z + u_hat * tanh(w^T z + b)``, where ``u_hat`` is ``u``
    re-parameterised so that ``w^T u_hat >= -1``, which makes ``f``
    invertible (appendix A.1 of the paper):
    ``u_hat = u + (m(w^T u) - w^T u) * w / ||w||^2`` with
    ``m(a) = -1 + softplus(a)``.

    Parameters
    ----------
    incoming : a :class:`lasagne.layers.Layer` instance or a tuple
        The layer of latent samples ``z``, or its shape. Its output must be a
        matrix ``(batch_size, num_latent)`` with ``num_latent`` known.
    u : Theano shared variable, numpy array or callable
        Initialiser for the unconstrained vector ``u`` of size
        ``num_latent``.
    w : Theano shared variable, numpy array or callable
        Initialiser for the vector ``w`` of size ``num_latent``; it must not
        be all zeros (``u_hat`` divides by ``||w||^2``).
    b : Theano shared variable, numpy array or callable
        Initialiser for the scalar bias ``b``.
    **kwargs
        Passed to :class:`lasagne.layers.Layer` (e.g. ``name``).

    Returns
    -------
    list of two Theano expressions (from :meth:`get_output_for`)
        ``[f_z, logdet]``: the transformed samples, shape
        ``(batch_size, num_latent)``, and ``log |1 + u_hat^T psi(z)|`` with
        ``psi(z) = (1 - tanh^2(w^T z + b)) w``, shape ``(batch_size,)``.

    Raises
    ------
    ValueError
        If the input is not a matrix with a known number of columns.

    Example
    -------
    >>> from lasagne.layers import InputLayer
    >>> from parmesan.layers import ListIndexLayer, NormalizingPlanarFlowLayer
    >>> l_z0 = InputLayer((None, 2))
    >>> l_flow = NormalizingPlanarFlowLayer(l_z0)
    >>> l_z1, l_logdet = ListIndexLayer(l_flow, 0), ListIndexLayer(l_flow, 1)
    >>> l_z1.output_shape, l_logdet.output_shape
    ((None, 2), (None,))
    """

    def __init__(self, incoming, u=init.Normal(), w=init.Normal(),
                 b=init.Constant(0.), **kwargs):
        super(NormalizingPlanarFlowLayer, self).__init__(incoming, **kwargs)
        self.num_latent = _matrix_width(self, self.input_shape, 'input')
        self.u = self.add_param(u, (self.num_latent,), name='u')
        self.w = self.add_param(w, (self.num_latent,), name='w')
        self.b = self.add_param(b, (), name='b', regularizable=False)

    def get_u_hat(self):
        """The re-parameterised ``u_hat`` the flow uses.

        Returns
        -------
        Theano vector of size ``num_latent`` with ``w^T u_hat >= -1``.
        """
        wu = T.dot(self.w, self.u)
        m_wu = -1. + softplus(wu)
        return self.u + (m_wu - wu) * self.w / T.sum(self.w ** 2)

    def get_output_shapes_for(self, input_shape):
        """The shapes of ``[f_z, logdet]``."""
        return [tuple(input_shape), (input_shape[0],)]

    def get_output_shape_for(self, input_shape):
        # The shape of f_z, as the original Parmesan reported it; the
        # shapes of both outputs come from get_output_shapes_for.
        return tuple(input_shape)

    def get_output_for(self, input, **kwargs):
        u_hat = self.get_u_hat()
        activation = T.tanh(T.dot(input, self.w) + self.b)
        f_z = input + activation.dimshuffle(0, 'x') * u_hat.dimshuffle('x', 0)
        # u_hat^T psi = (1 - tanh^2) * w^T u_hat: no need to form psi itself.
        u_hat_dot_psi = (1. - activation ** 2) * T.dot(self.w, u_hat)
        logdet = T.log(abs(1. + u_hat_dot_psi))
        return [f_z, logdet]


class NormalizingRadialFlowLayer(Layer):
    """Radial normalizing flow (Rezende and Mohamed, 2015).

    ``f(z) = z + beta_hat * h(r) * (z - z0)`` with ``r = ||z - z0||`` and
    ``h(r) = 1 / (alpha_hat + r)``: a contraction (``beta_hat < 0``) or
    expansion (``beta_hat > 0``) around the reference point ``z0``. The
    layer stores unconstrained ``alpha`` and ``beta`` and uses
    ``alpha_hat = softplus(alpha) > 0`` and
    ``beta_hat = -alpha_hat + softplus(beta) >= -alpha_hat``, the condition
    for ``f`` to be invertible (appendix A.2 of the paper).

    Parameters
    ----------
    incoming : a :class:`lasagne.layers.Layer` instance or a tuple
        The layer of latent samples ``z``, or its shape. Its output must be a
        matrix ``(batch_size, num_latent)`` with ``num_latent`` known.
    z0 : Theano shared variable, numpy array or callable
        Initialiser for the reference point ``z0`` of size ``num_latent``.
    alpha : Theano shared variable, numpy array or callable
        Initialiser for the unconstrained scalar ``alpha``; the default 0
        gives ``alpha_hat = log 2``.
    beta : Theano shared variable, numpy array or callable
        Initialiser for the unconstrained scalar ``beta``; values near
        ``alpha`` make ``beta_hat`` near 0, so the default small normal
        noise starts the flow close to the identity.
    **kwargs
        Passed to :class:`lasagne.layers.Layer` (e.g. ``name``).

    Returns
    -------
    list of two Theano expressions (from :meth:`get_output_for`)
        ``[f_z, logdet]``: the transformed samples, shape
        ``(batch_size, num_latent)``, and, shape ``(batch_size,)``,
        ``(D - 1) log(1 + beta_hat h) + log(1 + beta_hat h + beta_hat h' r)``
        with ``D = num_latent`` and ``h' = -1 / (alpha_hat + r)^2``.

    Raises
    ------
    ValueError
        If the input is not a matrix with a known number of columns.

    Notes
    -----
    The gradient of ``r`` is undefined at ``z = z0`` exactly, which
    continuous samples hit with probability zero.

    Example
    -------
    >>> from lasagne.layers import InputLayer
    >>> l_z0 = InputLayer((None, 2))
    >>> l_flow = NormalizingRadialFlowLayer(l_z0, name='radial')
    >>> l_flow.output_shape, l_flow.get_output_shapes_for((None, 2))
    ((None, 2), [(None, 2), (None,)])
    """

    def __init__(self, incoming, z0=init.Normal(), alpha=init.Constant(0.),
                 beta=init.Normal(), **kwargs):
        super(NormalizingRadialFlowLayer, self).__init__(incoming, **kwargs)
        self.num_latent = _matrix_width(self, self.input_shape, 'input')
        self.z0 = self.add_param(z0, (self.num_latent,), name='z0',
                                 regularizable=False)
        self.alpha = self.add_param(alpha, (), name='alpha',
                                    regularizable=False)
        self.beta = self.add_param(beta, (), name='beta',
                                   regularizable=False)

    def get_alpha_hat(self):
        """The positive ``alpha_hat = softplus(alpha)`` the flow uses.

        Returns
        -------
        Theano scalar, greater than 0.
        """
        return softplus(self.alpha)

    def get_beta_hat(self):
        """The constrained ``beta_hat = -alpha_hat + softplus(beta)``.

        Returns
        -------
        Theano scalar, at least ``-alpha_hat``.
        """
        return -self.get_alpha_hat() + softplus(self.beta)

    def get_output_shapes_for(self, input_shape):
        """The shapes of ``[f_z, logdet]``."""
        return [tuple(input_shape), (input_shape[0],)]

    def get_output_shape_for(self, input_shape):
        # The shape of f_z, as the original Parmesan reported it; the
        # shapes of both outputs come from get_output_shapes_for.
        return tuple(input_shape)

    def get_output_for(self, input, **kwargs):
        alpha_hat = self.get_alpha_hat()
        beta_hat = self.get_beta_hat()
        offset = input - self.z0.dimshuffle('x', 0)
        radius = T.sqrt(T.sum(offset ** 2, axis=1))
        h = 1. / (alpha_hat + radius)
        beta_h = beta_hat * h
        f_z = input + beta_h.dimshuffle(0, 'x') * offset
        h_prime = -h ** 2
        # Both arguments of log1p exceed -1 whenever beta_hat >= -alpha_hat,
        # so no absolute value is needed.
        logdet = ((self.num_latent - 1) * T.log1p(beta_h) +
                  T.log1p(beta_h + beta_hat * h_prime * radius))
        return [f_z, logdet]


def made_input_degrees(num_inputs, reverse=False):
    """MADE degrees of the inputs: 1..D, or D..1 to reverse the order.

    An autoregressive network built on these degrees lets output ``d`` see
    only inputs of smaller degree, i.e. the inputs before it in the order.

    Parameters
    ----------
    num_inputs : int
        Number of inputs ``D``.
    reverse : bool
        If True, the last input comes first in the autoregressive order.

    Returns
    -------
    numpy int array of size ``num_inputs``, a permutation of ``1..D``.

    Example
    -------
    >>> made_input_degrees(3, reverse=True)
    array([3, 2, 1])
    """
    degrees = np.arange(1, num_inputs + 1)
    return degrees[::-1].copy() if reverse else degrees


def made_hidden_degrees(num_units, num_inputs):
    """Deterministic MADE degrees of a hidden layer: 1, 2, ..., D-1, 1, ...

    Degrees cycle through ``1..D-1``: a unit of degree ``D`` could feed no
    output, and degree 0 would see no input. With at least ``D - 1`` units
    per hidden layer every output sees all the inputs before it.

    Parameters
    ----------
    num_units : int
        Number of hidden units.
    num_inputs : int
        Number of inputs ``D`` of the autoregressive network.

    Returns
    -------
    numpy int array of size ``num_units`` with values in ``1..max(1, D-1)``.

    Example
    -------
    >>> made_hidden_degrees(5, 3)
    array([1, 2, 1, 2, 1])
    """
    return np.arange(num_units) % max(1, num_inputs - 1) + 1


def _as_degrees(layer, degrees, size, what):
    degrees = np.asarray(degrees)
    if degrees.ndim != 1 or degrees.shape[0] != size:
        raise ValueError('%s: %s must be a vector of %d degrees, got shape %s'
                         % (_describe(layer), what, size, degrees.shape))
    if not np.issubdtype(degrees.dtype, np.integer):
        raise ValueError('%s: %s must be integers, got dtype %s'
                         % (_describe(layer), what, degrees.dtype))
    return degrees


class MaskedDenseLayer(Layer):
    """Dense layer with a MADE autoregressive mask (Germain et al., 2015).

    Every input and every unit carries a degree. The weight from input ``j``
    to unit ``k`` is kept if ``degrees[k] >= input_degrees[j]``
    (``mask_type='hidden'``) or ``degrees[k] > input_degrees[j]``
    (``mask_type='output'``). Stacking hidden layers and ending with an
    output layer whose degrees are the network's input degrees gives an
    autoregressive network: output ``d`` depends only on inputs that come
    before ``d`` in the order.

    Parameters
    ----------
    incoming : a :class:`lasagne.layers.Layer` instance or a tuple
        The layer feeding into this layer, or its shape; a matrix
        ``(batch_size, num_inputs)``.
    num_units : int
        Number of units.
    degrees : sequence of int
        Degree of each unit, length `num_units`; e.g.
        :func:`made_hidden_degrees` for a hidden layer, or the network's
        input degrees for the output layer (tile them for several outputs
        per input).
    input_degrees : sequence of int or None
        Degree of each input. None takes ``incoming.degrees``, so masked
        layers chain without repeating degrees; the first layer of a network
        needs them, e.g. from :func:`made_input_degrees`.
    mask_type : {'hidden', 'output'}
        'hidden' connects equal degrees, 'output' does not.
    W : Theano shared variable, numpy array or callable
        Initialiser for the weights, shape ``(num_inputs, num_units)``; the
        masked entries are stored but never used.
    b : Theano shared variable, numpy array, callable or None
        Initialiser for the biases, shape ``(num_units,)``; None for none.
    nonlinearity : callable or None
        Applied to the activation; None is linear.
    **kwargs
        Passed to :class:`lasagne.layers.Layer` (e.g. ``name``).

    Returns
    -------
    Theano matrix (from :meth:`get_output_for`)
        ``nonlinearity(input . (W * mask) + b)``, shape
        ``(batch_size, num_units)``. The mask is the numpy array
        ``layer.mask`` and the unit degrees ``layer.degrees``.

    Raises
    ------
    ValueError
        If the input is not a matrix with a known width, the degrees do not
        match the sizes, input degrees are missing, or `mask_type` is
        unknown.

    Example
    -------
    A MADE with two hidden layers for ``D = 4``:

    >>> from lasagne.layers import InputLayer
    >>> l_in = InputLayer((None, 4))
    >>> l_h1 = MaskedDenseLayer(l_in, 10, made_hidden_degrees(10, 4),
    ...                         input_degrees=made_input_degrees(4))
    >>> l_h2 = MaskedDenseLayer(l_h1, 10, made_hidden_degrees(10, 4))
    >>> l_out = MaskedDenseLayer(l_h2, 4, made_input_degrees(4),
    ...                          mask_type='output', nonlinearity=None)
    """

    def __init__(self, incoming, num_units, degrees, input_degrees=None,
                 mask_type='hidden', W=init.GlorotUniform(),
                 b=init.Constant(0.), nonlinearity=nonlinearities.rectify,
                 **kwargs):
        super(MaskedDenseLayer, self).__init__(incoming, **kwargs)
        num_inputs = _matrix_width(self, self.input_shape, 'input')
        if mask_type not in MASK_TYPES:
            raise ValueError('%s: mask_type must be one of %s, got %r'
                             % (_describe(self), MASK_TYPES, mask_type))
        if input_degrees is None:
            input_degrees = getattr(incoming, 'degrees', None)
            if input_degrees is None:
                source = (_describe(incoming) if isinstance(incoming, Layer)
                          else 'shape %s' % (incoming,))
                raise ValueError('%s: input_degrees is None and the incoming '
                                 '%s has no degrees; pass the input degrees '
                                 '(e.g. made_input_degrees(%d))'
                                 % (_describe(self), source, num_inputs))
        self.num_units = int(num_units)
        self.mask_type = mask_type
        self.input_degrees = _as_degrees(self, input_degrees, num_inputs,
                                         'input_degrees')
        self.degrees = _as_degrees(self, degrees, self.num_units, 'degrees')
        if mask_type == 'hidden':
            connected = self.degrees[None, :] >= self.input_degrees[:, None]
        else:
            connected = self.degrees[None, :] > self.input_degrees[:, None]
        self.mask = connected.astype(theano.config.floatX)
        self.nonlinearity = (nonlinearities.identity if nonlinearity is None
                             else nonlinearity)
        self.W = self.add_param(W, (num_inputs, self.num_units), name='W')
        if b is None:
            self.b = None
        else:
            self.b = self.add_param(b, (self.num_units,), name='b',
                                    regularizable=False)

    def get_output_shape_for(self, input_shape):
        return (input_shape[0], self.num_units)

    def get_output_for(self, input, **kwargs):
        activation = T.dot(input, self.W * self.mask)
        if self.b is not None:
            activation = activation + self.b.dimshuffle('x', 0)
        return self.nonlinearity(activation)


class InverseAutoregressiveFlowLayer(MergeLayer):
    """One step of inverse autoregressive flow (Kingma et al., 2016).

    A MADE network (:class:`MaskedDenseLayer` hidden layers) computes
    ``[m, s] = ARNN(z)``, where ``m_d`` and ``s_d`` depend only on the
    variables before ``d`` in the order. With ``sigma = sigmoid(s)`` the
    numerically stable update of the paper is

        z_new = sigma * z + (1 - sigma) * m,
        logdet = sum_d log sigma_d,

    whose Jacobian is triangular in the order with diagonal ``sigma``.

    Parameters
    ----------
    incoming : a :class:`lasagne.layers.Layer` instance or a tuple
        The layer of latent samples ``z``, a matrix
        ``(batch_size, num_latent)`` with ``num_latent`` known.
    num_hidden : int or sequence of int
        Units of each hidden layer of the autoregressive network (at least
        one layer). Each layer should have at least ``num_latent - 1`` units
        so every variable can depend on all variables before it.
    nonlinearity : callable
        Nonlinearity of the hidden layers.
    reverse : bool
        If False, variable ``d`` depends on ``z_1..z_{d-1}``; if True, on
        ``z_{d+1}..z_D``. Alternate it between stacked IAF layers so every
        variable gets to depend on every other one.
    context : a :class:`lasagne.layers.Layer` instance, a tuple or None
        Optional extra input ``h`` of shape ``(batch_size, num_context)``
        (e.g. from the encoder), connected without a mask to the first
        hidden layer. It does not depend on ``z``, so the flow stays
        autoregressive.
    W : callable
        Initialiser for the hidden-layer and context weights (a callable,
        since it initialises one matrix per layer).
    b : callable
        Initialiser for the hidden-layer biases.
    W_output : callable
        Initialiser for the two weight matrices producing ``m`` and ``s``;
        small values keep the initial flow close to ``z_new = sigma * z``.
    mean_bias : Theano shared variable, numpy array or callable
        Initialiser for the bias of ``m``.
    scale_bias : Theano shared variable, numpy array or callable
        Initialiser for the bias of ``s``; the paper starts with a positive
        value so that ``sigma`` is near 1 and the flow near the identity.
    **kwargs
        Passed to :class:`lasagne.layers.MergeLayer` (e.g. ``name``).

    Returns
    -------
    list of two Theano expressions (from :meth:`get_output_for`)
        ``[z_new, logdet]`` of shapes ``(batch_size, num_latent)`` and
        ``(batch_size,)``.

    Raises
    ------
    ValueError
        If `incoming` or `context` is not a matrix with a known width, their
        batch sizes differ, or `num_hidden` is empty or not positive.

    Notes
    -----
    The internal layers are ``hidden_layers``, ``mean_layer`` and
    ``scale_layer``; their parameters are this layer's parameters, so
    :func:`lasagne.layers.get_all_params` finds them.

    Example
    -------
    >>> from lasagne.layers import InputLayer
    >>> from parmesan.layers import (InverseAutoregressiveFlowLayer,
    ...                              ListIndexLayer)
    >>> l_z = InputLayer((None, 4))
    >>> l_iaf_1 = InverseAutoregressiveFlowLayer(l_z, num_hidden=20)
    >>> l_iaf_2 = InverseAutoregressiveFlowLayer(
    ...     ListIndexLayer(l_iaf_1, 0), num_hidden=[20, 20], reverse=True)
    >>> ListIndexLayer(l_iaf_2, 1).output_shape
    (None,)
    """

    def __init__(self, incoming, num_hidden,
                 nonlinearity=nonlinearities.rectify, reverse=False,
                 context=None, W=init.GlorotUniform(), b=init.Constant(0.),
                 W_output=init.Normal(0.01),
                 mean_bias=init.Constant(0.), scale_bias=init.Constant(2.),
                 **kwargs):
        incomings = [incoming] if context is None else [incoming, context]
        super(InverseAutoregressiveFlowLayer, self).__init__(incomings,
                                                             **kwargs)
        self.num_latent = _matrix_width(self, self.input_shapes[0], 'input')
        self.has_context = context is not None
        if self.has_context:
            num_context = _matrix_width(self, self.input_shapes[1],
                                        'context')
            batch_z, batch_context = (self.input_shapes[0][0],
                                      self.input_shapes[1][0])
            if None not in (batch_z, batch_context) and \
                    batch_z != batch_context:
                raise ValueError('%s: input shape %s and context shape %s '
                                 'have different batch sizes'
                                 % (_describe(self), self.input_shapes[0],
                                    self.input_shapes[1]))

        if isinstance(num_hidden, numbers.Integral):
            num_hidden = [num_hidden]
        num_hidden = list(num_hidden)
        if not num_hidden or any(not isinstance(n, numbers.Integral) or
                                 n < 1 for n in num_hidden):
            raise ValueError('%s: num_hidden must be a positive int or a '
                             'non-empty sequence of them, got %r'
                             % (_describe(self), num_hidden))
        self.num_hidden = num_hidden
        self.reverse = bool(reverse)
        self.nonlinearity = (nonlinearities.identity if nonlinearity is None
                             else nonlinearity)

        def sublayer_name(part):
            return None if self.name is None else '%s.%s' % (self.name, part)

        self.input_degrees = made_input_degrees(self.num_latent, self.reverse)
        # The hidden layers are linear: the context term is added to the
        # first activation before the nonlinearity.
        self.hidden_layers = []
        previous = (self.input_shapes[0][0], self.num_latent)
        previous_degrees = self.input_degrees
        for depth, units in enumerate(num_hidden):
            layer = MaskedDenseLayer(
                previous, units, made_hidden_degrees(units, self.num_latent),
                input_degrees=previous_degrees, mask_type='hidden', W=W, b=b,
                nonlinearity=None, name=sublayer_name('hidden%d' % depth))
            self.hidden_layers.append(layer)
            previous, previous_degrees = layer, None
        self.mean_layer = MaskedDenseLayer(
            previous, self.num_latent, self.input_degrees, mask_type='output',
            W=W_output, b=mean_bias, nonlinearity=None,
            name=sublayer_name('mean'))
        self.scale_layer = MaskedDenseLayer(
            previous, self.num_latent, self.input_degrees, mask_type='output',
            W=W_output, b=scale_bias, nonlinearity=None,
            name=sublayer_name('scale'))
        for layer in self.hidden_layers + [self.mean_layer, self.scale_layer]:
            self.params.update(layer.params)
        if self.has_context:
            self.W_context = self.add_param(W, (num_context, num_hidden[0]),
                                            name='W_context')

    def get_output_shapes_for(self, input_shapes):
        """The shapes of ``[z_new, logdet]``."""
        z_shape = tuple(input_shapes[0])
        return [z_shape, (z_shape[0],)]

    def get_output_shape_for(self, input_shapes):
        return tuple(input_shapes[0])

    def get_output_for(self, inputs, **kwargs):
        z = inputs[0]
        hidden = z
        for depth, layer in enumerate(self.hidden_layers):
            activation = layer.get_output_for(hidden)
            if depth == 0 and self.has_context:
                activation = activation + T.dot(inputs[1], self.W_context)
            hidden = self.nonlinearity(activation)
        mean = self.mean_layer.get_output_for(hidden)
        scale_logit = self.scale_layer.get_output_for(hidden)
        sigma = T.nnet.sigmoid(scale_logit)
        z_new = sigma * z + (1. - sigma) * mean
        # log sigmoid(s) = -softplus(-s) stays finite for very negative s.
        logdet = T.sum(-softplus(-scale_logit), axis=1)
        return [z_new, logdet]
