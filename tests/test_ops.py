"""Parmesan's own Theano ops against the stock Theano graphs they replace
and against numpy."""
import os
import subprocess
import sys

import numpy as np
import pytest
import theano
import theano.tensor as T
import lasagne

from parmesan import ops
from parmesan.updates import adam_with_clipping

LINKERS = {'c': theano.compile.Mode(linker='cvm', optimizer='fast_run'),
           'python': theano.compile.Mode(linker='py', optimizer='fast_run')}


def small_model(dtype, seed=0):
    """A two-layer regression with a bias and a transposed weight use: the
    gradients include a non-contiguous one."""
    rng = np.random.RandomState(seed)
    W1 = theano.shared(rng.randn(7, 5).astype(dtype), 'W1')
    b1 = theano.shared(rng.randn(5).astype(dtype), 'b1')
    W2 = theano.shared(rng.randn(3, 5).astype(dtype), 'W2')
    x = T.matrix('x', dtype=dtype)
    loss = T.sum(T.tanh(T.dot(x, W1) + b1).dot(W2.T) ** 2)
    return x, loss, [W1, b1, W2]


def train(dtype, fused, mode, max_norm, clip_value, steps=3):
    """Adam steps on small_model in `dtype` (as floatX: Lasagne's Adam
    keeps its step count in floatX)."""
    with theano.configparser.change_flags(floatX=dtype):
        x, loss, params = small_model(dtype)
        learning_rate = theano.shared(np.asarray(0.01, dtype), 'lr')
        updates = adam_with_clipping(loss, params, learning_rate,
                                     epsilon=1e-4, max_norm=max_norm,
                                     clip_value=clip_value, fused=fused)
        step = theano.function([x], loss, updates=updates, mode=mode)
    data = np.random.RandomState(1).randn(4, 7).astype(dtype)
    losses = [step(data) for _ in range(steps)]
    return step, params, updates, losses


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('linker', sorted(LINKERS))
@pytest.mark.parametrize('max_norm,clip_value', [(None, None), (3.0, 0.5),
                                                 (1e6, None), (0.1, None)])
def test_fused_adam_computes_the_stock_graphs_updates(dtype, linker,
                                                      max_norm, clip_value):
    mode = LINKERS[linker]
    stock = train(dtype, False, mode, max_norm, clip_value)
    fused = train(dtype, True, mode, max_norm, clip_value)
    assert any(isinstance(node.op, ops.FusedAdam)
               for node in fused[0].maker.fgraph.toposort())
    assert not any(isinstance(node.op, ops.FusedAdam)
                   for node in stock[0].maker.fgraph.toposort())
    rtol = 2e-5 if dtype == 'float32' else 1e-12
    np.testing.assert_allclose(fused[3], stock[3], rtol=rtol)
    for ours, theirs in zip(fused[2].keys(), stock[2].keys()):
        np.testing.assert_allclose(ours.get_value(), theirs.get_value(),
                                   rtol=rtol, atol=rtol)


def test_fused_adam_step_matches_numpy():
    """One step from zero moments, in numpy: Lasagne's Adam after the
    total-norm rescaling and the element-wise clip."""
    x, loss, params = small_model('float64')
    grads = theano.function([x], T.grad(loss, params))
    data = np.random.RandomState(1).randn(4, 7)
    expected_grads = grads(data)
    before = [p.get_value() for p in params]
    learning_rate = theano.shared(np.float64(0.01))
    updates = ops.fused_adam_updates(T.grad(loss, params), params,
                                     learning_rate, epsilon=1e-4,
                                     max_norm=2.0, clip_value=0.3)
    theano.function([x], [], updates=updates)(data)
    norm = np.sqrt(sum((g ** 2).sum() for g in expected_grads))
    a_t = 0.01 * np.sqrt(1 - 0.999) / (1 - 0.9)
    for p0, g, p in zip(before, expected_grads, params):
        g = np.clip(g * min(norm, 2.0) / (1e-7 + norm), -0.3, 0.3)
        m, v = 0.1 * g, 0.001 * g ** 2
        np.testing.assert_allclose(p.get_value(),
                                   p0 - a_t * m / (np.sqrt(v) + 1e-4),
                                   rtol=1e-12)


