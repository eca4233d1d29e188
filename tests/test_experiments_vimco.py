"""The VIMCO trainer (parmesan.experiments.vimco, examples/vimco.py): the
estimator's unbiasedness against an enumerated exact gradient, the
binary-latent model's log-weights and the trainer's flags."""
import itertools

import numpy as np
import pytest
import scipy.special
import theano
import theano.tensor as T
import lasagne

from parmesan.experiments.vimco import (VIMCO_DEFAULTS, BernoulliLatentVAE,
                                        run, vimco_argument_parser)
from parmesan.objectives import vimco_surrogate
from conftest import RTOL, floatx


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
    (['-iw_samples', '1'], '-iw_samples must be an integer >= 2'),
    (['--preset', 'burda'], 'unrecognized arguments: --preset'),
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
