"""Relaxed one-hot categorical samples: Gumbel-softmax and logistic-normal.

Both layers draw ``eq_samples * iw_samples`` points of the probability
simplex per example, laid out batch-major like
:class:`~parmesan.layers.SampleLayer`: row ``b*eq*iw + e*iw + i`` holds
sample ``(e, i)`` of example ``b``. A sample is
``softmax(scores / temperature)`` with noisy scores, so it is differentiable
in the parameters and tends to a one-hot vector as the temperature goes to
0. With ``straight_through=True`` the forward pass is that one-hot vector,
``one_hot(argmax(scores))``, while gradients are those of the soft sample
(Jang et al. 2016, Bengio et al. 2013).

`temperature` is a true temperature: it divides the scores. (vae_ssl's
``sharpening`` multiplies them, i.e. it is the inverse.) Pass a Theano
shared scalar to anneal it during training without recompiling.

The relaxed density of a Gumbel-softmax sample is
:func:`parmesan.distributions.log_concrete`.
"""
import numbers

import numpy as np
import theano
import theano.tensor as T
from lasagne.layers import Layer, MergeLayer
from theano.gradient import zero_grad
from theano.tensor.opt import Assert

from ..nonlinearities import exp_half, softmax
from ..utils import one_hot
from .sample import (SampleAxesMixin, _check_same_shape, _require_matrix)

__all__ = ['GumbelSoftmaxSampleLayer', 'LogisticNormalSampleLayer']


def _check_temperature(layer_name, temperature):
    """Validate a temperature: a finite number > 0 or a Theano scalar."""
    if isinstance(temperature, theano.Variable):
        if temperature.ndim != 0 or \
                not temperature.dtype.startswith(('float', 'int', 'uint')):
            raise TypeError('%s: temperature must be a Theano numeric scalar, '
                            'got %s of dtype %s' % (layer_name,
                                                    temperature.type,
                                                    temperature.dtype))
        # A shared temperature can still be checked now; a symbolic one only
        # gets a value when the compiled function is called.
        if isinstance(temperature, theano.compile.SharedVariable):
            value = float(temperature.get_value())
            if not (np.isfinite(value) and value > 0):
                raise ValueError('%s: temperature must be finite and > 0, the '
                                 'shared variable holds %r'
                                 % (layer_name, value))
        return temperature
    if isinstance(temperature, (bool, np.bool_)) or \
            not isinstance(temperature, numbers.Real):
        raise TypeError('%s: temperature must be a positive number or a '
                        'Theano scalar, got %r' % (layer_name, temperature))
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError('%s: temperature must be finite and > 0, got %r'
                         % (layer_name, temperature))
    return float(temperature)


