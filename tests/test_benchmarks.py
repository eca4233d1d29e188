"""The benchmark's two implementations compute the same model, and the
benchmark script runs (benchmarks/run.py, quick mode, smallest row)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import theano
import theano.tensor as T
from lasagne.layers import get_output

from conftest import REPO
from parmesan.experiments import vae as models
from parmesan.distributions import log_bernoulli

BENCHMARKS = os.path.join(REPO, 'benchmarks')
EQ, IW, BATCH = 2, 3, 4


def old_log_bernoulli(x, logits, eps):
    return log_bernoulli(x, T.nnet.sigmoid(logits), eps=eps)


def parmesan_bound_and_grads(model, probabilities=False):
    """Compiled f(x, noise) -> [bound per example] + d mean bound / d params,
    with the sample layer's noise given (batch-major, eq * iw per example)."""
    noise = T.matrix('noise')
    mu, log_var = get_output([model.l_mu, model.l_log_var])
    repeats = EQ * IW
    z = T.repeat(mu, repeats, axis=0) + \
        T.repeat(T.exp(0.5 * log_var), repeats, axis=0) * noise
    if probabilities:  # Parmesan <= 0.2.0: clip(sigmoid) + crossentropy
        original = models.log_bernoulli_logits
        models.log_bernoulli_logits = old_log_bernoulli
    try:
        terms = model.terms(inputs={model.l_z0: z})
    finally:
        if probabilities:
            models.log_bernoulli_logits = original
    bound = model.bound(terms)
    params = model.params(trainable=True)
    return theano.function(
        [model.x, noise], [bound] + T.grad(bound.mean(), params),
        givens=[(model.eq, np.int32(EQ)), (model.iw, np.int32(IW))])


def saturate(model):
    """Decoder biases of +-25 on half the pixels push their probabilities
    beyond the 1e-6 clip, so the clipped region (values and zero gradients)
    is compared too; the other pixels stay moderate, away from where float32
    probabilities lose precision."""
    bias = np.zeros(784)
    bias[0::4], bias[1::4] = 25.0, -25.0
    model.l_x_logits.b.set_value(bias.astype(theano.config.floatX))


@pytest.mark.parametrize('nonlinearity', ['softplus', 'tanh'])
def test_parmesan_and_pytorch_compute_the_same_bound(nonlinearity):
    torch = pytest.importorskip('torch')
    sys.path.insert(0, BENCHMARKS)
    try:
        import torch_models
    finally:
        sys.path.remove(BENCHMARKS)
    function = {'softplus': T.nnet.softplus, 'tanh': T.tanh}[nonlinearity]
    model = models.VariationalAutoencoder(784, [40, 30], 8, function,
                                          function)
    saturate(model)
    rng = np.random.RandomState(0)
    x = (rng.rand(BATCH, 784) < 0.3).astype(theano.config.floatX)
    noise = rng.randn(BATCH * EQ * IW, 8).astype(theano.config.floatX)
    outputs = parmesan_bound_and_grads(model)(x, noise)

    reference = torch_models.TorchVAE(784, [40, 30], 8, nonlinearity)
    torch_models.copy_parameters(model, reference)
    terms = reference.terms(torch.from_numpy(x.astype(np.float32)), EQ, IW,
                            noise=torch.from_numpy(noise.astype(np.float32)))
    bound = reference.bound(terms)
    bound.mean().backward()

    rtol = 1e-3  # PyTorch computes in float32
    np.testing.assert_allclose(outputs[0], bound.detach().numpy(), rtol=rtol)
    grads = dict(zip(model.params(trainable=True), outputs[1:]))
    for layer, linear in torch_models.parameter_pairs(model, reference):
        for ours, theirs in ((grads[layer.W], linear.weight.grad.numpy().T),
                             (grads[layer.b], linear.bias.grad.numpy())):
            scale = np.abs(theirs).max() + 1e-6
            np.testing.assert_allclose(ours / scale, theirs / scale,
                                       atol=rtol)


@pytest.mark.parametrize('nonlinearity', ['softplus', 'tanh'])
def test_parmesan_and_jax_compute_the_same_bound(nonlinearity):
    jax = pytest.importorskip('jax')
    sys.path.insert(0, BENCHMARKS)
    try:
        import jax_models
    finally:
        sys.path.remove(BENCHMARKS)
    function = {'softplus': T.nnet.softplus, 'tanh': T.tanh}[nonlinearity]
    model = models.VariationalAutoencoder(784, [40, 30], 8, function,
                                          function)
    saturate(model)
    rng = np.random.RandomState(2)
    x = (rng.rand(BATCH, 784) < 0.3).astype(theano.config.floatX)
    noise = rng.randn(BATCH * EQ * IW, 8).astype(theano.config.floatX)
    outputs = parmesan_bound_and_grads(model)(x, noise)

    params = jax_models.parameters_from_parmesan(model)

    def mean_bound(params):
        found = jax_models.terms(
            params, x.astype(np.float32), noise.astype(np.float32), 2,
            jax_models.NONLINEARITIES[nonlinearity], EQ, IW)
        per_example = jax_models.bound(found['log_w'])
        return per_example.mean(), per_example

    grads, bound = jax.grad(mean_bound, has_aux=True)(params)
    rtol = 1e-3  # JAX computes in float32
    np.testing.assert_allclose(outputs[0], np.asarray(bound), rtol=rtol)
    ours = dict(zip(model.params(trainable=True), outputs[1:]))
    for layer, (grad_W, grad_b) in zip(jax_models.dense_layers(model),
                                       grads):
        for mine, theirs in ((ours[layer.W], grad_W), (ours[layer.b],
                                                       grad_b)):
            theirs = np.asarray(theirs)
            scale = np.abs(theirs).max() + 1e-6
            np.testing.assert_allclose(mine / scale, theirs / scale,
                                       atol=rtol)


