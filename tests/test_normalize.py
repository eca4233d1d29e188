"""NormalizeLayer and ScaleAndShiftLayer against numpy."""
import numpy as np
import pytest
import theano
import theano.tensor as T
from lasagne.layers import InputLayer, get_output

from parmesan.layers import (ListIndexLayer, NormalizeLayer,
                             ScaleAndShiftLayer)
from conftest import RTOL, floatx

rng = np.random.RandomState(2024)
DATA = rng.randn(60, 4) * [1., 2., 3., 4.] + [0., 5., -5., 10.]


def numpy_normalize(x, mean, var, epsilon, axes=0):
    return (x - mean) / np.sqrt(var + epsilon)


def compile_layer(layer, x, **kwargs):
    return theano.function([x], get_output(layer, x, **kwargs))


def test_training_output_uses_batch_statistics():
    x = T.matrix()
    layer = NormalizeLayer(InputLayer((None, 4)), epsilon=1e-4)
    out = compile_layer(layer, x)(floatx(DATA))
    np.testing.assert_allclose(
        out, numpy_normalize(DATA, DATA.mean(0), DATA.var(0), 1e-4),
        rtol=RTOL * 10, atol=1e-7)


def test_stat_indices_take_statistics_from_a_subset_of_rows():
    x = T.matrix()
    rows = np.arange(10, 60)
    layer = NormalizeLayer(InputLayer((None, 4)), stat_indices=rows)
    out = compile_layer(layer, x)(floatx(DATA))
    subset = DATA[rows]
    np.testing.assert_allclose(
        out, numpy_normalize(DATA, subset.mean(0), subset.var(0), 1e-10),
        rtol=RTOL * 10, atol=1e-7)


def collect_in_batches(layer, batches):
    x = T.matrix()
    collect = compile_layer(layer, x, collect=True)
    for batch in batches:
        collect(floatx(batch))
    return (layer.mean.get_value(), layer.var.get_value(),
            compile_layer(layer, x, deterministic=True))


def test_single_pass_collection_stores_the_whole_set_statistics():
    layer = NormalizeLayer(InputLayer((None, 4)), alpha='single_pass')
    mean, var, deterministic = collect_in_batches(layer, [DATA[:20], DATA])
    np.testing.assert_allclose(mean, DATA.mean(0), rtol=RTOL)
    np.testing.assert_allclose(var, DATA.var(0), rtol=RTOL)
    np.testing.assert_allclose(
        deterministic(floatx(DATA[:5])),
        numpy_normalize(DATA[:5], DATA.mean(0), DATA.var(0), 1e-10),
        rtol=RTOL * 10)


@pytest.mark.parametrize('split', [[15, 30, 45], [7, 8, 50]])
def test_running_average_over_batches_equals_whole_set_statistics(split):
    layer = NormalizeLayer(InputLayer((None, 4)), alpha='running_average')
    collect_in_batches(layer, [rng.randn(15, 4) * 100])  # stale statistics
    layer.reset_stats()
    mean, var, _ = collect_in_batches(layer, np.split(DATA, split))
    np.testing.assert_allclose(mean, DATA.mean(0), rtol=RTOL)
    np.testing.assert_allclose(var, DATA.var(0), rtol=RTOL * 10)
    assert layer.num_collected.get_value() == len(DATA)


def test_exponential_moving_average_with_float_alpha():
    layer = NormalizeLayer(InputLayer((None, 4)), alpha=0.3)
    batches = np.split(DATA, 3)
    mean, var, _ = collect_in_batches(layer, batches)
    expected_mean, expected_var = np.zeros(4), np.ones(4)
    for batch in batches:
        expected_mean = 0.7 * expected_mean + 0.3 * batch.mean(0)
        expected_var = 0.7 * expected_var + 0.3 * batch.var(0)
    np.testing.assert_allclose(mean, expected_mean, rtol=RTOL)
    np.testing.assert_allclose(var, expected_var, rtol=RTOL)


def test_convolutional_input_and_returned_statistics():
    images = rng.randn(6, 3, 4, 5) + np.arange(3)[None, :, None, None]
    x = T.tensor4()
    layer = NormalizeLayer(InputLayer((None, 3, 4, 5)), return_stats=True)
    assert layer.output_shape == [(None, 3, 4, 5), (3,), (3,)]
    normalized = ListIndexLayer(layer, 0)
    mean_layer, var_layer = ListIndexLayer(layer, 1), ListIndexLayer(layer, 2)
    out, mean, var = theano.function([x], get_output(
        [normalized, mean_layer, var_layer], x))(floatx(images))
    axes = (0, 2, 3)
    np.testing.assert_allclose(mean, images.mean(axes), rtol=RTOL)
    np.testing.assert_allclose(var, images.var(axes), rtol=RTOL)
    np.testing.assert_allclose(
        out, (images - images.mean(axes, keepdims=True)) /
        np.sqrt(images.var(axes, keepdims=True) + 1e-10), rtol=RTOL * 10)


def test_scale_and_shift_matches_numpy_and_tags_parameters():
    x = T.tensor4()
    beta, gamma = rng.randn(3), rng.randn(3)
    layer = ScaleAndShiftLayer(InputLayer((None, 3, 2, 2)), beta=floatx(beta),
                               gamma=floatx(gamma))
    images = rng.randn(2, 3, 2, 2)
    np.testing.assert_allclose(
        compile_layer(layer, x)(floatx(images)),
        images * gamma[None, :, None, None] + beta[None, :, None, None],
        rtol=RTOL)
    assert layer.get_params(regularizable=True) == [layer.gamma]
    assert set(layer.get_params(trainable=True)) == {layer.beta, layer.gamma}
    no_shift = ScaleAndShiftLayer(InputLayer((None, 3)), beta=None)
    assert no_shift.get_params() == [no_shift.gamma]


def test_statistics_are_not_trainable():
    layer = NormalizeLayer(InputLayer((None, 4)))
    assert layer.get_params(trainable=True) == []
    assert len(layer.get_params()) == 3


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown alpha mode 'single'"):
        NormalizeLayer(InputLayer((None, 4)), alpha='single')
    with pytest.raises(ValueError, match='alpha'):
        NormalizeLayer(InputLayer((None, 4)), alpha=1.5)
    with pytest.raises(ValueError, match='epsilon'):
        NormalizeLayer(InputLayer((None, 4)), epsilon=-1)
    with pytest.raises(ValueError, match='sizes of the axes'):
        NormalizeLayer(InputLayer((None, None)))
