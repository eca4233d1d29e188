"""Batch normalisation split in two: normalise, then scale and shift.

Lasagne 0.1 has no batch normalisation. The ladder network needs the two
halves separately (its decoder reuses the encoder's batch statistics), so
Parmesan keeps them as two layers: :class:`NormalizeLayer` and
:class:`ScaleAndShiftLayer`.
"""
import numbers

import numpy as np
import theano
import theano.tensor as T
from lasagne import init, nonlinearities
from lasagne.layers import Layer, NonlinearityLayer
from theano.tensor.opt import Assert

from .special import describe_layer

__all__ = ['NormalizeLayer', 'ScaleAndShiftLayer', 'batch_norm',
           'NORMALIZE_MODES']

#: The statistic-collection modes of :class:`NormalizeLayer` besides an
#: exponential-moving-average weight.
NORMALIZE_MODES = ('single_pass', 'running_average')


def _feature_axes(layer_name, ndim, axes):
    """The axes to normalise over: by default all but the second."""
    if axes is None:
        axes = (0,) + tuple(range(2, ndim))
    elif isinstance(axes, int):
        axes = (axes,)
    axes = tuple(sorted(a % ndim for a in axes))
    if not axes or len(set(axes)) != len(axes):
        raise ValueError('%s: invalid axes %r for a %d-dimensional input'
                         % (layer_name, axes, ndim))
    return axes


def _param_shape(layer_name, input_shape, axes):
    """The input shape with 1 along `axes`: the original Parmesan's shape of
    the statistics and of beta and gamma, e.g. (1, D) for a dense layer."""
    shape = tuple(1 if axis in axes else size
                  for axis, size in enumerate(input_shape))
    if any(size is None for size in shape):
        raise ValueError('%s needs the sizes of the axes it does not '
                         'normalise over; input shape %s, axes %s'
                         % (layer_name, input_shape, axes))
    return shape


