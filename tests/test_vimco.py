"""VIMCO: the learning signals against the paper's formula written out in
numpy, the surrogate's gradients, unbiasedness against an enumerated exact
gradient, the binary-latent model's log-weights and the trainer's flags."""
import itertools

import numpy as np
import pytest
import scipy.special
import theano
import theano.tensor as T
import lasagne

from parmesan.vimco import (VIMCO_DEFAULTS, BernoulliLatentVAE, run,
                            vimco_argument_parser, vimco_learning_signals,
                            vimco_surrogate)
from conftest import RTOL, floatx


def paper_learning_signals(log_w):
    """Mnih & Rezende (2016), eqs. 8-10, one sample at a time: the signal
    of sample j is L - log (1/K)(sum_{i!=j} f_i + f^_{-j}), where f^_{-j}
    is the geometric mean of the other K - 1 weights."""
    rows, count = log_w.shape
    signals = np.empty_like(log_w)
    for r in range(rows):
        bound = scipy.special.logsumexp(log_w[r]) - np.log(count)
        for j in range(count):
            others = np.delete(log_w[r], j)
            log_geometric_mean = others.mean()
            signals[r, j] = bound - (scipy.special.logsumexp(
                np.append(others, log_geometric_mean)) - np.log(count))
    return signals


def compiled_signals():
    log_w = T.matrix('log_w')
    return theano.function([log_w], vimco_learning_signals(log_w))


@pytest.mark.parametrize('count', [2, 3, 7])
def test_learning_signals_match_the_papers_formula(count):
    rng = np.random.RandomState(count)
    # Log-weights of the size a binary-latent MNIST model produces.
    log_w = rng.normal(-120.0, 4.0, size=(5, count))
    np.testing.assert_allclose(compiled_signals()(floatx(log_w)),
                               paper_learning_signals(log_w), rtol=RTOL,
                               atol=1e-8)


def test_learning_signals_differ_from_the_arithmetic_leave_one_out():
    # The original Parmesan example replaced w_j by the arithmetic mean of
    # the others; the paper uses the geometric mean. With unequal weights
    # the two differ, so a match above is not a coincidence of the data.
    rng = np.random.RandomState(0)
    log_w = rng.normal(-50.0, 3.0, size=(4, 5))
    count = log_w.shape[1]
    arithmetic = np.empty_like(log_w)
    for r, j in itertools.product(range(4), range(count)):
        others = np.delete(log_w[r], j)
        arithmetic[r, j] = scipy.special.logsumexp(log_w[r]) - \
            scipy.special.logsumexp(np.append(
                others, scipy.special.logsumexp(others) - np.log(count - 1)))
    ours = compiled_signals()(floatx(log_w))
    assert np.max(np.abs(ours - arithmetic)) > 1e-2


def test_learning_signals_are_stable_for_far_apart_and_huge_log_weights():
    log_w = np.array([[-1e5, -1e5 + 800.0, -1e5 - 900.0, -1e5 + 3.0],
                      [-3000.0, -3000.0, -3000.0, -3000.0]])
    signals = compiled_signals()(floatx(log_w))
    assert np.all(np.isfinite(signals))
    np.testing.assert_allclose(signals, paper_learning_signals(log_w),
                               rtol=RTOL, atol=1e-6)
    # Equal weights: replacing one by the mean of the rest changes nothing.
    np.testing.assert_allclose(signals[1], 0.0, atol=1e-9)


def test_vector_and_eq_axis_layouts_give_the_same_signals():
    rng = np.random.RandomState(1)
    batch, eq, count = 3, 2, 4
    log_w = rng.normal(-80.0, 3.0, size=(batch, eq, count))
    vector, cube = T.vector('log_w'), T.tensor3('log_w')
    from_vector = theano.function(
        [vector], vimco_learning_signals(vector, num_samples=count))
    from_cube = theano.function([cube], vimco_learning_signals(cube))
    expected = paper_learning_signals(log_w.reshape(-1, count))
    np.testing.assert_allclose(from_vector(floatx(log_w.ravel())), expected,
                               rtol=RTOL, atol=1e-8)
    np.testing.assert_allclose(from_cube(floatx(log_w)), expected,
                               rtol=RTOL, atol=1e-8)


def test_fewer_than_two_samples_or_a_vector_without_k_is_an_error():
    with pytest.raises(ValueError, match='at least 2 samples'):
        vimco_learning_signals(T.vector(), num_samples=1)
    with pytest.raises(ValueError, match='num_samples'):
        vimco_surrogate(T.vector(), T.vector())


