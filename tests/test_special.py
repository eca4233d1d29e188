"""The small layers: ListIndexLayer, SliceLayer, ClipLayer and
ZerosLikeLayer."""
import numpy as np
import pytest
import theano
import theano.tensor as T
from lasagne.layers import InputLayer, get_output

import lasagne
from lasagne.layers import Layer

from parmesan.layers import (ClipLayer, ListIndexLayer, NormalizeLayer,
                             NormalizingPlanarFlowLayer, SliceLayer,
                             ZerosLikeLayer)
from conftest import floatx


def test_list_index_layer_shapes_and_errors():
    l_flow = NormalizingPlanarFlowLayer(InputLayer((None, 2)), name='planar')
    assert l_flow.output_shape == (None, 2)  # as the original reported it
    assert ListIndexLayer(l_flow, 0).output_shape == (None, 2)
    assert ListIndexLayer(l_flow, 1).output_shape == (None,)
    assert ListIndexLayer(l_flow, -2).output_shape == (None, 2)
    assert ListIndexLayer(l_flow, np.int64(1)).output_shape == (None,)
    assert ListIndexLayer([(7, 2), (7,)], -1).output_shape == (7,)

    for index in (2, -3):
        with pytest.raises(ValueError) as error:
            ListIndexLayer(l_flow, index)
        assert 'index %d' % index in str(error.value)
        assert '2 outputs' in str(error.value)
    l_single = ListIndexLayer(InputLayer((None, 2)), 0)
    with pytest.raises(ValueError, match='single') as error:
        get_output(l_single, T.matrix())
    assert 'InputLayer' in str(error.value)
    with pytest.raises(TypeError):
        ListIndexLayer(l_flow, 0.5)


def test_list_index_layer_picks_the_element_of_the_list():
    x = T.matrix('x')
    l_flow = NormalizingPlanarFlowLayer(InputLayer((None, 2), x))
    f_z, logdet = get_output(l_flow)
    picked = get_output([ListIndexLayer(l_flow, 0), ListIndexLayer(l_flow, 1)])
    value = floatx(np.random.RandomState(0).normal(size=(4, 2)))
    outputs = theano.function([x], [f_z, logdet] + picked)(value)
    np.testing.assert_array_equal(outputs[2], outputs[0])
    np.testing.assert_array_equal(outputs[3], outputs[1])


class UsersListLayer(Layer):
    """A user's list-valued layer written against the original Parmesan:
    it overrides get_output_for only, so its output_shape is its input's."""

    def get_output_for(self, input, **kwargs):
        return [2 * input, input + 1]


def test_list_index_layer_accepts_a_list_valued_layer_with_tuple_shape():
    x = T.matrix('x')
    l_list = UsersListLayer(InputLayer((None, 3), x))
    l_second = ListIndexLayer(l_list, 1)
    assert l_second.output_shape == (None, 3)  # the original's report
    value = np.random.RandomState(2).randn(4, 3)
    np.testing.assert_allclose(theano.function(
        [x], get_output(l_second))(floatx(value)), value + 1)
    with pytest.raises(ValueError, match='index 2 is out of range'):
        get_output(ListIndexLayer(l_list, 2), x)


def test_list_index_layer_on_normalize_statistics_reports_their_shape():
    l_norm = NormalizeLayer(InputLayer((None, 3)), return_stats=True)
    assert l_norm.output_shape == (None, 3)
    assert ListIndexLayer(l_norm, 1).output_shape == (1, 3)
    with pytest.raises(ValueError, match='index 3'):
        ListIndexLayer(l_norm, 3)


def test_slice_layer_keeps_an_unknown_batch_size():
    x = T.matrix('x')
    l_in = InputLayer((None, 4), x)
    # Lasagne 0.1's own SliceLayer cannot give this shape.
    with pytest.raises(TypeError):
        lasagne.layers.SliceLayer(l_in, slice(3, None), axis=0).output_shape
    l_unlabelled = SliceLayer(l_in, slice(3, None), axis=0)
    assert l_unlabelled.output_shape == (None, 4)
    assert SliceLayer(InputLayer((10, 4)), slice(3, None), axis=0
                      ).output_shape == (7, 4)
    assert SliceLayer(l_in, 1).output_shape == (None,)
    assert SliceLayer(l_in, slice(-2, None)).output_shape == (None, 2)
    value = np.arange(24.).reshape(6, 4)
    rows, column = theano.function([x], get_output(
        [l_unlabelled, SliceLayer(l_in, 1)]))(floatx(value))
    np.testing.assert_array_equal(rows, value[3:])
    np.testing.assert_array_equal(column, value[:, 1])
    with pytest.raises(ValueError, match='axis 2'):
        SliceLayer(l_in, 0, axis=2)
    with pytest.raises(TypeError, match='indices'):
        SliceLayer(l_in, [0, 1])


def test_clip_layer_matches_numpy_and_none_passes_through():
    x = T.matrix('x')
    value = floatx(np.random.RandomState(1).normal(scale=10, size=(5, 4)))
    l_in = InputLayer((None, 4), x)
    clipped = theano.function([x], get_output(ClipLayer(l_in, 5.0)))(value)
    np.testing.assert_array_equal(clipped, np.clip(value, -5.0, 5.0))
    assert np.abs(value).max() > 5.0
    passed = theano.function([x], get_output(ClipLayer(l_in, None)))(value)
    np.testing.assert_array_equal(passed, value)
    for bound in (0, -1.0):
        with pytest.raises(ValueError, match='bound'):
            ClipLayer(l_in, bound)


def test_zeros_like_layer_has_the_shape_and_dtype_of_its_input():
    x = T.tensor3('x')
    l_zeros = ZerosLikeLayer(InputLayer((None, 2, 3), x))
    assert l_zeros.output_shape == (None, 2, 3)
    value = floatx(np.ones((4, 2, 3)))
    zeros = theano.function([x], get_output(l_zeros))(value)
    assert zeros.dtype == value.dtype
    np.testing.assert_array_equal(zeros, np.zeros((4, 2, 3)))
