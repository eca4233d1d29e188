"""The benchmark's models written directly in PyTorch (eager), to time
Parmesan against.

:class:`TorchVAE` is :class:`parmesan.experiments.vae.VariationalAutoencoder` without
batch norm and flows: the same layers, the same reparameterised samples in
the same batch-major layout, the same log-densities and the same IWAE bound.
:func:`copy_parameters` copies a Parmesan model's weights into it, which
``tests/test_benchmarks.py`` uses to check that both compute the same bound
and gradients: the two benchmarks time the same model.

PyTorch is a benchmark-only dependency: ``pip install torch==2.13.0``.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['NONLINEARITIES', 'TorchVAE', 'parameter_pairs',
           'copy_parameters', 'train_step', 'make_optimizer',
           'log_weights_function']

#: Parmesan's nonlinearity names, as torch functions.
NONLINEARITIES = {'softplus': F.softplus, 'tanh': torch.tanh,
                  'rectify': F.relu}

#: -log(2 pi) / 2, as parmesan.distributions.C.
C = -0.5 * math.log(2 * math.pi)


class TorchVAE(nn.Module):
    """Gaussian encoder, Bernoulli decoder, IWAE bound.

    Parameters
    ----------
    num_features, hidden_units, num_latent : as Parmesan's
    nonlinearity : str, a key of NONLINEARITIES (encoder and decoder)
    bernoulli_eps : float
        As Parmesan's: 0 for the exact likelihood from the logits, else the
        logits clipped to +-log((1 - eps) / eps).
    """

    def __init__(self, num_features, hidden_units, num_latent, nonlinearity,
                 bernoulli_eps=0.0):
        super().__init__()
        self.act = NONLINEARITIES[nonlinearity]
        widths = [num_features] + list(hidden_units)
        self.encoder = nn.ModuleList(nn.Linear(a, b)
                                     for a, b in zip(widths, widths[1:]))
        self.mu = nn.Linear(widths[-1], num_latent)
        self.log_var = nn.Linear(widths[-1], num_latent)
        back = [num_latent] + list(reversed(hidden_units))
        self.decoder = nn.ModuleList(nn.Linear(a, b)
                                     for a, b in zip(back, back[1:]))
        self.out = nn.Linear(back[-1], num_features)
        self.logit_bound = math.log((1 - bernoulli_eps) / bernoulli_eps) \
            if bernoulli_eps > 0 else None

    def terms(self, x, eq_samples, iw_samples, noise=None):
        """Per-sample log p(x|z), log p(z), log q(z|x) and log w, each of
        shape (batch, eq, iw).

        `noise`: optional standard-normal draws of shape
        (batch * eq * iw, num_latent) in Parmesan's batch-major layout.
        """
        h = x
        for layer in self.encoder:
            h = self.act(layer(h))
        mu, log_var = self.mu(h), self.log_var(h)
        batch, latent = mu.shape
        shape = (batch, eq_samples, iw_samples, latent)
        if noise is None:
            noise = torch.randn(shape, dtype=mu.dtype, device=mu.device)
        else:
            noise = noise.reshape(shape)
        mu, log_var = mu[:, None, None], log_var[:, None, None]
        z = mu + torch.exp(0.5 * log_var) * noise
        log_qz = (C - 0.5 * log_var
                  - (z - mu) ** 2 / (2 * torch.exp(log_var))).sum(-1)
        log_pz = (C - 0.5 * z ** 2).sum(-1)
        h = z.reshape(-1, latent)
        for layer in self.decoder:
            h = self.act(layer(h))
        logits = self.out(h).reshape(batch, eq_samples, iw_samples, -1)
        if self.logit_bound is not None:
            logits = logits.clamp(-self.logit_bound, self.logit_bound)
        log_px_z = (x[:, None, None] * logits - F.softplus(logits)).sum(-1)
        return {'log_px_z': log_px_z, 'log_pz': log_pz, 'log_qz': log_qz,
                'log_w': log_px_z + log_pz - log_qz}

    @staticmethod
    def bound(terms):
        """Per-example IWAE bound, averaged over the eq axis."""
        log_w = terms['log_w']
        return (torch.logsumexp(log_w, 2) - math.log(log_w.shape[2])).mean(1)


def parameter_pairs(parmesan_model, torch_model):
    """[(Lasagne layer, torch.nn.Linear)] of the corresponding dense layers
    of a :class:`parmesan.experiments.vae.VariationalAutoencoder` (no batch norm, no
    flows) and a :class:`TorchVAE` of the same shape. A Lasagne W is the
    transpose of a torch weight."""
    from lasagne.layers import DenseLayer, get_all_layers
    heads = (parmesan_model.l_mu, parmesan_model.l_log_var)
    dense = [layer for layer in get_all_layers(parmesan_model.l_x_mu)
             if isinstance(layer, DenseLayer) and layer not in heads]
    encoder = len(torch_model.encoder)
    ordered = dense[:encoder] + list(heads) + dense[encoder:]
    targets = list(torch_model.encoder) + [torch_model.mu,
                                           torch_model.log_var] + \
        list(torch_model.decoder) + [torch_model.out]
    if len(ordered) != len(targets):
        raise ValueError('the models differ: %d and %d dense layers'
                         % (len(ordered), len(targets)))
    for source, target in zip(ordered, targets):
        shape = source.W.get_value(borrow=True).shape
        if shape[::-1] != tuple(target.weight.shape):
            raise ValueError('shape mismatch: W %s, torch weight %s'
                             % (shape, tuple(target.weight.shape)))
    return list(zip(ordered, targets))


def copy_parameters(parmesan_model, torch_model):
    """Copy the weights of a :class:`parmesan.experiments.vae.VariationalAutoencoder`
    (no batch norm, no flows) into a :class:`TorchVAE` of the same shape."""
    with torch.no_grad():
        for source, target in parameter_pairs(parmesan_model, torch_model):
            target.weight.copy_(torch.from_numpy(np.ascontiguousarray(
                source.W.get_value().T, dtype=np.float32)))
            target.bias.copy_(torch.from_numpy(np.asarray(
                source.b.get_value(), dtype=np.float32)))


def make_optimizer(model, learning_rate=1e-3, epsilon=1e-4):
    """Adam as Parmesan's trainers configure it (beta 0.9, 0.999)."""
    return torch.optim.Adam(model.parameters(), lr=learning_rate,
                            betas=(0.9, 0.999), eps=epsilon)


