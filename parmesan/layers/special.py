"""Small layers that other layers and models build on: picking one output
of a list-valued layer, clipping, and zeros of the input's shape."""
import numbers
from collections import OrderedDict

import theano.tensor as T
from lasagne.layers import Layer

__all__ = ['ListIndexLayer', 'ClipLayer', 'ZerosLikeLayer']


def describe_layer(layer):
    """'ClassName' or 'ClassName "name"', for error messages."""
    if layer.name is None:
        return type(layer).__name__
    return '%s "%s"' % (type(layer).__name__, layer.name)


class ListIndexLayer(Layer):
    """Pick one output of a layer whose output is a list.

    Flow layers return ``[f_z, logdet]``; ``ListIndexLayer(l_flow, 0)`` is
    the transformed sample and ``ListIndexLayer(l_flow, 1)`` the log
    determinant. Unlike the original Parmesan layer, the output shape is the
    shape of the chosen element.

    Parameters
    ----------
    incoming : a :class:`lasagne.layers.Layer` instance or a list of shapes
        A layer whose output shape is a list (or tuple) of shapes, or that
        list of shapes itself.
    index : int
        Which element to pick; negative values count from the end as in
        Python.
    **kwargs
        Passed on like :class:`lasagne.layers.Layer` does (only ``name``).

    Returns
    -------
    Theano expression (from :meth:`get_output_for`)
        Element ``index`` of the incoming list, with output shape
        ``incoming.output_shape[index]``.

    Raises
    ------
    ValueError
        If the incoming output shape is not a list of shapes, or `index` is
        out of range.
    TypeError
        If `index` is not an integer.

    Example
    -------
    >>> from lasagne.layers import InputLayer
    >>> from parmesan.layers import NormalizingPlanarFlowLayer
    >>> l_flow = NormalizingPlanarFlowLayer(InputLayer((None, 3)))
    >>> ListIndexLayer(l_flow, -1).output_shape
    (None,)
    """

    def __init__(self, incoming, index, name=None):
        # Layer.__init__ checks every entry of the input shape with `d <= 0`,
        # which on Python 3 raises TypeError for a list of shapes; so this
        # constructor sets up what the base one would.
        if isinstance(incoming, Layer):
            self.input_layer = incoming
            self.input_shape = incoming.output_shape
        else:
            self.input_layer = None
            self.input_shape = incoming
        self.name = name
        self.params = OrderedDict()

        shapes = self.input_shape
        if not (isinstance(shapes, (list, tuple)) and len(shapes) > 0 and
                all(isinstance(shape, (list, tuple)) for shape in shapes)):
            raise ValueError('%s needs an incoming layer whose output shape '
                             'is a list of shapes (such as a flow layer\'s '
                             '[z, logdet]), got output shape %r%s'
                             % (describe_layer(self), shapes,
                                '' if self.input_layer is None else
                                ' from %s' % describe_layer(self.input_layer)))
        if isinstance(index, bool) or not isinstance(index,
                                                     numbers.Integral):
            raise TypeError('%s: index must be an int, got %r'
                            % (describe_layer(self), index))
        num_outputs = len(shapes)
        if not -num_outputs <= index < num_outputs:
            raise ValueError('%s: index %d is out of range for an incoming '
                             'layer with %d outputs'
                             % (describe_layer(self), index, num_outputs))
        self.index = int(index)

    def get_output_shape_for(self, input_shapes):
        return input_shapes[self.index]

    def get_output_for(self, input, **kwargs):
        return input[self.index]


class ClipLayer(Layer):
    """Clip the input to [-bound, bound], e.g. the logits of a categorical
    distribution so that its log-probabilities and relaxed samples stay
    finite (vae_ssl clips those of q(y|x) to +-5).

    Parameters
    ----------
    incoming : Layer
    bound : float or None
        None passes the input through.

    Examples
    --------
    >>> from lasagne.layers import InputLayer, get_output
    >>> from lasagne.utils import floatX
    >>> from parmesan.layers import ClipLayer
    >>> l_logits = ClipLayer(InputLayer((None, 3)), 5.0)
    >>> get_output(l_logits, floatX([[-9, 1, 9]])).eval().tolist()
    [[-5.0, 1.0, 5.0]]
    """

    def __init__(self, incoming, bound, **kwargs):
        super(ClipLayer, self).__init__(incoming, **kwargs)
        if bound is not None and not bound > 0:
            raise ValueError('ClipLayer: bound must be positive or None, got '
                             '%r' % (bound,))
        self.bound = bound

    def get_output_for(self, input, **kwargs):
        if self.bound is None:
            return input
        return T.clip(input, -self.bound, self.bound)


class ZerosLikeLayer(Layer):
    """Zeros of the input's shape, e.g. the log-variance 0 of a
    unit-variance sample layer that shares its mean's shape.

    Example
    -------
    >>> import numpy as np
    >>> from lasagne.layers import InputLayer, get_output
    >>> l_zeros = ZerosLikeLayer(InputLayer((None, 3)))
    >>> get_output(l_zeros, np.ones((2, 3), 'float32')).eval()
    array([[0., 0., 0.],
           [0., 0., 0.]], dtype=float32)
    """

    def get_output_for(self, input, **kwargs):
        return T.zeros_like(input)