def test_surrogate_value_is_the_bound_and_its_gradients_are_vimcos():
    rng = np.random.RandomState(2)
    batch, count = 4, 6
    log_w_value = rng.normal(-100.0, 3.0, size=(batch, count))
    log_q_value = rng.normal(-30.0, 2.0, size=(batch, count))
    log_w, log_q = T.matrix('log_w'), T.matrix('log_q')
    surrogate = vimco_surrogate(log_w, log_q)
    value, grad_w, grad_q = theano.function(
        [log_w, log_q], [surrogate] + T.grad(surrogate, [log_w, log_q]))(
            floatx(log_w_value), floatx(log_q_value))
    bounds = scipy.special.logsumexp(log_w_value, axis=1) - np.log(count)
    np.testing.assert_allclose(value, bounds.mean(), rtol=RTOL)
    # Averaged over the batch: each example contributes 1/batch of its own
    # normalised weights and learning signals (the original summed the
    # score term over the batch but averaged the bound).
    normalised = scipy.special.softmax(log_w_value, axis=1)
    np.testing.assert_allclose(grad_w, normalised / batch, rtol=RTOL,
                               atol=1e-12)
    np.testing.assert_allclose(
        grad_q, paper_learning_signals(log_w_value) / batch, rtol=RTOL,
        atol=1e-10)


# A model small enough to enumerate: two binary latents, four binary
# pixels, K = 3 samples, so E_q[log mean_k w_k] is a sum over 4^3 tuples.
NUM_LATENT, NUM_PIXELS, COUNT = 2, 4, 3
X = np.array([1.0, 0.0, 1.0, 1.0])
PARAMS = {
    'q_logits': np.array([0.8, -0.5]),        # q(h|x), the inference side
    'prior_logits': np.array([-0.3, 0.4]),    # p(h)
    'W': np.array([[2.0, -1.0], [-1.5, 0.5], [1.0, 1.5], [0.3, -2.0]]),
    'b': np.array([0.1, -0.2, 0.3, 0.0]),     # p(x|h) = Bern(sig(W h + b))
}


def log_bernoulli_logits(values, logits):
    return values * -np.logaddexp(0, -logits) + \
        (1 - values) * -np.logaddexp(0, logits)


def exact_bound(params):
    """E_{h_1..K ~ q}[log (1/K) sum_k w(h_k)] by enumeration."""
    states = np.array(list(itertools.product([0.0, 1.0], repeat=NUM_LATENT)))
    log_q = log_bernoulli_logits(states, params['q_logits']).sum(1)
    log_joint = log_bernoulli_logits(states, params['prior_logits']).sum(1) \
        + log_bernoulli_logits(X, states.dot(params['W'].T) +
                               params['b']).sum(1)
    log_w = log_joint - log_q
    tuples = np.array(list(itertools.product(range(len(states)),
                                             repeat=COUNT)))
    probability = np.exp(log_q[tuples].sum(1))
    return np.sum(probability * (scipy.special.logsumexp(log_w[tuples], 1) -
                                 np.log(COUNT)))


def exact_gradient(params, step=1e-5):
    """Central differences of :func:`exact_bound`, parameter by parameter."""
    gradient = {}
    for name, value in params.items():
        gradient[name] = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in params.items()}
            shifted[name][index] = value[index] + step
            upper = exact_bound(shifted)
            shifted[name][index] = value[index] - step
            gradient[name][index] = (upper - exact_bound(shifted)) / (2 * step)
    return gradient


def test_vimco_gradient_is_unbiased_on_an_enumerable_model():
    shared = {name: theano.shared(floatx(value), name)
              for name, value in PARAMS.items()}
    h = T.matrix('h')        # (replicates * K, latents), drawn in numpy

    def log_bernoulli(values, logits):
        return -values * T.nnet.softplus(-logits) - \
            (1 - values) * T.nnet.softplus(logits)

    log_q = log_bernoulli(h, shared['q_logits']).sum(1)
    x_logits = T.dot(h, shared['W'].T) + shared['b']
    log_w = log_bernoulli(h, shared['prior_logits']).sum(1) + \
        log_bernoulli(floatx(X), x_logits).sum(1) - log_q
    surrogate = vimco_surrogate(log_w, log_q, num_samples=COUNT)
    names = sorted(PARAMS)
    gradient = theano.function([h], T.grad(surrogate, [shared[n]
                                                       for n in names]))

    rng = np.random.RandomState(3)
    probability = scipy.special.expit(PARAMS['q_logits'])
    chunks, replicates = 40, 5000
    estimates = {name: [] for name in names}
    for _ in range(chunks):
        draws = rng.uniform(size=(replicates * COUNT, NUM_LATENT))
        # Each chunk's gradient is already the mean over its replicates.
        for name, value in zip(names, gradient(floatx(draws < probability))):
            estimates[name].append(value)
    exact = exact_gradient(PARAMS)
    for name in names:
        samples = np.array(estimates[name])
        mean = samples.mean(0)
        stderr = samples.std(0, ddof=1) / np.sqrt(chunks)
        # 4.5 standard errors: over 16 numbers a false alarm has odds of
        # about 1e-4, while a biased baseline (one that depends on h_j)
        # shifts the inference gradient by far more.
        assert np.all(np.abs(mean - exact[name]) < 4.5 * stderr + 1e-4), \
            (name, mean, exact[name], stderr)
    # The test has teeth only if the inference gradient is clearly nonzero.
    assert np.all(np.abs(exact['q_logits']) > 10 * np.array(
        estimates['q_logits']).std(0) / np.sqrt(chunks))


