"""The benchmark's VAE written in JAX (jit), a second reference beside the
PyTorch twin (``torch_models.py``).

The model is :class:`parmesan.experiments.vae.VariationalAutoencoder`
without batch norm and flows, as functions of a list of (W, b) pairs in
Lasagne's layout (W of shape (inputs, outputs)): the same layers, the same
reparameterised samples in the same batch-major layout, the same
log-densities and the same IWAE bound. :func:`parameters_from_parmesan`
copies a Parmesan model's weights, which ``tests/test_benchmarks.py`` uses
to check that both compute the same bound and gradients.

The training step is Lasagne's Adam after Parmesan's gradient clipping
(total norm, then element-wise), all inside one ``jax.jit``.

JAX is a benchmark-only dependency: ``pip install jax jaxlib`` (a CPU
build).
"""
import math

import numpy as np
import jax
import jax.numpy as jnp

__all__ = ['NONLINEARITIES', 'init_params', 'dense_layers',
           'parameters_from_parmesan',
           'terms', 'bound', 'adam_state', 'make_train_step',
           'log_weights_function']

#: Parmesan's nonlinearity names, as JAX functions.
NONLINEARITIES = {'softplus': jax.nn.softplus, 'tanh': jnp.tanh,
                  'rectify': jax.nn.relu}

#: -log(2 pi) / 2, as parmesan.distributions.C.
C = -0.5 * math.log(2 * math.pi)


def _layer_widths(num_features, hidden_units, num_latent):
    """(inputs, outputs) of every dense layer: encoder, mu, log-variance,
    decoder, output."""
    widths = [num_features] + list(hidden_units)
    back = [num_latent] + list(reversed(hidden_units)) + [num_features]
    return (list(zip(widths, widths[1:])) +
            [(widths[-1], num_latent)] * 2 + list(zip(back, back[1:])))


def init_params(key, num_features, hidden_units, num_latent):
    """Glorot-uniform weights and zero biases, as Lasagne's DenseLayer.

    Returns
    -------
    list of (W, b) float32 arrays, in the order of
    :func:`parameters_from_parmesan`.
    """
    params = []
    for fan_in, fan_out in _layer_widths(num_features, hidden_units,
                                         num_latent):
        key, subkey = jax.random.split(key)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        params.append((jax.random.uniform(subkey, (fan_in, fan_out),
                                          jnp.float32, -limit, limit),
                       jnp.zeros(fan_out, jnp.float32)))
    return params


def dense_layers(model):
    """The DenseLayers of a :class:`VariationalAutoencoder` (no batch norm,
    no flows): encoder, mu, log-variance, decoder and output."""
    from lasagne.layers import DenseLayer, get_all_layers
    heads = (model.l_mu, model.l_log_var)
    dense = [layer for layer in get_all_layers(model.l_x_mu)
             if isinstance(layer, DenseLayer) and layer not in heads]
    encoder = [layer for layer in dense
               if layer in get_all_layers(model.l_mu)]
    decoder = [layer for layer in dense if layer not in encoder]
    return encoder + list(heads) + decoder


def parameters_from_parmesan(model):
    """The (W, b) pairs of :func:`dense_layers`, as float32 JAX arrays."""
    return [(jnp.asarray(layer.W.get_value(), jnp.float32),
             jnp.asarray(layer.b.get_value(), jnp.float32))
            for layer in dense_layers(model)]


def terms(params, x, noise, num_encoder, nonlinearity, eq_samples,
          iw_samples):
    """Per-sample log p(x|z), log p(z), log q(z|x) and log w, each of shape
    (batch, eq, iw).

    Parameters
    ----------
    params : list of (W, b)
    x : (batch, features)
    noise : (batch * eq * iw, latent) standard-normal draws, batch-major
    num_encoder : int, hidden layers of the encoder
    nonlinearity : callable
    eq_samples, iw_samples : int
    """
    act = nonlinearity
    h = x
    for W, b in params[:num_encoder]:
        h = act(h @ W + b)
    (W_mu, b_mu), (W_lv, b_lv) = params[num_encoder:num_encoder + 2]
    mu, log_var = h @ W_mu + b_mu, h @ W_lv + b_lv
    batch, latent = mu.shape
    noise = noise.reshape(batch, eq_samples, iw_samples, latent)
    mu, log_var = mu[:, None, None], log_var[:, None, None]
    z = mu + jnp.exp(0.5 * log_var) * noise
    log_qz = (C - 0.5 * log_var
              - (z - mu) ** 2 / (2 * jnp.exp(log_var))).sum(-1)
    log_pz = (C - 0.5 * z ** 2).sum(-1)
    h = z.reshape(-1, latent)
    decoder = params[num_encoder + 2:]
    for W, b in decoder[:-1]:
        h = act(h @ W + b)
    W, b = decoder[-1]
    logits = (h @ W + b).reshape(batch, eq_samples, iw_samples, -1)
    log_px_z = (x[:, None, None] * logits - jax.nn.softplus(logits)).sum(-1)
    return {'log_px_z': log_px_z, 'log_pz': log_pz, 'log_qz': log_qz,
            'log_w': log_px_z + log_pz - log_qz}


