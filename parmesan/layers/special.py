"""Small layers that other layers and models build on: picking one output
of a list-valued layer, slicing with unknown sizes, clipping, and zeros of
the input's shape."""
import numbers
from collections import OrderedDict

import lasagne.layers
import theano.tensor as T
from lasagne.layers import Layer

__all__ = ['ListIndexLayer', 'SliceLayer', 'ClipLayer', 'ZerosLikeLayer',
           'list_output_shapes']


def describe_layer(layer):
    """'ClassName' or 'ClassName "name"', for error messages."""
    if layer.name is None:
        return type(layer).__name__
    return '%s "%s"' % (type(layer).__name__, layer.name)


def _is_shape_list(shapes):
    return isinstance(shapes, (list, tuple)) and len(shapes) > 0 and \
        all(isinstance(shape, (list, tuple)) for shape in shapes)


def list_output_shapes(incoming):
    """The shapes of the elements of a list-valued layer's output.

    Parameters
    ----------
    incoming : Layer or list of shapes

    Returns
    -------
    list of shape tuples, or None where they are not known: a layer that
    declares them (``get_output_shapes_for``, as Parmesan's flow layers and
    ``NormalizeLayer(return_stats=True)`` do) or reports a list of shapes
    as its ``output_shape`` gives them; any other layer gives None.

    Example
    -------
    >>> from lasagne.layers import InputLayer
    >>> from parmesan.layers import NormalizingPlanarFlowLayer
    >>> list_output_shapes(NormalizingPlanarFlowLayer(InputLayer((None, 3))))
    [(None, 3), (None,)]
    """
    if not isinstance(incoming, Layer):
        return list(incoming) if _is_shape_list(incoming) else None
    if hasattr(incoming, 'get_output_shapes_for'):
        input_shapes = getattr(incoming, 'input_shapes', None)
        if input_shapes is None:
            input_shapes = incoming.input_shape
        return incoming.get_output_shapes_for(input_shapes)
    shapes = incoming.output_shape
    return list(shapes) if _is_shape_list(shapes) else None


class ListIndexLayer(Layer):
    """Pick one output of a layer whose output is a list.

    Flow layers return ``[f_z, logdet]``; ``ListIndexLayer(l_flow, 0)`` is
    the transformed sample and ``ListIndexLayer(l_flow, 1)`` the log
    determinant. Any layer whose ``get_output_for`` returns a list will do,
    as in the original Parmesan. The output shape is the shape of the
    chosen element where the incoming layer declares it (see
    :func:`list_output_shapes`; the original reported the incoming shape
    for every index, e.g. ``(None, D)`` for a flow's logdet of shape
    ``(None,)``), else the incoming layer's output shape, as the original.

    Parameters
    ----------
    incoming : a :class:`lasagne.layers.Layer` instance or a list of shapes
        A list-valued layer, or the list of its element shapes.
    index : int
        Which element to pick; negative values count from the end as in
        Python.
    **kwargs
        Passed on like :class:`lasagne.layers.Layer` does (only ``name``).

    Returns
    -------
    Theano expression (from :meth:`get_output_for`)
        Element ``index`` of the incoming list.

    Raises
    ------
    ValueError
        If `index` is out of range for a layer of known element count, or
        (from :meth:`get_output_for`) the incoming output is not a list.
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
        if isinstance(index, bool) or not isinstance(index,
                                                     numbers.Integral):
            raise TypeError('%s: index must be an int, got %r'
                            % (describe_layer(self), index))
        self.index = int(index)
        self.element_shapes = list_output_shapes(incoming)
        if self.element_shapes is not None:
            self._check_index(len(self.element_shapes))

    def _check_index(self, num_outputs):
        if not -num_outputs <= self.index < num_outputs:
            raise ValueError('%s: index %d is out of range for an incoming '
                             'layer with %d outputs'
                             % (describe_layer(self), self.index,
                                num_outputs))

    def get_output_shape_for(self, input_shape):
        if self.element_shapes is not None:
            return tuple(self.element_shapes[self.index])
        return input_shape

    def get_output_for(self, input, **kwargs):
        if not isinstance(input, (list, tuple)):
            raise ValueError(
                '%s needs an incoming layer whose output is a list (such as '
                'a flow layer\'s [z, logdet]); %s gives a single %s'
                % (describe_layer(self), 'its input' if self.input_layer is
                   None else describe_layer(self.input_layer), input.type))
        self._check_index(len(input))
        return input[self.index]


class SliceLayer(lasagne.layers.SliceLayer):
    """Lasagne's SliceLayer, with unknown sizes allowed along the axis.

    Lasagne 0.1 computes the output shape with ``slice.indices(size)``,
    which fails for an unknown size such as the batch axis of
    ``InputLayer((None, 784))``; its development version (which the
    original Parmesan's ladder example needed) reports None there. This
    layer does the same.

    Parameters
    ----------
    incoming : Layer or tuple
    indices : int or slice
        An int picks one element and drops the axis; a slice keeps it.
    axis : int
        The axis to slice, negative counting from the end.

    Example
    -------
    >>> from lasagne.layers import InputLayer
    >>> SliceLayer(InputLayer((None, 784)), slice(100, None), axis=0
    ...            ).output_shape
    (None, 784)
    """

    def __init__(self, incoming, indices, axis=-1, **kwargs):
        super(SliceLayer, self).__init__(incoming, indices, axis, **kwargs)
        ndim = len(self.input_shape)
        if not -ndim <= axis < ndim:
            raise ValueError('%s: axis %d is out of range for an input of '
                             'shape %s' % (describe_layer(self), axis,
                                           self.input_shape))
        if not isinstance(indices, (slice, numbers.Integral)) or \
                isinstance(indices, bool):
            raise TypeError('%s: indices must be an int or a slice, got %r'
                            % (describe_layer(self), indices))

    def get_output_shape_for(self, input_shape):
        output_shape = list(input_shape)
        size = input_shape[self.axis]
        if isinstance(self.slice, slice):
            output_shape[self.axis] = None if size is None else len(
                range(*self.slice.indices(size)))
        else:
            del output_shape[self.axis]
        return tuple(output_shape)


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
