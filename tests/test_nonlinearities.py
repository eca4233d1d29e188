"""softplus, exp_half, softmax and log_softmax against scipy / numpy, with
finite-difference gradients, and the ops their compiled graphs use."""
import numpy as np
import pytest
import scipy.special
import theano
import theano.tensor as T
from lasagne.layers import DenseLayer, InputLayer, get_output

from parmesan.nonlinearities import exp_half, log_softmax, softmax, softplus
from conftest import RTOL, floatx

#: Ops of Theano 1.0 without a GPU implementation (SoftmaxGrad), or whose
#: GPU kernel PoCL cannot build (the fused softmax cross-entropy), or
#: scatters that stay on the host (the gradient of an integer gather).
NOT_ON_THE_BACKEND = ('SoftmaxGrad', 'CrossentropySoftmaxArgmax1HotWithBias',
                      'CrossentropySoftmax1HotWithBiasDx',
                      'CrossentropyCategorical1Hot',
                      'CrossentropyCategorical1HotGrad',
                      'AdvancedIncSubtensor', 'AdvancedIncSubtensor1')


def op_names(function):
    return {type(node.op).__name__ for node in function.maker.fgraph.toposort()}


def central_differences(function, x, step=1e-6):
    """d function(x) / dx of a scalar numpy function, entry by entry."""
    gradient = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (function(up) - function(down)) / (2 * step)
    return gradient


def test_softplus_and_exp_half_match_numpy():
    x = np.array([-800., -3., 0., 3., 800.])
    values = theano.function([], [softplus(T.constant(floatx(x))),
                                  exp_half(T.constant(floatx(x[1:4])))])()
    np.testing.assert_allclose(values[0], np.logaddexp(0, x), rtol=RTOL)
    np.testing.assert_allclose(values[1], np.exp(x[1:4] / 2), rtol=RTOL)


@pytest.mark.parametrize('axis', [-1, 0, 1])
def test_log_softmax_and_softmax_match_scipy(axis):
    logits = np.random.RandomState(0).randn(4, 5) * 3
    logits[0] = [800., -800., 0., 1., 2.]  # exp overflows and underflows
    x = T.matrix()
    log_p, p = theano.function([x], [log_softmax(x, axis),
                                     softmax(x, axis)])(floatx(logits))
    np.testing.assert_allclose(log_p, scipy.special.log_softmax(logits, axis),
                               rtol=RTOL)
    np.testing.assert_allclose(p, scipy.special.softmax(logits, axis),
                               rtol=RTOL, atol=1e-300)
    assert np.all(np.isfinite(log_p))


@pytest.mark.skipif(theano.config.floatX != 'float64',
                    reason='finite differences need float64')
@pytest.mark.parametrize('name', ['log_softmax', 'softmax'])
def test_gradients_match_finite_differences(name):
    rng = np.random.RandomState(1)
    logits, weights = rng.randn(3, 4) * 2, rng.uniform(-1, 1, (3, 4))
    ours = {'log_softmax': log_softmax, 'softmax': softmax}[name]
    reference = {'log_softmax': scipy.special.log_softmax,
                 'softmax': scipy.special.softmax}[name]
    x = T.matrix()
    gradient = theano.function(
        [x], T.grad(T.sum(ours(x) * weights), x))(logits)
    np.testing.assert_allclose(
        gradient, central_differences(
            lambda v: np.sum(reference(v, axis=-1) * weights), logits),
        rtol=1e-6, atol=1e-8)


def test_softmax_gradient_compiles_without_ops_the_gpu_backend_lacks():
    # Theano's optimizer recognises exp(x) / sum(exp(x)) as its Softmax op
    # (which has a GPU kernel) but must not leave its host-only gradient.
    x = T.matrix()
    layer = DenseLayer(InputLayer((None, 3), x), 4, nonlinearity=softmax)
    loss = T.sum(get_output(layer) * np.arange(4.)) + \
        T.sum(log_softmax(x) ** 2)
    function = theano.function([x], T.grad(loss, [x, layer.W]))
    assert not op_names(function) & set(NOT_ON_THE_BACKEND)
    # and the same graph with Theano's softmax would have failed the check
    reference = theano.function([x], T.grad(T.sum(
        T.nnet.softmax(x) * np.arange(3.)), x))
    assert 'SoftmaxGrad' in op_names(reference)