def test_jax_train_step_is_lasagnes_adam_with_parmesans_clipping():
    """One jitted step of the JAX twin against numpy doing Lasagne's Adam
    on the same (clipped) gradients."""
    jax = pytest.importorskip('jax')
    sys.path.insert(0, BENCHMARKS)
    try:
        import jax_models
    finally:
        sys.path.remove(BENCHMARKS)
    params = jax_models.init_params(jax.random.PRNGKey(0), 20, [6], 3)
    x = (np.random.RandomState(3).rand(5, 20) < 0.4).astype(np.float32)
    key = jax.random.PRNGKey(7)
    step = jax_models.make_train_step('tanh', iw_samples=2,
                                      learning_rate=0.01, epsilon=1e-4,
                                      max_norm=0.5, clip_value=0.05)
    state, monitored = step(jax_models.adam_state(params), x, key)
    # The same noise and gradients, outside the step.
    noise = jax.random.normal(key, (10, 3), np.float32)
    grads = jax.grad(lambda p: -jax_models.bound(jax_models.terms(
        p, x, noise, 1, jax.numpy.tanh, 1,
        2)['log_w']).mean())(params)
    flat = [np.asarray(g, np.float64) for g in jax.tree_util.tree_leaves(
        grads)]
    norm = np.sqrt(sum((g ** 2).sum() for g in flat))
    flat = [np.clip(g * min(norm, 0.5) / (1e-7 + norm), -0.05, 0.05)
            for g in flat]
    a_t = 0.01 * np.sqrt(1 - 0.999) / (1 - 0.9)
    for before, g, after in zip(jax.tree_util.tree_leaves(params), flat,
                                jax.tree_util.tree_leaves(
                                    state['params'])):
        m, v = 0.1 * g, 0.001 * g ** 2
        expected = np.asarray(before, np.float64) - \
            a_t * m / (np.sqrt(v) + 1e-4)
        np.testing.assert_allclose(np.asarray(after), expected, rtol=1e-4,
                                   atol=1e-6)
    assert np.isfinite(np.asarray(monitored)).all()


def test_logit_likelihood_matches_the_clipped_probabilities():
    """Parmesan's VAE computes log p(x|z) from the decoder's logits; that
    is the old clip(sigmoid) + crossentropy, values and gradients."""
    model = models.VariationalAutoencoder(784, [40], 8, T.nnet.softplus,
                                          T.nnet.softplus,
                                          bernoulli_eps=1e-6)
    saturate(model)
    rng = np.random.RandomState(1)
    x = (rng.rand(BATCH, 784) < 0.3).astype(theano.config.floatX)
    noise = rng.randn(BATCH * EQ * IW, 8).astype(theano.config.floatX)
    logits = parmesan_bound_and_grads(model)(x, noise)
    probabilities = parmesan_bound_and_grads(model, True)(x, noise)
    rtol = 1e-3 if theano.config.floatX == 'float32' else 1e-7
    np.testing.assert_allclose(logits[0], probabilities[0], rtol=rtol)
    for ours, old in zip(logits[1:], probabilities[1:]):
        scale = np.abs(old).max() + 1e-6
        np.testing.assert_allclose(ours / scale, old / scale, atol=rtol)


@pytest.mark.slow
def test_quick_mode_runs(tmp_path):
    out = tmp_path / 'quick'
    result = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, 'run.py'), '--quick',
         '--rows', 'burda-k1', '--threads', '1', '--out', str(out)],
        capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-2000:] + \
        result.stderr[-2000:]
    with open(str(out) + '.json') as stream:
        found = json.load(stream)
    row, = found['rows']
    assert row['row'] == 'burda-k1'
    assert row['parmesan']['seconds'][0] > 0
    assert 'burda-k1' in (tmp_path / 'quick.rst').read_text()
    try:
        import torch  # noqa: F401
    except ImportError:
        assert 'pip install torch==2.13.0' in result.stdout
    else:
        assert row['ratio'][0] > 0


def test_matched_budget_agreement_is_welchs_two_standard_errors():
    import scipy.stats
    sys.path.insert(0, BENCHMARKS)
    from matched_budget import compare
    rng = np.random.RandomState(3)
    parmesan_lls, torch_lls = rng.normal(-90, 0.3, 3), rng.normal(-90.2, 0.5, 3)
    result = compare(parmesan_lls, torch_lls)
    welch = scipy.stats.ttest_ind(parmesan_lls, torch_lls, equal_var=False)
    np.testing.assert_allclose(result['difference'] /
                               result['difference_stderr'], welch.statistic)
    assert result['agree'] == (abs(welch.statistic) <= 2)
    assert not compare([-90.0, -90.1, -89.9], [-95.0, -95.1, -94.9])['agree']
