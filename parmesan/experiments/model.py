"""The interface the trainers' model classes share."""
from lasagne.layers import get_all_layers, get_all_params

from ..layers import NormalizeLayer

__all__ = ['ExperimentModel']


class ExperimentModel(object):
    """A model of one of the papers, built from Parmesan and Lasagne layers.

    Every model class of :mod:`parmesan.experiments` is built by its
    constructor and then offers the same four things:

    * ``params(**tags)``: its parameters (Lasagne tags, e.g.
      ``trainable=True``);
    * ``normalize_layers()``: its NormalizeLayers, whose statistics
      evaluation collects first;
    * ``compile_train(learning_rate, ...)`` -> ``(function, names)``: one
      optimiser step, returning the monitored numbers named by `names`;
    * ``compile_evaluation()`` -> dict of compiled functions, with
      ``'collect'`` (when the model normalises) filling the stored
      batch-norm statistics.

    Subclasses set :attr:`output_layers`, the top layers of every stack.
    """

    #: The layers whose ancestors are the whole model.
    output_layers = ()

    def params(self, **tags):
        """The parameters of every layer (e.g. ``trainable=True``)."""
        return get_all_params(list(self.output_layers), **tags)

    def normalize_layers(self):
        """The NormalizeLayers, whose statistics evaluation needs."""
        return [layer for layer in get_all_layers(list(self.output_layers))
                if isinstance(layer, NormalizeLayer)]

    def compile_train(self, learning_rate, **settings):
        raise NotImplementedError

    def compile_evaluation(self):
        raise NotImplementedError
