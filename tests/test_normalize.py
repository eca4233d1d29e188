"""NormalizeLayer, ScaleAndShiftLayer and batch_norm against numpy."""
import lasagne
import numpy as np
import pytest
import scipy.stats
import theano
import theano.tensor as T
from lasagne.layers import (DenseLayer, InputLayer, NonlinearityLayer,
                            get_output)

from parmesan.layers import (ListIndexLayer, NormalizeLayer,
                             ScaleAndShiftLayer, batch_norm)
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
    # The original Parmesan's (1, D) statistics.
    return (layer.mean.get_value()[0], layer.var.get_value()[0],
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
    # As the original reported it; the element shapes on demand.
    assert layer.output_shape == (None, 3, 4, 5)
    assert layer.get_output_shapes_for(layer.input_shape) == [
        (None, 3, 4, 5), (1, 3, 1, 1), (1, 3, 1, 1)]
    normalized = ListIndexLayer(layer, 0)
    mean_layer, var_layer = ListIndexLayer(layer, 1), ListIndexLayer(layer, 2)
    out, mean, var = theano.function([x], get_output(
        [normalized, mean_layer, var_layer], x))(floatx(images))
    axes = (0, 2, 3)
    np.testing.assert_allclose(mean, images.mean(axes, keepdims=True),
                               rtol=RTOL)
    np.testing.assert_allclose(var, images.var(axes, keepdims=True),
                               rtol=RTOL)
    np.testing.assert_allclose(
        out, (images - images.mean(axes, keepdims=True)) /
        np.sqrt(images.var(axes, keepdims=True) + 1e-10), rtol=RTOL * 10)


def test_scale_and_shift_matches_numpy_and_tags_parameters():
    x = T.tensor4()
    beta, gamma = rng.randn(1, 3, 1, 1), rng.randn(1, 3, 1, 1)
    layer = ScaleAndShiftLayer(InputLayer((None, 3, 2, 2)), beta=floatx(beta),
                               gamma=floatx(gamma))
    images = rng.randn(2, 3, 2, 2)
    np.testing.assert_allclose(
        compile_layer(layer, x)(floatx(images)),
        images * gamma + beta,
        rtol=RTOL)
    assert layer.get_params(regularizable=True) == [layer.gamma]
    assert set(layer.get_params(trainable=True)) == {layer.beta, layer.gamma}
    no_shift = ScaleAndShiftLayer(InputLayer((None, 3)), beta=None)
    assert no_shift.get_params() == [no_shift.gamma]


def test_statistics_are_not_trainable():
    layer = NormalizeLayer(InputLayer((None, 4)))
    assert layer.get_params(trainable=True) == []
    assert layer.get_params() == [layer.mean, layer.var]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown alpha mode 'single'"):
        NormalizeLayer(InputLayer((None, 4)), alpha='single')
    with pytest.raises(ValueError, match='alpha'):
        NormalizeLayer(InputLayer((None, 4)), alpha=1.5)
    with pytest.raises(ValueError, match='epsilon'):
        NormalizeLayer(InputLayer((None, 4)), epsilon=-1)
    with pytest.raises(ValueError, match='sizes of the axes'):
        NormalizeLayer(InputLayer((None, None)))


def numpy_stack(x, weights, gammas, betas, stats=None):
    """Dense -> normalise -> scale and shift -> tanh, layer by layer, in
    float64; with `stats` None each layer uses the exact statistics of its
    own input. Returns the output and each layer's (mean, var)."""
    used = []
    for depth, (W, gamma, beta) in enumerate(zip(weights, gammas, betas)):
        pre = x.dot(W)
        mean, var = (pre.mean(0), pre.var(0)) if stats is None else \
            stats[depth]
        used.append((mean, var))
        x = np.tanh((pre - mean) / np.sqrt(var + 1e-10) * gamma + beta)
    return x, used


def build_stack(x, widths, seed):
    r = np.random.RandomState(seed)
    layer = InputLayer((None, widths[0]), x)
    weights, gammas, betas, normalizers = [], [], [], []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        weights.append(r.randn(n_in, n_out) * 2)
        gammas.append(r.rand(n_out) + 0.5)
        betas.append(r.randn(n_out))
        layer = DenseLayer(layer, n_out, W=floatx(weights[-1]), b=None,
                           nonlinearity=None)
        layer = normalizers.append(NormalizeLayer(layer)) or normalizers[-1]
        layer = ScaleAndShiftLayer(layer, beta=floatx(betas[-1][None]),
                                   gamma=floatx(gammas[-1][None]))
        layer = NonlinearityLayer(layer, T.tanh)
    return layer, normalizers, (weights, gammas, betas)


@pytest.mark.parametrize('deterministic', [True, False])
def test_one_collect_pass_gives_every_layer_of_a_deep_stack_exact_stats(
        deterministic):
    # The original Parmesan's idiom: one function compiled from
    # get_output(..., deterministic=True, collect=True), called once.
    x = T.matrix('x')
    l_out, normalizers, params = build_stack(x, [5, 8, 7, 6, 4, 3], seed=4)
    data = np.random.RandomState(5).randn(40, 5) * 3 + 1
    collect = theano.function([x], get_output(
        l_out, deterministic=deterministic, collect=True))
    collect(floatx(data))
    _, exact = numpy_stack(data, *params)
    for depth, (layer, (mean, var)) in enumerate(zip(normalizers, exact)):
        np.testing.assert_allclose(layer.mean.get_value()[0], mean,
                                   rtol=RTOL * 10, atol=1e-7,
                                   err_msg='mean of layer %d' % depth)
        np.testing.assert_allclose(layer.var.get_value()[0], var,
                                   rtol=RTOL * 10, err_msg='layer %d' % depth)
    evaluate = theano.function([x], get_output(l_out, deterministic=True))
    test = np.random.RandomState(6).randn(7, 5)
    np.testing.assert_allclose(evaluate(floatx(test)),
                               numpy_stack(test, *params, stats=exact)[0],
                               rtol=RTOL * 100, atol=1e-6)


def test_deterministic_pass_refuses_statistics_never_collected():
    x = T.matrix('x')
    layer = NormalizeLayer(InputLayer((None, 4), x), name='enc_bn1')
    evaluate = theano.function([x], get_output(layer, deterministic=True))
    with pytest.raises(AssertionError, match='NormalizeLayer "enc_bn1".*'
                       'before its statistics were collected'):
        evaluate(floatx(DATA[:3]))
    # Values set as saved by a model (here (1, D), as the original saves
    # them) count as collected...
    mean, var = DATA.mean(0, keepdims=True), DATA.var(0, keepdims=True)
    lasagne.layers.set_all_param_values(layer, [floatx(mean), floatx(var)])
    np.testing.assert_allclose(
        evaluate(floatx(DATA[:3])),
        numpy_normalize(DATA[:3], mean, var, 1e-10), rtol=RTOL * 10)
    # ... and so does a collection, even one that stores mean 0, var 1.
    fresh = NormalizeLayer(InputLayer((None, 2), x), epsilon=0.)
    standard = floatx([[-1., 1.], [1., -1.]])
    theano.function([x], get_output(fresh, collect=True))(standard)
    np.testing.assert_array_equal(theano.function(
        [x], get_output(fresh, deterministic=True))(standard), standard)


def test_original_parameter_layout_loads_and_evaluates_like_numpy():
    # Dense -> Normalize -> ScaleAndShift as in the original iw_vae.py with
    # -batch_norm true; the values are laid out as the original saves
    # lasagne.layers.get_all_param_values: W (in, out), b (out,), then
    # mean, var, beta, gamma, each (1, out).
    x = T.matrix('x')
    l_h = DenseLayer(InputLayer((None, 4), x), 3, nonlinearity=None)
    l_h = ScaleAndShiftLayer(NormalizeLayer(l_h))
    r = np.random.RandomState(9)
    W, b = r.randn(4, 3), r.randn(3)
    mean, var, beta, gamma = (r.randn(1, 3), r.rand(1, 3) + 0.1,
                              r.randn(1, 3), r.randn(1, 3))
    saved = [W, b, mean, var, beta, gamma]
    lasagne.layers.set_all_param_values(l_h, [floatx(v) for v in saved])
    assert [p.name for p in lasagne.layers.get_all_params(l_h)] == [
        'W', 'b', 'mean', 'var', 'beta', 'gamma']
    data = r.randn(5, 4)
    expected = (data.dot(W) + b - mean) / np.sqrt(var + 1e-10) * gamma + beta
    np.testing.assert_allclose(theano.function([x], get_output(
        l_h, deterministic=True))(floatx(data)), expected, rtol=RTOL * 10)


def test_batch_norm_convenience_moves_nonlinearity_and_drops_bias():
    x = T.matrix('x')
    l_dense = DenseLayer(InputLayer((None, 4), x), 3, name='h',
                         nonlinearity=lasagne.nonlinearities.rectify)
    W = l_dense.W.get_value().astype(np.float64)
    l_out = batch_norm(l_dense, epsilon=1e-4)
    assert isinstance(l_out, NonlinearityLayer) and l_out.name == 'h_bn_nonlin'
    assert l_dense.b is None and l_dense.nonlinearity(-2.) == -2.
    assert [(p.name, p.get_value().shape) for p in
            lasagne.layers.get_all_params(l_out)] == [
        ('h.W', (4, 3)), ('h_bn.mean', (1, 3)), ('h_bn.var', (1, 3)),
        ('h_bn_scale.beta', (1, 3)), ('h_bn_scale.gamma', (1, 3))]
    pre = DATA[:, :4].dot(W)
    expected = np.maximum(0, (pre - pre.mean(0)) / np.sqrt(pre.var(0) + 1e-4))
    np.testing.assert_allclose(theano.function([x], get_output(l_out))(
        floatx(DATA[:, :4])), expected, rtol=RTOL * 10, atol=1e-7)
    # A layer without a nonlinearity ends in the scale and shift.
    assert isinstance(batch_norm(InputLayer((None, 4))), ScaleAndShiftLayer)


def test_original_iw_vae_with_its_saved_values_evaluates_like_numpy():
    # The original examples/iw_vae.py model with -batch_norm true, written
    # as its user wrote it, with parameter values laid out as the original
    # saved them; its test bound L_1 must be the numbers numpy computes.
    from lasagne.nonlinearities import identity, rectify, sigmoid
    from parmesan.distributions import log_bernoulli, log_normal2, \
        log_stdnormal
    from parmesan.layers import SampleLayer
    from parmesan.utils import log_mean_exp
    features, hidden, latent = 6, 5, 2

    def batchnormlayer(l, num_units, nonlinearity, name):
        l = DenseLayer(l, num_units, nonlinearity=identity,
                       name='Dense-' + name)
        l = NormalizeLayer(l, name='BN-' + name)
        l = ScaleAndShiftLayer(l, name='SaS-' + name)
        return NonlinearityLayer(l, nonlinearity=nonlinearity,
                                 name='Nonlin-' + name)

    sym_x = T.matrix('x')
    l_in = InputLayer((None, features))
    l_h = batchnormlayer(l_in, hidden, rectify, 'ENC_DENSE1')
    l_h = batchnormlayer(l_h, hidden, rectify, 'ENC_DENSE2')
    l_mu = DenseLayer(l_h, latent, nonlinearity=identity, name='ENC_MU')
    l_log_var = DenseLayer(l_h, latent, nonlinearity=identity,
                           name='ENC_LOG_VAR')
    l_z = SampleLayer(l_mu, l_log_var, seed=3)
    l_d = batchnormlayer(l_z, hidden, rectify, 'DEC_DENSE2')
    l_d = batchnormlayer(l_d, hidden, rectify, 'DEC_DENSE1')
    l_x_mu = DenseLayer(l_d, features, nonlinearity=sigmoid, name='X_MU')

    # What the original's get_all_params([l_dec_x_mu]) lists.
    def block(name, n_in):
        return [('Dense-%s.W' % name, (n_in, hidden)),
                ('Dense-%s.b' % name, (hidden,)),
                ('BN-%s.mean' % name, (1, hidden)),
                ('BN-%s.var' % name, (1, hidden)),
                ('SaS-%s.beta' % name, (1, hidden)),
                ('SaS-%s.gamma' % name, (1, hidden))]
    layout = (block('ENC_DENSE1', features) + block('ENC_DENSE2', hidden) +
              [('ENC_MU.W', (hidden, latent)), ('ENC_MU.b', (latent,)),
               ('ENC_LOG_VAR.W', (hidden, latent)),
               ('ENC_LOG_VAR.b', (latent,))] +
              block('DEC_DENSE2', latent) + block('DEC_DENSE1', hidden) +
              [('X_MU.W', (hidden, features)), ('X_MU.b', (features,))])
    params = lasagne.layers.get_all_params(l_x_mu)
    assert [(p.name, p.get_value().shape) for p in params] == layout
    r = np.random.RandomState(10)
    saved = [r.rand(*shape) + 0.2 if name.endswith('.var') else
             r.randn(*shape) * 0.7 for name, shape in layout]
    lasagne.layers.set_all_param_values(l_x_mu, [floatx(v) for v in saved])
    value = dict(zip([name for name, _ in layout], saved))

    z, mu, log_var, x_mu = get_output([l_z, l_mu, l_log_var, l_x_mu], sym_x,
                                      deterministic=True)
    log_w = (log_stdnormal(z).sum(1) + log_bernoulli(sym_x, x_mu, 1e-6).sum(1)
             - log_normal2(z, mu, log_var).sum(1))
    L1 = T.mean(log_mean_exp(log_w.reshape((-1, 1, 1)), axis=2))
    x = (r.rand(8, features) < 0.4).astype(float)
    outputs = theano.function([sym_x], [z, mu, log_var, L1])(floatx(x))

    def numpy_block(h, name):
        pre = h.dot(value['Dense-%s.W' % name]) + value['Dense-%s.b' % name]
        pre = (pre - value['BN-%s.mean' % name]) / np.sqrt(
            value['BN-%s.var' % name] + 1e-10)
        return np.maximum(0, pre * value['SaS-%s.gamma' % name] +
                          value['SaS-%s.beta' % name])

    h = numpy_block(numpy_block(x, 'ENC_DENSE1'), 'ENC_DENSE2')
    mu_np = h.dot(value['ENC_MU.W']) + value['ENC_MU.b']
    log_var_np = h.dot(value['ENC_LOG_VAR.W']) + value['ENC_LOG_VAR.b']
    z_drawn = outputs[0].astype(np.float64)
    d = numpy_block(numpy_block(z_drawn, 'DEC_DENSE2'), 'DEC_DENSE1')
    p = 1 / (1 + np.exp(-(d.dot(value['X_MU.W']) + value['X_MU.b'])))
    p = np.clip(p, 1e-6, 1 - 1e-6)
    L1_np = np.mean(
        scipy.stats.norm.logpdf(z_drawn).sum(1) +
        (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1) -
        scipy.stats.norm.logpdf(z_drawn, mu_np, np.exp(log_var_np / 2)
                                ).sum(1))
    np.testing.assert_allclose(outputs[1], mu_np, rtol=RTOL * 100)
    np.testing.assert_allclose(outputs[2], log_var_np, rtol=RTOL * 100)
    np.testing.assert_allclose(outputs[3], L1_np, rtol=RTOL * 100)
