"""Initialisers that Lasagne 0.1 lacks."""
import numpy as np
import lasagne

__all__ = ['FanInNormal']


class FanInNormal(lasagne.init.Initializer):
    """Weights drawn from N(0, 1) / sqrt(fan_in), the ladder network's
    initialisation (Rasmus et al. 2015).

    Draws from Lasagne's random generator, so ``lasagne.random.set_rng``
    makes it reproducible.

    Returns
    -------
    An initialiser; ``sample(shape)`` returns a floatX array of `shape`
    whose first axis is the fan-in.

    Example
    -------
    >>> W = FanInNormal().sample((400, 10))
    >>> W.shape, bool(abs(W.std() * 20 - 1) < 0.1)
    ((400, 10), True)
    """

    def sample(self, shape):
        weights = lasagne.random.get_rng().normal(0., 1., shape)
        return lasagne.utils.floatX(weights / np.sqrt(shape[0]))
