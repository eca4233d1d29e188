"""The small layers: ListIndexLayer, ClipLayer and ZerosLikeLayer."""
import numpy as np
import pytest
import theano
import theano.tensor as T
from lasagne.layers import InputLayer, get_output

from parmesan.layers import (ClipLayer, ListIndexLayer,
                             NormalizingPlanarFlowLayer, ZerosLikeLayer)
from conftest import floatx


def test_list_index_layer_shapes_and_errors():
    l_flow = NormalizingPlanarFlowLayer(InputLayer((None, 2)), name='planar')
    assert l_flow.output_shape == [(None, 2), (None,)]
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
    with pytest.raises(ValueError, match=r'\(None, 2\)') as error:
        ListIndexLayer(InputLayer((None, 2)), 0)
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
