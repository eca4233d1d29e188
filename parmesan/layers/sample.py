"""Reparameterised sample layers with Monte-Carlo and importance axes.

Layers that draw ``eq_samples * iw_samples`` samples per example lay them out
**batch-major**: row ``b*eq*iw + e*iw + i`` of the output holds sample
``(e, i)`` of example ``b``. Reshape a per-sample quantity to
``(batch, eq, iw)`` to average over ``eq`` and log-mean-exp over ``iw``
(:func:`parmesan.utils.importance_weighted_bound` does exactly that).

A layer built without a ``seed`` takes one from ``lasagne.random.get_rng()``,
so ``lasagne.random.set_rng(np.random.RandomState(1))`` makes a whole model
reproducible, and no two layers share a noise stream.
"""
import numpy as np
import lasagne
import theano.tensor as T
from lasagne.layers import Layer, MergeLayer
from theano.sandbox.rng_mrg import MRG_RandomStreams
from theano.tensor.opt import Assert

from ..nonlinearities import exp_half

__all__ = ['SimpleSampleLayer', 'SampleLayer', 'SimpleBernoulliSampleLayer',
           'BernoulliSampleLayer', 'SampleAxesMixin', 'draw_seed']

# MRG_RandomStreams takes seeds below its first modulus.
_MAX_SEED = 2147462579


def draw_seed(seed=None):
    """Return `seed`, or a fresh one from Lasagne's random generator."""
    if seed is None:
        return int(lasagne.random.get_rng().randint(1, _MAX_SEED))
    return int(seed)


def _check_count(layer_name, name, count):
    """Validate eq_samples / iw_samples: an int >= 1 or an int scalar."""
    if isinstance(count, T.Variable):
        if count.ndim != 0 or not count.dtype.startswith(('int', 'uint')):
            raise TypeError('%s: %s must be a Theano integer scalar, got %s '
                            'of dtype %s' % (layer_name, name, count.type,
                                             count.dtype))
        return count
    if isinstance(count, (bool, np.bool_)) or \
            not isinstance(count, (int, np.integer)):
        raise TypeError('%s: %s must be an int or a Theano integer scalar, '
                        'got %r' % (layer_name, name, count))
    if count < 1:
        raise ValueError('%s: %s must be at least 1, got %d'
                         % (layer_name, name, count))
    return int(count)


def _checked_count(layer_name, name, count):
    """`count`, or for a symbolic count the same value checked when the
    compiled function runs: 0 would otherwise surface as a MemoryError of
    the noise generator, a negative count as a shape error."""
    if not isinstance(count, T.Variable):
        return count
    message = '%s: %s must be at least 1 when the function runs' \
        % (layer_name, name)
    return Assert(message)(count, T.ge(count, 1))


def _check_same_shape(layer_name, shape_a, shape_b, names):
    if len(shape_a) != len(shape_b) or any(
            a is not None and b is not None and a != b
            for a, b in zip(shape_a, shape_b)):
        raise ValueError('%s: %s has shape %s but %s has shape %s; they must '
                         'match' % (layer_name, names[0], shape_a, names[1],
                                    shape_b))


class SampleAxesMixin(object):
    """Shared bookkeeping of the eq and iw sample axes and the noise stream.

    Subclasses call :meth:`_init_sampling` in their constructor, draw noise
    of shape :meth:`_noise_shape` from ``self._srng``, broadcast per-example
    inputs with :meth:`_per_example` and flatten with :meth:`_flatten`.
    """

    def _init_sampling(self, eq_samples, iw_samples, seed):
        name = type(self).__name__
        self.eq_samples = _check_count(name, 'eq_samples', eq_samples)
        self.iw_samples = _check_count(name, 'iw_samples', iw_samples)
        self._srng = MRG_RandomStreams(draw_seed(seed))

    def seed(self, seed=None):
        """Restart the noise stream from `seed` (or a fresh one)."""
        self._srng.seed(draw_seed(seed))

    def _samples_per_example(self):
        return self.eq_samples * self.iw_samples

    def _output_rows(self, batch_size):
        per_example = self._samples_per_example()
        if batch_size is None or isinstance(per_example, T.Variable):
            return None
        return batch_size * per_example

    def _noise_shape(self, matrix):
        name = type(self).__name__
        return (matrix.shape[0],
                _checked_count(name, 'eq_samples', self.eq_samples),
                _checked_count(name, 'iw_samples', self.iw_samples),
                matrix.shape[1])

    @staticmethod
    def _per_example(matrix):
        return matrix.dimshuffle(0, 'x', 'x', 1)

    @staticmethod
    def _flatten(samples):
        return samples.reshape((-1, samples.shape[-1]))


