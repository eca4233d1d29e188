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
from lasagne import init
from lasagne.layers import Layer

__all__ = ['NormalizeLayer', 'ScaleAndShiftLayer', 'NORMALIZE_MODES']

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
    shape = tuple(size for axis, size in enumerate(input_shape)
                  if axis not in axes)
    if any(size is None for size in shape):
        raise ValueError('%s needs the sizes of the axes it does not '
                         'normalise over; input shape %s, axes %s'
                         % (layer_name, input_shape, axes))
    return shape


def _broadcast(param, ndim, axes):
    """Insert broadcastable axes into a parameter at the reduced `axes`."""
    pattern, kept = [], iter(range(param.ndim))
    for axis in range(ndim):
        pattern.append('x' if axis in axes else next(kept))
    return param.dimshuffle(pattern)


class NormalizeLayer(Layer):
    """Batch normalisation without scale and shift: (x - m) / sqrt(v + eps).

    During training (the default) ``m`` and ``v`` are the statistics of the
    current batch. ``get_output(..., deterministic=True)`` uses the stored
    statistics instead. They are filled by a function compiled from
    ``get_output(..., collect=True)``, whose updates write the batch
    statistics into the layer, in one of three ways (`alpha`):

    * ``'single_pass'``: overwrite; call once with the whole training set
      as one batch.
    * ``'running_average'``: the average over all rows seen by collection
      calls since :meth:`reset_stats` (batch means and second moments
      weighted by batch size), so the stored statistics equal those of the
      whole set however it was split. For data sets too large for one
      batch.
    * a float in (0, 1]: exponential moving average with weight `alpha` on
      the newest batch.

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
    A layer with the shape of its input (a list of three shapes with
    `return_stats`).

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
        name = type(self).__name__
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
        self.num_collected = self.add_param(
            init.Constant(0), (), 'num_collected',
            trainable=False, regularizable=False)

    def reset_stats(self):
        """Start a new 'running_average' collection."""
        self.num_collected.set_value(
            np.zeros((), dtype=self.num_collected.dtype))

    def get_output_shape_for(self, input_shape):
        if self.return_stats:
            stat_shape = tuple(size for axis, size in enumerate(input_shape)
                               if axis not in self.axes)
            return [input_shape, stat_shape, stat_shape]
        return input_shape

    def _statistic_rows(self, input):
        return input if self.stat_indices is None else \
            input[self.stat_indices]

    def _batch_stats(self, input):
        rows = self._statistic_rows(input)
        return rows.mean(self.axes), rows.var(self.axes)

    def _collected(self, input):
        """New stored statistics and count after one collection call."""
        batch_mean, batch_var = self._batch_stats(input)
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

    def get_output_for(self, input, deterministic=False, collect=False,
                       **kwargs):
        if deterministic:
            mean, var = self.mean, self.var
        else:
            mean, var = self._batch_stats(input)
        if collect:
            new_values = self._collected(input)
            anchor = 0
            for param, new_value in zip(
                    (self.mean, self.var, self.num_collected), new_values):
                # The standard Lasagne idiom: a copy of the shared variable
                # that carries the update and that the output depends on,
                # so any function compiled from this output collects.
                updated = theano.clone(param, share_inputs=False)
                updated.default_update = T.cast(new_value, param.dtype)
                anchor += 0 * updated.sum()
            mean = mean + anchor
        ndim = input.ndim
        mean_b = _broadcast(mean, ndim, self.axes)
        var_b = _broadcast(var, ndim, self.axes)
        normalized = (input - mean_b) / T.sqrt(var_b + self.epsilon)
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
        (like Lasagne's batch normalisation).
    gamma : Theano shared variable, array, callable or None
        The scale, initialised to 1; None leaves it out. Regularisable.

    Returns
    -------
    A layer with the shape of its input.

    Examples
    --------
    >>> from lasagne.layers import InputLayer
    >>> from parmesan.layers import NormalizeLayer, ScaleAndShiftLayer
    >>> l_h = ScaleAndShiftLayer(NormalizeLayer(InputLayer((None, 5))))
    >>> [(p.name, p.get_value().tolist()) for p in l_h.get_params()]
    [('beta', [0.0, 0.0, 0.0, 0.0, 0.0]), ('gamma', [1.0, 1.0, 1.0, 1.0, 1.0])]
    """

    def __init__(self, incoming, axes=None, beta=init.Constant(0.),
                 gamma=init.Constant(1.), **kwargs):
        super(ScaleAndShiftLayer, self).__init__(incoming, **kwargs)
        name = type(self).__name__
        self.axes = _feature_axes(name, len(self.input_shape), axes)
        shape = _param_shape(name, self.input_shape, self.axes)
        self.beta = None if beta is None else self.add_param(
            beta, shape, 'beta', trainable=True, regularizable=False)
        self.gamma = None if gamma is None else self.add_param(
            gamma, shape, 'gamma', trainable=True, regularizable=True)

    def get_output_for(self, input, **kwargs):
        if self.gamma is not None:
            input = input * _broadcast(self.gamma, input.ndim, self.axes)
        if self.beta is not None:
            input = input + _broadcast(self.beta, input.ndim, self.axes)
        return input