class NormalizeLayer(Layer):
    """Batch normalisation without scale and shift: (x - m) / sqrt(v + eps).

    During training (the default) ``m`` and ``v`` are the statistics of the
    current batch. ``get_output(..., deterministic=True)`` uses the stored
    statistics instead. They are filled by a function compiled from
    ``get_output(..., deterministic=True, collect=True)`` (the original
    Parmesan's idiom; ``deterministic`` may be left out), whose updates
    write the batch statistics into the layer, in one of three ways
    (`alpha`):

    * ``'single_pass'``: overwrite; call once with the whole training set
      as one batch.
    * ``'running_average'``: the average over all rows seen by collection
      calls since :meth:`reset_stats` (batch means and second moments
      weighted by batch size), so the stored statistics equal those of the
      whole set however it was split. For data sets too large for one
      batch.
    * a float in (0, 1]: exponential moving average with weight `alpha` on
      the newest batch.

    A collection pass normalises with the batch statistics it collects, so
    every layer of a stack sees the input the layers below it will give
    once their statistics are stored: one pass collects exact statistics
    for the whole stack.

    A deterministic pass of a layer whose statistics were never collected
    (nor set, e.g. with ``set_all_param_values``) raises an
    ``AssertionError`` naming the layer when the compiled function runs,
    rather than normalising silently with mean 0 and variance 1.

    Parameters
    ----------
    incoming : Layer
    axes : int, tuple of ints or None
        Axes to normalise over; by default all but the second (the
        features, or channels of a convolution).
    epsilon : float
        Added to the variance.
    alpha : 'single_pass', 'running_average' or float
        How collection updates the stored statistics, see above.
    return_stats : bool
        If true, the output is the list [normalised, mean, var] (the ladder
        decoder needs the encoder's batch statistics); pick with
        :class:`parmesan.layers.ListIndexLayer`.
    stat_indices : Theano integer vector or slice, optional
        Rows of the input to take the batch statistics from (for instance
        the unlabelled rows of a mixed batch); all rows are normalised.

    Returns
    -------
    A layer with the shape of its input. With `return_stats` the output is
    a list; ``output_shape`` is still the input shape, as in the original
    Parmesan, and ``get_output_shapes_for`` gives all three shapes.

    Notes
    -----
    The parameters are ``mean`` and ``var``, not trainable, of the input
    shape with 1 along `axes` (``(1, D)`` after a dense layer), as in the
    original Parmesan, so its saved parameter values load unchanged.

    Examples
    --------
    In the training pass the layer standardises each feature over the
    batch:

    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import NormalizeLayer
    >>> x = floatX(np.random.RandomState(0).normal(2, 5, size=(100, 3)))
    >>> out = get_output(NormalizeLayer(InputLayer((None, 3))), x).eval()
    >>> np.allclose(out.mean(axis=0), 0, atol=1e-4), np.allclose(out.std(axis=0), 1)
    (True, True)

    With :class:`ScaleAndShiftLayer` it is Ioffe & Szegedy's batch
    normalisation; ``get_output(..., collect=True)`` accumulates the
    statistics that ``deterministic=True`` uses.
    """

    def __init__(self, incoming, axes=None, epsilon=1e-10,
                 alpha='single_pass', return_stats=False, stat_indices=None,
                 **kwargs):
        super(NormalizeLayer, self).__init__(incoming, **kwargs)
        name = describe_layer(self)
        if isinstance(alpha, str):
            if alpha not in NORMALIZE_MODES:
                raise ValueError('%s: unknown alpha mode %r; use one of %s or '
                                 'a float in (0, 1]'
                                 % (name, alpha, ', '.join(NORMALIZE_MODES)))
        elif not isinstance(alpha, numbers.Real) or not 0 < alpha <= 1:
            raise ValueError('%s: alpha must be one of %s or a float in '
                             '(0, 1], got %r'
                             % (name, ', '.join(NORMALIZE_MODES), alpha))
        if epsilon < 0:
            raise ValueError('%s: epsilon must be >= 0, got %r'
                             % (name, epsilon))
        self.axes = _feature_axes(name, len(self.input_shape), axes)
        shape = _param_shape(name, self.input_shape, self.axes)
        self.epsilon = epsilon
        self.alpha = alpha
        self.return_stats = return_stats
        self.stat_indices = stat_indices
        self.mean = self.add_param(init.Constant(0), shape, 'mean',
                                   trainable=False, regularizable=False)
        self.var = self.add_param(init.Constant(1), shape, 'var',
                                  trainable=False, regularizable=False)
        # Values collected since reset_stats; not a parameter, so that the
        # parameters are the original's (mean, var).
        self.num_collected = theano.shared(
            np.zeros((), dtype=theano.config.floatX),
            name=None if self.name is None else self.name + '.num_collected')

    def reset_stats(self):
        """Start a new 'running_average' collection."""
        self.num_collected.set_value(
            np.zeros((), dtype=self.num_collected.dtype))

    def get_output_shapes_for(self, input_shape):
        """With `return_stats`, the shapes of [normalised, mean, var]; else
        None (the output is not a list)."""
        if not self.return_stats:
            return None
        stat_shape = tuple(1 if axis in self.axes else size
                           for axis, size in enumerate(input_shape))
        return [tuple(input_shape), stat_shape, stat_shape]

    def get_output_shape_for(self, input_shape):
        return input_shape

    def _statistic_rows(self, input):
        return input if self.stat_indices is None else \
            input[self.stat_indices]

    def _batch_stats(self, input):
        rows = self._statistic_rows(input)
        return (rows.mean(self.axes, keepdims=True),
                rows.var(self.axes, keepdims=True))

    def _stored_stats(self):
        """The stored statistics, checked at run time to have been set."""
        never_set = (T.eq(self.num_collected, 0) &
                     T.all(T.eq(self.mean, 0)) & T.all(T.eq(self.var, 1)))
        check = Assert(
            '%s: deterministic pass before its statistics were collected. '
            'Run a function compiled from get_output(..., deterministic=True,'
            ' collect=True) over the training data first (or load saved '
            'parameter values).' % describe_layer(self))
        return self.mean, check(self.var, T.eq(never_set, 0))

    def _collected(self, batch_mean, batch_var, input):
        """New stored statistics and count after one collection call."""
        rows = self._statistic_rows(input)
        # Values averaged per feature: the count of rows along all
        # normalised axes.
        batch_count = T.prod([rows.shape[a] for a in self.axes]).astype(
            self.num_collected.dtype)
        count = self.num_collected + batch_count
        if self.alpha == 'single_pass':
            return batch_mean, batch_var, batch_count
        if self.alpha == 'running_average':
            weight = batch_count / count
            mean = self.mean + weight * (batch_mean - self.mean)
            second_moment = self.var + self.mean ** 2
            second_moment += weight * (batch_var + batch_mean ** 2 -
                                       second_moment)
            return mean, second_moment - mean ** 2, count
        mean = (1 - self.alpha) * self.mean + self.alpha * batch_mean
        var = (1 - self.alpha) * self.var + self.alpha * batch_var
        return mean, var, count

    def _collection_anchor(self, batch_mean, batch_var, input):
        """Zero that carries the collection updates into a graph.

        The standard Lasagne idiom: copies of the shared variables with a
        default update, which any function compiled from an expression that
        depends on them applies.
        """
        anchor = 0
        for param, new_value in zip(
                (self.mean, self.var, self.num_collected),
                self._collected(batch_mean, batch_var, input)):
            updated = theano.clone(param, share_inputs=False)
            updated.default_update = T.patternbroadcast(
                T.cast(new_value, param.dtype), param.broadcastable)
            anchor += 0 * updated.sum()
        return anchor

    def get_output_for(self, input, deterministic=False, collect=False,
                       **kwargs):
        if collect or not deterministic:
            mean, var = self._batch_stats(input)
        else:
            mean, var = self._stored_stats()
        if collect:
            mean = mean + self._collection_anchor(mean, var, input)
        mean = T.addbroadcast(mean, *self.axes)
        var = T.addbroadcast(var, *self.axes)
        normalized = (input - mean) / T.sqrt(var + self.epsilon)
        if self.return_stats:
            return [normalized, mean, var]
        return normalized