def _require_matrix(layer_name, shape, what='input'):
    if len(shape) != 2:
        raise ValueError('%s needs a matrix (batch, features) as %s, got '
                         'shape %s' % (layer_name, what, shape))


class SimpleSampleLayer(MergeLayer):
    """One reparameterised Gaussian sample per row: mean + exp(log_var/2) eps.

    Parameters
    ----------
    mean : Layer
        The Gaussian means.
    log_var : Layer
        The log-variances, of the same shape as `mean`.
    seed : int, optional
        Seed of the noise stream; by default drawn from
        ``lasagne.random.get_rng()``.

    Returns
    -------
    A layer whose output has the shape of `mean`.

    Examples
    --------
    Samples of N(3, 2^2), one per row of the inputs:

    >>> import numpy as np
    >>> import theano
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import SimpleSampleLayer
    >>> l_mu, l_log_var = InputLayer((None, 1)), InputLayer((None, 1))
    >>> l_z = SimpleSampleLayer(l_mu, l_log_var, seed=1)
    >>> sample = theano.function([l_mu.input_var, l_log_var.input_var],
    ...                          get_output(l_z))
    >>> z = sample(floatX(np.full((10000, 1), 3.)),
    ...            floatX(np.full((10000, 1), np.log(4.))))
    >>> round(float(z.mean()), 1), round(float(z.std()), 1)
    (3.0, 2.0)
    """

    def __init__(self, mean, log_var, seed=None, **kwargs):
        super(SimpleSampleLayer, self).__init__([mean, log_var], **kwargs)
        _check_same_shape(type(self).__name__, *self.input_shapes,
                          names=('mean', 'log_var'))
        self._srng = MRG_RandomStreams(draw_seed(seed))

    def seed(self, seed=None):
        """Restart the noise stream from `seed` (or a fresh one)."""
        self._srng.seed(draw_seed(seed))

    def get_output_shape_for(self, input_shapes):
        return input_shapes[0]

    def get_output_for(self, inputs, **kwargs):
        mean, log_var = inputs
        eps = self._srng.normal(mean.shape, dtype=mean.dtype)
        return mean + T.exp(0.5 * log_var) * eps


class SampleLayer(SampleAxesMixin, MergeLayer):
    """Gaussian samples with Monte-Carlo (eq) and importance (iw) axes.

    Draws ``eq_samples * iw_samples`` reparameterised samples
    ``mean + nonlinearity(log_var) * eps`` per example, batch-major: row
    ``b*eq*iw + e*iw + i`` is sample ``(e, i)`` of example ``b``.

    Parameters
    ----------
    mean : Layer
        Means, a matrix (batch, features).
    log_var : Layer
        The spread parameter, same shape as `mean`; `nonlinearity` maps it
        to a standard deviation.
    eq_samples : int or Theano integer scalar
        Samples averaged over in the bound (Monte-Carlo axis).
    iw_samples : int or Theano integer scalar
        Importance samples per Monte-Carlo sample. A symbolic count below 1
        raises an AssertionError naming it when the function runs.
    nonlinearity : callable
        Maps the second input to a standard deviation: ``exp_half`` for a
        log-variance (default), ``T.sqrt`` for a variance, identity for a
        standard deviation.
    seed : int, optional
        Seed of the noise stream; by default drawn from
        ``lasagne.random.get_rng()``.

    Returns
    -------
    A layer with output shape (batch * eq_samples * iw_samples, features).

    Examples
    --------
    Three importance samples per example, batch-major (with a tiny
    variance, each sample is its example's mean):

    >>> import numpy as np
    >>> import theano
    >>> import theano.tensor as T
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import SampleLayer
    >>> iw = T.iscalar('iw')
    >>> l_mu, l_log_var = InputLayer((None, 2)), InputLayer((None, 2))
    >>> l_z = SampleLayer(l_mu, l_log_var, eq_samples=1, iw_samples=iw)
    >>> sample = theano.function([l_mu.input_var, l_log_var.input_var, iw],
    ...                          get_output(l_z))
    >>> z = sample(floatX([[1, 1], [10, 10]]), floatX(np.full((2, 2), -30)), 3)
    >>> z.shape, np.round(z[:, 0]).tolist()
    ((6, 2), [1.0, 1.0, 1.0, 10.0, 10.0, 10.0])
    """

    def __init__(self, mean, log_var, eq_samples=1, iw_samples=1,
                 nonlinearity=exp_half, seed=None, **kwargs):
        super(SampleLayer, self).__init__([mean, log_var], **kwargs)
        name = type(self).__name__
        _require_matrix(name, self.input_shapes[0], 'mean')
        _check_same_shape(name, *self.input_shapes, names=('mean', 'log_var'))
        if not callable(nonlinearity):
            raise TypeError('%s: nonlinearity must be callable, got %r'
                            % (name, nonlinearity))
        self.nonlinearity = nonlinearity
        self._init_sampling(eq_samples, iw_samples, seed)

    def get_output_shape_for(self, input_shapes):
        batch_size, num_features = input_shapes[0]
        return (self._output_rows(batch_size), num_features)

    def get_output_for(self, inputs, **kwargs):
        mean, log_var = inputs
        eps = self._srng.normal(self._noise_shape(mean), dtype=mean.dtype)
        std = self.nonlinearity(log_var)
        return self._flatten(self._per_example(mean) +
                             self._per_example(std) * eps)