def train_step(model, optimizer, x, eq_samples, iw_samples, max_norm=None,
               clip_value=None):
    """One Adam step on -bound, with Parmesan's gradient clipping: rescale
    to a total norm of at most `max_norm`, then clip each element. Returns
    the monitored values of Parmesan's trainers (bound and the three terms'
    means) as floats."""
    terms = model.terms(x, eq_samples, iw_samples)
    bound = model.bound(terms).mean()
    optimizer.zero_grad(set_to_none=True)
    (-bound).backward()
    params = [p for p in model.parameters()]
    if max_norm:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
    if clip_value:
        torch.nn.utils.clip_grad_value_(params, clip_value)
    optimizer.step()
    monitored = torch.stack([bound.detach()] + [
        terms[k].detach().mean() for k in ('log_px_z', 'log_pz', 'log_qz')])
    return monitored.tolist()


def log_weights_function(model):
    """A callable(x_batch, iw) -> float32 log-weights (len(x) * iw,) with
    eq = 1, as Parmesan's ``compile_evaluation()['log_weights']``, for
    :func:`parmesan.experiments.evaluation.importance_sampled_log_likelihood`."""
    device = next(model.parameters()).device

    def log_weights(x, iw):
        with torch.no_grad():
            terms = model.terms(torch.from_numpy(np.asarray(
                x, np.float32)).to(device), 1, int(iw))
            return terms['log_w'].reshape(-1).cpu().numpy()
    return log_weights