@pytest.fixture(scope='module')
def small_model():
    lasagne.random.set_rng(np.random.RandomState(4))
    return BernoulliLatentVAE(6, (5,), 3, T.tanh, T.tanh, learn_prior=True)


def test_model_log_weights_match_a_numpy_recomputation(small_model):
    model, count = small_model, 4
    model.prior_logits.set_value(floatx([0.5, -1.0, 2.0]))
    rng = np.random.RandomState(5)
    x = floatx(rng.uniform(size=(2, 6)) < 0.5)
    h_value = floatx(rng.uniform(size=(2 * count, 3)) < 0.5)
    h = T.matrix('h')
    terms = model.terms(inputs={model.l_h: h})
    q_prob = lasagne.layers.get_output(model.l_q_prob)
    x_mu = lasagne.layers.get_output(model.l_x_mu, {model.l_h: h})
    outputs = theano.function(
        [model.x, h], [terms[k].flatten() for k in
                       ('log_w', 'log_qh', 'log_ph', 'log_px_h')] +
        [q_prob, x_mu], givens=[(model.eq, np.int32(1)),
                                (model.iw, np.int32(count))])(x, h_value)
    log_w, log_qh, log_ph, log_px_h, q_prob_value, x_mu_value = outputs

    def log_bernoulli(values, probability, eps=1e-6):
        probability = np.clip(probability, eps, 1 - eps)
        return (values * np.log(probability) +
                (1 - values) * np.log(1 - probability)).sum(-1)

    # Rows are batch-major: sample i of example b is row b * K + i.
    per_row_x = np.repeat(x, count, axis=0)
    expected_qh = log_bernoulli(h_value, np.repeat(q_prob_value, count, 0))
    expected_ph = log_bernoulli(h_value, scipy.special.expit(
        [0.5, -1.0, 2.0]))
    expected_px = log_bernoulli(per_row_x, x_mu_value)
    np.testing.assert_allclose(log_qh, expected_qh, rtol=RTOL)
    np.testing.assert_allclose(log_ph, expected_ph, rtol=RTOL)
    np.testing.assert_allclose(log_px_h, expected_px, rtol=RTOL)
    np.testing.assert_allclose(log_w, expected_px + expected_ph -
                               expected_qh, rtol=RTOL)


def test_learned_prior_is_a_trainable_parameter_only_when_asked(small_model):
    assert small_model.prior_logits in small_model.params(trainable=True)
    fixed = BernoulliLatentVAE(6, (5,), 3, T.tanh, T.tanh)
    assert fixed.prior_logits not in fixed.params(trainable=True)
    assert not fixed.normalize_layers()
    assert BernoulliLatentVAE(6, (5,), 3, T.tanh, T.tanh,
                              batch_norm=True).normalize_layers()


def test_defaults_are_the_original_examples():
    args = vimco_argument_parser('test').parse_args([])
    for name, value in dict(dataset='sample', eq_samples=1, iw_samples=50,
                            lr=1e-3, anneal_lr_factor=0.99,
                            anneal_lr_epoch=500, nhidden=200, nlatent=200,
                            batch_size=24, nepochs=10000).items():
        assert getattr(args, name) == value, name
    assert args.prior == 'fixed' and args.batch_norm is False
    assert VIMCO_DEFAULTS['outfolder'] == 'results/vimco'


@pytest.mark.parametrize('argv,message', [
    (['-iw_samples', '1'], 'at least 2'),
    (['--preset', 'burda'], 'does not apply to VIMCO'),
    (['-no_such_flag', '3'], 'unrecognized arguments: -no_such_flag'),
    (['--prior', 'uniform'], "invalid choice: 'uniform'"),
])
def test_bad_flags_exit_with_a_message_naming_them(argv, message, capsys,
                                                   tmp_path):
    with pytest.raises(SystemExit) as stop:
        run(argv + ['-outfolder', str(tmp_path)])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