class SimpleBernoulliSampleLayer(Layer):
    """One Bernoulli(p) draw per entry; no gradient flows through it.

    Parameters
    ----------
    mean : Layer
        Probabilities in [0, 1].
    seed : int, optional
        Seed of the noise stream; by default drawn from
        ``lasagne.random.get_rng()``.

    Returns
    -------
    A layer whose output has the shape of `mean`, with values 0 or 1.

    Examples
    --------
    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import SimpleBernoulliSampleLayer
    >>> l_p = InputLayer((None, 3))
    >>> l_h = SimpleBernoulliSampleLayer(l_p, seed=1)
    >>> h = get_output(l_h, floatX(np.full((10000, 3), [0., 0.3, 1.]))).eval()
    >>> [round(float(mean), 1) for mean in h.mean(axis=0)]
    [0.0, 0.3, 1.0]
    """

    def __init__(self, mean, seed=None, **kwargs):
        super(SimpleBernoulliSampleLayer, self).__init__(mean, **kwargs)
        self._srng = MRG_RandomStreams(draw_seed(seed))

    def seed(self, seed=None):
        """Restart the noise stream from `seed` (or a fresh one)."""
        self._srng.seed(draw_seed(seed))

    def get_output_for(self, mean, **kwargs):
        uniform = self._srng.uniform(mean.shape, dtype=mean.dtype)
        return T.cast(uniform < mean, mean.dtype)


class BernoulliSampleLayer(SampleAxesMixin, Layer):
    """Bernoulli draws with eq and iw sample axes, batch-major like
    :class:`SampleLayer`; no gradient flows through the draws.

    Parameters
    ----------
    mean : Layer
        Probabilities, a matrix (batch, features).
    eq_samples, iw_samples : int or Theano integer scalar
    seed : int, optional

    Returns
    -------
    A layer with output shape (batch * eq_samples * iw_samples, features).

    Examples
    --------
    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import BernoulliSampleLayer
    >>> l_h = BernoulliSampleLayer(InputLayer((2, 3)), iw_samples=50)
    >>> l_h.output_shape
    (100, 3)
    >>> h = get_output(l_h, floatX([[0, 0, 0], [1, 1, 1]])).eval()
    >>> h[:50].max(), h[50:].min()
    (0.0, 1.0)
    """

    def __init__(self, mean, eq_samples=1, iw_samples=1, seed=None,
                 **kwargs):
        super(BernoulliSampleLayer, self).__init__(mean, **kwargs)
        _require_matrix(type(self).__name__, self.input_shape, 'mean')
        self._init_sampling(eq_samples, iw_samples, seed)

    def get_output_shape_for(self, input_shape):
        batch_size, num_features = input_shape
        return (self._output_rows(batch_size), num_features)

    def get_output_for(self, mean, **kwargs):
        uniform = self._srng.uniform(self._noise_shape(mean), dtype=mean.dtype)
        return self._flatten(T.cast(uniform < self._per_example(mean),
                                    mean.dtype))