def test_fused_adam_updates_in_place():
    step, params, _, _ = train('float64', True, LINKERS['c'], 3.0, 0.5)
    node, = [n for n in step.maker.fgraph.toposort()
             if isinstance(n.op, ops.FusedAdam)]
    assert node.op.inplace
    W1 = params[0].get_value(borrow=True)
    step(np.ones((4, 7)))
    assert params[0].get_value(borrow=True) is W1


def test_fused_adam_keeps_lasagnes_order_of_the_optimiser_state():
    """Checkpoints store the shared variables in theano.function's order;
    the fused graph keeps the stock graph's, so a run resumes across the
    switch."""
    def roles(fused):
        step, params, updates, _ = train('float32', fused, LINKERS['c'],
                                         3.0, 0.5, steps=0)
        keys = list(updates.keys())
        names = {}
        for index, param in enumerate(params):
            names[param] = 'param%d' % index
            position = keys.index(param)
            names[keys[position - 2]] = 'm%d' % index
            names[keys[position - 1]] = 'v%d' % index
        names[keys[-1]] = 't'
        return [names.get(v, v.name) for v in step.get_shared()]
    assert roles(True) == roles(False)


def test_fused_adam_has_no_gradient_and_checks_its_inputs():
    x, loss, params = small_model('float32')
    updates = ops.fused_adam_updates(T.grad(loss, params), params, 0.1)
    new_param = list(updates.values())[2]
    with pytest.raises(theano.gradient.NullTypeGradError):
        T.grad(new_param.sum(), x)
    op = ops.FusedAdam(1)
    p = theano.shared(np.zeros(3, 'float32'))
    g64 = T.dvector()
    with pytest.raises(TypeError, match='gradient of parameter 0'):
        op(*op.arrange_inputs(T.constant(np.float32(0.1)),
                              T.constant(np.float32(0)), [p], [p], [p],
                              [g64]))
    with pytest.raises(ValueError, match='max_norm must be positive'):
        ops.FusedAdam(1, max_norm=0)


def test_the_switch_restores_the_stock_graph(monkeypatch):
    monkeypatch.setattr(ops.config, 'fused_adam', False)
    step, _, _, _ = train('float32', None, LINKERS['c'], 3.0, 0.5, steps=0)
    assert not any(isinstance(n.op, ops.FusedAdam)
                   for n in step.maker.fgraph.toposort())
    code = 'import parmesan.ops as o; print(o.config.fused_adam)'
    for value, expected in (('0', 'False'), ('1', 'True'), ('', 'True')):
        out = subprocess.run([sys.executable, '-c', code], text=True,
                             capture_output=True,
                             env=dict(os.environ, PARMESAN_FUSED_OPS=value))
        assert out.stdout.strip() == expected, out.stderr[-2000:]
    # On a GPU device (here one that cannot start: Theano carries on) the
    # CPU-only op is off unless asked for.
    for value, expected in (('', 'False'), ('1', 'True')):
        out = subprocess.run([sys.executable, '-c', code], text=True,
                             capture_output=True, env=dict(
                                 os.environ, PARMESAN_FUSED_ADAM=value,
                                 THEANO_FLAGS='device=cuda'))
        assert out.stdout.strip() == expected, out.stderr[-2000:]