class ScaleAndShiftLayer(Layer):
    """Learned per-feature scale and shift: x * gamma + beta.

    Parameters
    ----------
    incoming : Layer
    axes : int, tuple of ints or None
        Axes the parameters are shared over; by default all but the second.
    beta : Theano shared variable, array, callable or None
        The shift, initialised to 0; None leaves it out. Not regularised
        (like Lasagne's batch normalisation; the original Parmesan tagged
        beta and not gamma).
    gamma : Theano shared variable, array, callable or None
        The scale, initialised to 1; None leaves it out. Regularisable.

    Returns
    -------
    A layer with the shape of its input.

    Notes
    -----
    beta and gamma have the input shape with 1 along `axes` (``(1, D)``
    after a dense layer), in this order, as in the original Parmesan.

    Examples
    --------
    >>> from lasagne.layers import InputLayer
    >>> from parmesan.layers import NormalizeLayer, ScaleAndShiftLayer
    >>> l_h = ScaleAndShiftLayer(NormalizeLayer(InputLayer((None, 5))))
    >>> [(p.name, p.get_value().tolist()) for p in l_h.get_params()]
    [('beta', [[0.0, 0.0, 0.0, 0.0, 0.0]]), ('gamma', [[1.0, 1.0, 1.0, 1.0, 1.0]])]
    """

    def __init__(self, incoming, axes=None, beta=init.Constant(0.),
                 gamma=init.Constant(1.), **kwargs):
        super(ScaleAndShiftLayer, self).__init__(incoming, **kwargs)
        name = describe_layer(self)
        self.axes = _feature_axes(name, len(self.input_shape), axes)
        shape = _param_shape(name, self.input_shape, self.axes)
        self.beta = None if beta is None else self.add_param(
            beta, shape, 'beta', trainable=True, regularizable=False)
        self.gamma = None if gamma is None else self.add_param(
            gamma, shape, 'gamma', trainable=True, regularizable=True)

    def get_output_for(self, input, **kwargs):
        if self.gamma is not None:
            input = input * T.addbroadcast(self.gamma, *self.axes)
        if self.beta is not None:
            input = input + T.addbroadcast(self.beta, *self.axes)
        return input


def batch_norm(layer, axes=None, epsilon=1e-10, alpha='single_pass',
               beta=init.Constant(0.), gamma=init.Constant(1.)):
    """Batch-normalise a layer: the convenience of Lasagne's development
    version, built from :class:`NormalizeLayer` and
    :class:`ScaleAndShiftLayer`.

    The layer's nonlinearity moves behind the normalisation and its bias
    is removed (the shift beta replaces it), so ``batch_norm(DenseLayer(l,
    200, nonlinearity=rectify))`` is Dense (no bias) -> NormalizeLayer ->
    ScaleAndShiftLayer -> NonlinearityLayer(rectify).

    Unlike Lasagne's ``BatchNormLayer``, which keeps running averages
    updated by every training pass, the statistics a deterministic pass
    uses are collected as for any NormalizeLayer: by a function compiled
    from ``get_output(..., deterministic=True, collect=True)``.

    Parameters
    ----------
    layer : Layer
        Typically a DenseLayer or convolution; it is modified in place.
    axes, epsilon, alpha
        Passed to :class:`NormalizeLayer`.
    beta, gamma
        Passed to :class:`ScaleAndShiftLayer`.

    Returns
    -------
    The top layer of the stack: the NonlinearityLayer if `layer` had a
    nonlinearity, else the ScaleAndShiftLayer. A named layer ``'h'`` gives
    ``'h_bn'``, ``'h_bn_scale'`` and ``'h_bn_nonlin'``.

    Example
    -------
    >>> from lasagne.layers import InputLayer, DenseLayer, get_all_params
    >>> from lasagne.nonlinearities import rectify
    >>> l_h = batch_norm(DenseLayer(InputLayer((None, 5)), 3,
    ...                             nonlinearity=rectify))
    >>> [p.name for p in get_all_params(l_h)]
    ['W', 'mean', 'var', 'beta', 'gamma']
    """
    nonlinearity = getattr(layer, 'nonlinearity', None)
    if nonlinearity is not None:
        layer.nonlinearity = nonlinearities.identity
    if getattr(layer, 'b', None) is not None:
        del layer.params[layer.b]
        layer.b = None

    def named(suffix):
        return None if layer.name is None else layer.name + suffix

    top = NormalizeLayer(layer, axes=axes, epsilon=epsilon, alpha=alpha,
                         name=named('_bn'))
    top = ScaleAndShiftLayer(top, axes=axes, beta=beta, gamma=gamma,
                             name=named('_bn_scale'))
    if nonlinearity is not None:
        top = NonlinearityLayer(top, nonlinearity, name=named('_bn_nonlin'))
    return top