def bound(log_w):
    """Per-example IWAE bound, averaged over the eq axis."""
    return (jax.scipy.special.logsumexp(log_w, 2) -
            math.log(log_w.shape[2])).mean(1)


def adam_state(params):
    """Adam's state for `params`: the parameters, zero moments, step 0."""
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return {'params': params, 'm': zeros, 'v': zeros,
            't': jnp.zeros((), jnp.float32)}


def make_train_step(nonlinearity, iw_samples, eq_samples=1,
                    learning_rate=1e-3, beta1=0.9, beta2=0.999,
                    epsilon=1e-4, max_norm=None, clip_value=None):
    """A jitted step(state, x, key) -> (state, monitored): one Adam step on
    -bound after Parmesan's clipping (rescale to a total norm of at most
    `max_norm`, then clip each element to +-`clip_value`), returning the
    bound and the means of the three terms (a (4,) array)."""
    act = NONLINEARITIES[nonlinearity]

    def loss(params, x, noise):
        num_encoder = (len(params) - 3) // 2
        found = terms(params, x, noise, num_encoder, act, eq_samples,
                      iw_samples)
        value = bound(found['log_w']).mean()
        return -value, jnp.stack([value] + [
            found[k].mean() for k in ('log_px_z', 'log_pz', 'log_qz')])

    def step(state, x, key):
        params = state['params']
        latent = params[(len(params) - 3) // 2][0].shape[1]
        noise = jax.random.normal(
            key, (x.shape[0] * eq_samples * iw_samples, latent), x.dtype)
        grads, monitored = jax.grad(loss, has_aux=True)(params, x, noise)
        leaves = jax.tree_util.tree_leaves(grads)
        if max_norm:
            norm = jnp.sqrt(sum(jnp.sum(g ** 2) for g in leaves))
            scale = jnp.clip(norm, 0, max_norm) / (1e-7 + norm)
            grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
        if clip_value:
            grads = jax.tree_util.tree_map(
                lambda g: jnp.clip(g, -clip_value, clip_value), grads)
        t = state['t'] + 1
        a_t = learning_rate * jnp.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        m = jax.tree_util.tree_map(lambda m, g: beta1 * m + (1 - beta1) * g,
                                   state['m'], grads)
        v = jax.tree_util.tree_map(
            lambda v, g: beta2 * v + (1 - beta2) * g ** 2, state['v'], grads)
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - a_t * m / (jnp.sqrt(v) + epsilon),
            params, m, v)
        return {'params': params, 'm': m, 'v': v, 't': t}, monitored

    return jax.jit(step)


def log_weights_function(params, nonlinearity, seed=3):
    """A callable(x_batch, iw) -> float32 log-weights (len(x) * iw,) with
    eq = 1, as Parmesan's ``compile_evaluation()['log_weights']``, for
    :func:`parmesan.experiments.evaluation.importance_sampled_log_likelihood`
    (jit-compiled once per shape)."""
    act = NONLINEARITIES[nonlinearity]
    num_encoder = (len(params) - 3) // 2
    latent = params[num_encoder][0].shape[1]

    def log_w(params, x, key, iw):
        noise = jax.random.normal(key, (x.shape[0] * iw, latent), x.dtype)
        return terms(params, x, noise, num_encoder, act, 1,
                     iw)['log_w'].reshape(-1)

    compiled = jax.jit(log_w, static_argnums=3)
    keys = [jax.random.PRNGKey(seed)]

    def log_weights(x, iw):
        keys[0], key = jax.random.split(keys[0])
        return np.asarray(compiled(params, jnp.asarray(x, jnp.float32), key,
                                   int(iw)))
    return log_weights