def _check_flag(layer_name, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError('%s: %s must be True or False, got %r'
                        % (layer_name, name, value))
    return bool(value)


def _check_categories(layer_name, shape, what):
    _require_matrix(layer_name, shape, what)
    if shape[1] is not None and shape[1] < 2:
        raise ValueError('%s needs at least 2 categories, but %s has shape %s'
                         % (layer_name, what, shape))


class _RelaxedCategoricalMixin(SampleAxesMixin):
    """Temperature, straight-through option and the softmax relaxation."""

    def _init_relaxation(self, temperature, straight_through, eq_samples,
                         iw_samples, seed):
        name = type(self).__name__
        self.temperature = _check_temperature(name, temperature)
        self.straight_through = _check_flag(name, 'straight_through',
                                            straight_through)
        self._init_sampling(eq_samples, iw_samples, seed)

    def _relax(self, scores):
        """Map noisy scores (rows, K) to relaxed (or straight-through) samples.
        """
        dtype = scores.dtype
        if isinstance(self.temperature, theano.Variable):
            # Cast so a float64 shared temperature does not upcast a float32
            # graph.
            temperature = T.cast(self.temperature, dtype)
            # Its value can change after the constructor checked it: 0 would
            # give nan samples, a negative one plausible-looking wrong ones.
            temperature = Assert(
                '%s: temperature must be finite and > 0 when the function '
                'runs' % type(self).__name__)(
                temperature, T.gt(temperature, 0),
                T.lt(temperature, np.inf))
        else:
            temperature = T.constant(np.asarray(self.temperature, dtype=dtype))
        soft = softmax(scores / temperature)
        if not self.straight_through:
            return soft
        # argmax(scores) == argmax(scores / temperature) for temperature > 0,
        # and is immune to the softmax saturating into ties at low
        # temperature.
        hard = one_hot(T.argmax(scores, axis=1), scores.shape[1],
                       dtype=dtype)
        # hard + (soft - soft) is exactly hard in the forward pass (x - x is
        # exactly 0, whereas hard - soft + soft can be off by an ulp), and
        # its gradient is exactly the soft sample's.
        return hard + (soft - zero_grad(soft))


class GumbelSoftmaxSampleLayer(_RelaxedCategoricalMixin, Layer):
    """Gumbel-softmax (Concrete) samples of a categorical distribution.

    Draws ``y = softmax((logits + g) / temperature)`` with independent
    standard Gumbel noise ``g = -log(-log u)``, ``eq_samples * iw_samples``
    times per example, batch-major like :class:`SampleLayer`. The argmax of
    ``logits + g`` is distributed as ``Categorical(softmax(logits))`` (the
    Gumbel-max trick), and ``y`` has the Concrete density
    :func:`parmesan.distributions.log_concrete` (Maddison et al. 2016; Jang
    et al. 2016).

    Parameters
    ----------
    logits : Layer
        Unnormalised log-probabilities, a matrix (batch, K) with K >= 2.
    temperature : float or Theano scalar
        Divides the noisy logits: towards 0 the samples become one-hot, large
        values make them uniform. A Python number must be finite and > 0; a
        shared variable can be annealed with ``set_value`` between calls. A
        shared or symbolic temperature that is not finite and > 0 when the
        function runs raises an AssertionError naming the layer.
    eq_samples : int or Theano integer scalar
        Samples averaged over in the bound (Monte-Carlo axis).
    iw_samples : int or Theano integer scalar
        Importance samples per Monte-Carlo sample.
    straight_through : bool
        If True the output is ``one_hot(argmax(logits + g))`` (same noise as
        the soft sample) while gradients are those of the soft sample.
    seed : int, optional
        Seed of the noise stream; by default drawn from
        ``lasagne.random.get_rng()``.

    Returns
    -------
    A layer with output shape (batch * eq_samples * iw_samples, K) whose rows
    lie on the probability simplex.

    Examples
    --------
    >>> import numpy as np
    >>> import theano
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import GumbelSoftmaxSampleLayer
    >>> tau = theano.shared(floatX(1.0))
    >>> l_logits = InputLayer((None, 10))
    >>> l_y = GumbelSoftmaxSampleLayer(l_logits, tau, iw_samples=5)
    >>> sample = theano.function([l_logits.input_var], get_output(l_y))
    >>> tau.set_value(floatX(0.5))  # anneal; no recompilation needed
    >>> y = sample(floatX(np.zeros((2, 10))))
    >>> y.shape, np.allclose(y.sum(axis=1), 1)
    ((10, 10), True)
    """

    def __init__(self, logits, temperature, eq_samples=1, iw_samples=1,
                 straight_through=False, seed=None, **kwargs):
        super(GumbelSoftmaxSampleLayer, self).__init__(logits, **kwargs)
        _check_categories(type(self).__name__, self.input_shape, 'logits')
        self._init_relaxation(temperature, straight_through, eq_samples,
                              iw_samples, seed)

    def get_output_shape_for(self, input_shape):
        batch_size, num_categories = input_shape
        return (self._output_rows(batch_size), num_categories)

    def get_output_for(self, logits, **kwargs):
        dtype = logits.dtype
        uniform = self._srng.uniform(self._noise_shape(logits), dtype=dtype)
        # Keep u inside (0, 1) at the working precision: vae_ssl's
        # U(1e-10, 1 - 1e-10) rounds to 1 in float32 and gives g = inf. The
        # clip truncates each Gumbel tail with probability about eps.
        eps = float(np.finfo(dtype).eps)
        uniform = T.clip(uniform, eps, 1.0 - eps)
        gumbel = -T.log(-T.log(uniform))
        return self._relax(self._flatten(self._per_example(logits) + gumbel))


class LogisticNormalSampleLayer(_RelaxedCategoricalMixin, MergeLayer):
    """Logistic-normal samples: the softmax of Gaussian scores.

    Draws ``a = mean + nonlinearity(log_var) * eps`` with ``eps ~ N(0, 1)``
    (as :class:`SampleLayer` does) and returns
    ``y = softmax(a / temperature)``, ``eq_samples * iw_samples`` times per
    example, batch-major. The Gaussian q(a) has the analytic KL of
    :func:`parmesan.distributions.kl_normal2_stdnormal`. (vae_ssl's
    LogisticNormal model drew eps with mean 1; here it has mean 0.)

    Parameters
    ----------
    mean : Layer
        Means of the scores, a matrix (batch, K) with K >= 2.
    log_var : Layer
        The spread parameter, same shape as `mean`; `nonlinearity` maps it
        to a standard deviation.
    temperature : float or Theano scalar
        Divides the scores; see :class:`GumbelSoftmaxSampleLayer`.
    eq_samples, iw_samples : int or Theano integer scalar
        Monte-Carlo and importance samples per example.
    nonlinearity : callable
        Maps the second input to a standard deviation: ``exp_half`` for a
        log-variance (default), ``T.sqrt`` for a variance, identity for a
        standard deviation.
    straight_through : bool
        If True the output is ``one_hot(argmax(a))`` (same noise as the soft
        sample) while gradients are those of the soft sample.
    seed : int, optional
        Seed of the noise stream; by default drawn from
        ``lasagne.random.get_rng()``.

    Returns
    -------
    A layer with output shape (batch * eq_samples * iw_samples, K) whose rows
    lie on the probability simplex.

    Examples
    --------
    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import LogisticNormalSampleLayer
    >>> l_mu, l_lv = InputLayer((None, 10)), InputLayer((None, 10))
    >>> l_y = LogisticNormalSampleLayer(l_mu, l_lv, temperature=1 / 3.)
    >>> zeros = floatX(np.zeros((4, 10)))
    >>> y = get_output(l_y, {l_mu: zeros, l_lv: zeros}).eval()
    >>> y.shape, np.allclose(y.sum(axis=1), 1), bool((y >= 0).all())
    ((4, 10), True, True)
    """

    def __init__(self, mean, log_var, temperature, eq_samples=1,
                 iw_samples=1, nonlinearity=exp_half, straight_through=False,
                 seed=None, **kwargs):
        super(LogisticNormalSampleLayer, self).__init__([mean, log_var],
                                                        **kwargs)
        name = type(self).__name__
        _check_categories(name, self.input_shapes[0], 'mean')
        _check_same_shape(name, *self.input_shapes, names=('mean', 'log_var'))
        if not callable(nonlinearity):
            raise TypeError('%s: nonlinearity must be callable, got %r'
                            % (name, nonlinearity))
        self.nonlinearity = nonlinearity
        self._init_relaxation(temperature, straight_through, eq_samples,
                              iw_samples, seed)

    def get_output_shape_for(self, input_shapes):
        batch_size, num_categories = input_shapes[0]
        return (self._output_rows(batch_size), num_categories)

    def get_output_for(self, inputs, **kwargs):
        mean, log_var = inputs
        eps = self._srng.normal(self._noise_shape(mean), dtype=mean.dtype)
        std = self.nonlinearity(log_var)
        scores = self._per_example(mean) + self._per_example(std) * eps
        return self._relax(self._flatten(scores))
