"""Noise that corrupts only the training pass.

Lasagne's GaussianNoiseLayer and DropoutLayer switch off only with
``deterministic=True``, which also switches batch normalisation to its
stored statistics. A ladder network needs a clean encoder pass that still
normalises with batch statistics, and collecting batch-norm statistics for
evaluation needs the inputs the network sees at evaluation, i.e. without
noise. The layers here therefore pass their input through unchanged when
``get_output`` is called with any of ``deterministic=True``, ``clean=True``
(the ladder's clean path) or ``collect=True``
(:class:`~parmesan.layers.NormalizeLayer`'s statistics collection).
"""
from lasagne.layers import Layer
from theano.sandbox.rng_mrg import MRG_RandomStreams

from .sample import draw_seed

__all__ = ['GaussianCorruptionLayer', 'DropoutCorruptionLayer']


class _CorruptionLayer(Layer):
    """Owns the noise stream; subclasses implement :meth:`corrupt`."""

    def __init__(self, incoming, seed=None, **kwargs):
        super(_CorruptionLayer, self).__init__(incoming, **kwargs)
        self._srng = MRG_RandomStreams(draw_seed(seed))

    def get_output_for(self, input, deterministic=False, clean=False,
                       collect=False, **kwargs):
        if deterministic or clean or collect or self.is_identity():
            return input
        return self.corrupt(input)


class GaussianCorruptionLayer(_CorruptionLayer):
    """Adds N(0, std**2) noise in the training pass.

    Parameters
    ----------
    incoming : Layer
    std : float
        Standard deviation of the noise; 0 adds none.
    seed : int, optional
        Seed of the noise stream; by default drawn from Lasagne's random
        generator.

    Returns
    -------
    A layer with the shape of its input.

    Examples
    --------
    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import GaussianCorruptionLayer
    >>> l_noisy = GaussianCorruptionLayer(InputLayer((None, 784)), 0.3)
    >>> x = floatX(np.ones((100, 784)))
    >>> round(float(get_output(l_noisy, x).eval().std()), 2)
    0.3
    >>> bool((get_output(l_noisy, x, clean=True).eval() == x).all())
    True
    """

    def __init__(self, incoming, std, seed=None, **kwargs):
        super(GaussianCorruptionLayer, self).__init__(incoming, seed,
                                                      **kwargs)
        if not std >= 0:
            raise ValueError('GaussianCorruptionLayer: std must be >= 0, got '
                             '%r' % (std,))
        self.std = std

    def is_identity(self):
        return self.std == 0

    def corrupt(self, input):
        return input + self._srng.normal(input.shape, avg=0., std=self.std,
                                         dtype=input.dtype)


class DropoutCorruptionLayer(_CorruptionLayer):
    """Inverted dropout in the training pass: each unit is zeroed with
    probability `p`, the kept ones are scaled by 1 / (1 - p).

    Parameters
    ----------
    incoming : Layer
    p : float in [0, 1)
        Probability of dropping a unit; 0 drops none.
    seed : int, optional
        Seed of the mask stream; by default drawn from Lasagne's random
        generator.

    Returns
    -------
    A layer with the shape of its input.

    Examples
    --------
    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import DropoutCorruptionLayer
    >>> l_drop = DropoutCorruptionLayer(InputLayer((None, 784)), p=0.25)
    >>> x = floatX(np.ones((100, 784)))
    >>> round(float((get_output(l_drop, x).eval() == 0).mean()), 2)
    0.25
    >>> bool((get_output(l_drop, x, deterministic=True).eval() == x).all())
    True
    """

    def __init__(self, incoming, p=0.5, seed=None, **kwargs):
        super(DropoutCorruptionLayer, self).__init__(incoming, seed, **kwargs)
        if not 0 <= p < 1:
            raise ValueError('DropoutCorruptionLayer: p must be in [0, 1), '
                             'got %r' % (p,))
        self.p = p

    def is_identity(self):
        return self.p == 0

    def corrupt(self, input):
        retain = 1.0 - self.p
        mask = self._srng.binomial(input.shape, p=retain, dtype=input.dtype)
        return input * mask / retain