def test_fused_adam_trains_lasagnes_models_like_lasagne():
    """A Lasagne network through adam_with_clipping, fused and stock, the
    same losses over a few steps."""
    losses = {}
    for fused in (False, True):
        lasagne.random.set_rng(np.random.RandomState(3))
        l_in = lasagne.layers.InputLayer((None, 6))
        l_out = lasagne.layers.DenseLayer(
            lasagne.layers.DenseLayer(l_in, 8), 2,
            nonlinearity=lasagne.nonlinearities.softmax)
        x, t = T.matrix('x'), T.ivector('t')
        loss = T.nnet.categorical_crossentropy(
            lasagne.layers.get_output(l_out, x), t).mean()
        updates = adam_with_clipping(
            loss, lasagne.layers.get_all_params(l_out), 0.05, fused=fused)
        step = theano.function([x, t], loss, updates=updates)
        rng = np.random.RandomState(4)
        data = rng.randn(10, 6).astype(theano.config.floatX)
        labels = rng.randint(0, 2, 10).astype('int32')
        losses[fused] = [float(step(data, labels)) for _ in range(5)]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-5)
    assert losses[True][-1] < losses[True][0]


# ---------------------------------------------------------------- AddRowBias

@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('linker', sorted(LINKERS))
def test_add_row_bias_values_on_any_strides(dtype, linker):
    x, b = T.matrix(dtype=dtype), T.vector(dtype=dtype)
    f = theano.function([x, b], ops.add_row_bias(x, b), mode=LINKERS[linker])
    rng = np.random.RandomState(5)
    big = rng.randn(9, 12).astype(dtype)
    bias = rng.randn(14).astype(dtype)
    for data, vector in ((big, bias[:12]), (big.T, bias[:9]),
                         (big[::2, 1::3], bias[::4][:4]),
                         (np.asfortranarray(big), bias[2:14])):
        np.testing.assert_array_equal(f(data, vector), data + vector)
    with pytest.raises(ValueError, match='x has 12 columns, b 5 entries'):
        f(big, bias[:5])


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_add_row_bias_gradient(dtype):
    rng = np.random.RandomState(6)
    tolerance = 1e-2 if dtype == 'float32' else 1e-7
    theano.gradient.verify_grad(
        lambda x, b: T.tanh(ops.add_row_bias(x, b)),
        [rng.randn(4, 3).astype(dtype), rng.randn(3).astype(dtype)],
        rng=rng, abs_tol=tolerance, rel_tol=tolerance)


def dense_softplus_graph(dtype):
    """The evaluation's pattern: softplus(h W + b) and the Bernoulli
    log-likelihood from logits h V + c."""
    h, x = T.matrix('h', dtype=dtype), T.matrix('x', dtype=dtype)
    rng = np.random.RandomState(7)
    W = theano.shared(rng.randn(6, 5).astype(dtype))
    b = theano.shared(rng.randn(5).astype(dtype))
    V = theano.shared(rng.randn(5, 6).astype(dtype))
    c = theano.shared(rng.randn(6).astype(dtype))
    hidden = T.nnet.softplus(T.dot(h, W) + b.dimshuffle('x', 0))
    logits = T.dot(hidden, V) + c.dimshuffle('x', 0)
    log_px = (x * logits - T.nnet.softplus(logits)).sum(-1)
    return [h, x], [log_px] + T.grad(log_px.sum(), [W, b, V, c])


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_row_bias_optimisation_keeps_the_stock_graphs_values(dtype,
                                                             monkeypatch):
    inputs, outputs = dense_softplus_graph(dtype)
    rng = np.random.RandomState(8)
    data = [rng.randn(4, 6).astype(dtype),
            (rng.rand(4, 6) < 0.5).astype(dtype)]
    results = {}
    for on in (True, False):
        monkeypatch.setattr(ops.config, 'row_bias', on)
        f = theano.function(inputs, outputs)
        found = [n for n in f.maker.fgraph.toposort()
                 if isinstance(n.op, ops.AddRowBias)]
        assert bool(found) == on
        results[on] = f(*data)
    rtol = 1e-5 if dtype == 'float32' else 1e-12
    for ours, stock in zip(results[True], results[False]):
        np.testing.assert_allclose(ours, stock, rtol=rtol, atol=rtol)
    mode = theano.compile.get_default_mode().excluding(
        'parmesan_add_row_bias')
    excluded = theano.function(inputs, outputs, mode=mode)
    assert not any(isinstance(n.op, ops.AddRowBias)
                   for n in excluded.maker.fgraph.toposort())
