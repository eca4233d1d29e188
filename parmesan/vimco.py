"""VIMCO: variational inference for Monte Carlo objectives (Mnih & Rezende
2016), and the binary-latent autoencoder it trains on MNIST.

The K-sample bound of one example is

    L = log (1/K) sum_k w_k,    w_k = p(x, h_k) / q(h_k | x),  h_k ~ q(h | x).

Discrete latents cannot be reparameterised, so the gradient for the
inference network goes through the score function. VIMCO gives every sample
its own learning signal: L minus the bound recomputed with w_j replaced by
the geometric mean of the other K - 1 weights,

    L_{-j} = log (1/K) (sum_{i != j} w_i + exp(mean_{i != j} log w_i)),

which does not depend on h_j and is therefore a valid baseline. The whole
gradient is

    grad L ~= sum_j (L - L_{-j}) grad log q(h_j | x)
              + sum_j w~_j grad log w_j,       w~_j = w_j / sum_i w_i,

where the second term is the ordinary gradient of L through the
log-weights (it is all the generative model's parameters receive).
:func:`vimco_surrogate` is a scalar whose Theano gradient is exactly this.

:func:`run` trains :class:`BernoulliLatentVAE` with it; ``examples/vimco.py``
is its command line.

References
----------
Mnih, A. and Rezende, D. J. (2016). Variational inference for Monte Carlo
objectives. ICML.
"""
import argparse
import os
import sys
from collections import OrderedDict

import numpy as np
import lasagne
import theano
import theano.tensor as T
from lasagne.layers import (DenseLayer, InputLayer, get_all_layers,
                            get_all_params, get_output)

from .distributions import log_bernoulli
from .layers import BernoulliSampleLayer, NormalizeLayer
from .models import dense_block
from .plotting import save_image_grid
from .training import step_annealing_schedule
from .utils import log_mean_exp
from .vae_training import (NONLINEARITIES, load_data, train_and_evaluate,
                           vae_argument_parser)

__all__ = ['vimco_learning_signals', 'vimco_surrogate', 'BernoulliLatentVAE',
           'VIMCO_DEFAULTS', 'vimco_argument_parser', 'run']

#: The original Parmesan vimco.py's flag defaults, plus -nlayers 3 (its
#: encoder and decoder had three hidden layers each), evaluation every epoch
#: with the training K, and no batch norm (see :func:`vimco_argument_parser`).
VIMCO_DEFAULTS = dict(
    dataset='sample', eq_samples=1, iw_samples=50, lr=1e-3,
    anneal_lr_factor=0.99, anneal_lr_epoch=500, nhidden=200, nlatent=200,
    nlayers=3, batch_size=24, nepochs=10000, batch_norm=False,
    eval_epoch=1, eval_iw=50, outfolder='results/vimco')


def _as_rows(tensor, num_samples, what):
    """View per-sample values as (rows, K): batch-major vectors of length
    rows * K, or any tensor whose last axis holds the K samples."""
    if tensor.ndim == 1:
        if num_samples is None:
            raise ValueError('%s is a vector; pass num_samples (K) to say how '
                             'many consecutive entries belong to one example'
                             % what)
        return tensor.reshape((-1, num_samples))
    return tensor.reshape((-1, tensor.shape[-1]))


def _check_num_samples(num_samples):
    if isinstance(num_samples, (int, np.integer)) and num_samples < 2:
        raise ValueError('VIMCO needs at least 2 samples per example (the '
                         'baseline of a sample is built from the others), '
                         'got %d' % num_samples)


def vimco_learning_signals(log_weights, num_samples=None):
    """Per-sample VIMCO learning signals L - L_{-j}, computed in log space.

    L_{-j} is the K-sample bound with the weight of sample j replaced by the
    geometric mean of the other K - 1 weights (Mnih & Rezende 2016, eq. 9),
    not their arithmetic mean.

    Parameters
    ----------
    log_weights : Theano tensor
        log w = log p(x, h) - log q(h | x) per sample: a batch-major vector
        of length rows * K (row ``b*K + k`` is sample k of example b; with
        Parmesan's eq axis, ``b*eq*K + e*K + k``), or a tensor whose last
        axis has length K, such as (batch, K) or (batch, eq, K).
    num_samples : int or Theano integer scalar, optional
        K; needed only when `log_weights` is a vector. At least 2.

    Returns
    -------
    Theano matrix (rows, K), rows = batch (* eq): the learning signal of
    each sample.

    Example
    -------
    >>> log_w = T.matrix('log_w')                   # (batch, K)
    >>> signals = vimco_learning_signals(log_w)
    """
    _check_num_samples(num_samples)
    log_w = _as_rows(log_weights, num_samples, 'log_weights')
    count = log_w.shape[1]
    # Both the bound and the geometric mean shift with a constant added to a
    # row, and summing K centred log-weights loses far less precision than
    # summing K log-weights of -100s of nats each.
    centred = log_w - theano.gradient.zero_grad(
        T.max(log_w, axis=1, keepdims=True))
    others_mean = (centred.sum(axis=1, keepdims=True) - centred) / \
        T.cast(count - 1, log_w.dtype)
    index = T.arange(count)
    on_diagonal = T.eq(index.dimshuffle(0, 'x'), index.dimshuffle('x', 0))
    # replaced[r, j, i] is log w_i of row r, with w_j swapped for the
    # geometric mean of the others.
    replaced = T.switch(on_diagonal.dimshuffle('x', 0, 1),
                        others_mean.dimshuffle(0, 1, 'x'),
                        centred.dimshuffle(0, 'x', 1))
    bound = log_mean_exp(centred, axis=1, keepdims=True)
    return bound - log_mean_exp(replaced, axis=2)


def vimco_surrogate(log_weights, log_q, num_samples=None):
    """A scalar whose gradient is the VIMCO estimate of the gradient of the
    K-sample bound, averaged over the examples (and eq samples).

    Its value is the batch mean of L = log (1/K) sum_k w_k, so it doubles
    as the training bound to monitor. Its gradient is, per row,
    ``sum_j stopgrad(L - L_{-j}) grad log q(h_j|x) + sum_j stopgrad(w~_j)
    grad log w_j``, divided by the number of rows: parameters that enter
    only ``log_weights`` (the generative model) get the gradient of L, and
    the inference network also gets the score-function term with the
    per-sample VIMCO signals. The discrete samples h themselves must carry
    no gradient (Parmesan's Bernoulli sample layers pass none).

    Parameters
    ----------
    log_weights : Theano tensor
        log p(x, h_k) - log q(h_k | x), laid out as in
        :func:`vimco_learning_signals`.
    log_q : Theano tensor of the same layout
        log q(h_k | x) of the same samples.
    num_samples : int or Theano integer scalar, optional
        K; needed when the inputs are vectors.

    Returns
    -------
    Theano scalar to maximise.

    Example
    -------
    >>> terms = model.terms()                       # each (batch, eq, K)
    >>> objective = vimco_surrogate(terms['log_w'], terms['log_qh'])
    >>> updates = lasagne.updates.adam(-objective, params)
    """
    _check_num_samples(num_samples)
    log_w = _as_rows(log_weights, num_samples, 'log_weights')
    log_q = _as_rows(log_q, num_samples, 'log_q')
    signals = theano.gradient.zero_grad(vimco_learning_signals(log_w))
    bound = log_mean_exp(log_w, axis=1)
    # log_q - stopgrad(log_q) is zero in value but has log_q's gradient, so
    # the surrogate's value stays the bound.
    score = (signals * (log_q - theano.gradient.zero_grad(log_q))).sum(axis=1)
    return T.mean(bound + score)


class BernoulliLatentVAE(object):
    """An autoencoder with one layer of binary latent units: a sigmoid
    Bernoulli encoder q(h|x), a Bernoulli prior p(h) (fixed at 0.5 or
    learned) and a sigmoid Bernoulli decoder p(x|h).

    The Monte-Carlo and importance-sample counts are Theano integer scalars
    (``self.eq``, ``self.iw``); the K = iw samples of an example are rows
    ``b*eq*iw + e*iw + i`` of the sample layer's output.

    Parameters
    ----------
    num_features : int
    hidden_units : sequence of int
        Encoder widths; the decoder mirrors them.
    num_latent : int
    nonlinearity_encoder, nonlinearity_decoder : callables
    batch_norm : bool
        Batch-normalise every hidden layer. In the decoder this couples the
        K samples of a batch, which VIMCO's per-sample derivation assumes
        independent; off by default.
    learn_prior : bool
        Learn the prior's logits (a generative parameter) instead of a fixed
        Bernoulli(0.5).
    bernoulli_eps : float
        Clip of every Bernoulli probability inside the log-densities.

    Example
    -------
    >>> model = BernoulliLatentVAE(784, (200, 200), 200, T.tanh, T.tanh)
    >>> terms = model.terms()
    >>> objective = vimco_surrogate(terms['log_w'], terms['log_qh'])
    """

    def __init__(self, num_features, hidden_units, num_latent,
                 nonlinearity_encoder, nonlinearity_decoder,
                 batch_norm=False, learn_prior=False, bernoulli_eps=1e-6):
        self.x = T.matrix('x')
        self.eq = T.iscalar('eq_samples')
        self.iw = T.iscalar('iw_samples')
        self.num_latent = num_latent
        self.learn_prior = learn_prior
        self.bernoulli_eps = bernoulli_eps
        self.l_x = InputLayer((None, num_features), self.x)
        layer = self.l_x
        for units in hidden_units:
            layer = dense_block(layer, units, nonlinearity_encoder,
                                batch_norm)
        self.l_q_prob = DenseLayer(layer, num_latent,
                                   nonlinearity=lasagne.nonlinearities.sigmoid)
        self.l_h = BernoulliSampleLayer(self.l_q_prob, eq_samples=self.eq,
                                        iw_samples=self.iw)
        layer = self.l_h
        for units in reversed(hidden_units):
            layer = dense_block(layer, units, nonlinearity_decoder,
                                batch_norm)
        self.l_x_mu = DenseLayer(layer, num_features,
                                 nonlinearity=lasagne.nonlinearities.sigmoid)
        self.prior_logits = theano.shared(
            np.zeros(num_latent, dtype=theano.config.floatX), 'prior_logits')

    def prior_probability(self):
        """p(h_u = 1) for every latent unit, a Theano vector."""
        return T.nnet.sigmoid(self.prior_logits)

    def params(self, **tags):
        """The network's parameters (Lasagne tags such as trainable=True),
        plus the prior's logits when they are learned."""
        params = get_all_params(self.l_x_mu, **tags)
        return params + [self.prior_logits] if self.learn_prior else params

    def normalize_layers(self):
        return [layer for layer in get_all_layers(self.l_x_mu)
                if isinstance(layer, NormalizeLayer)]

    def terms(self, **kwargs):
        """Per-sample log-densities, each of shape (batch, eq, iw).

        Keyword arguments go to ``lasagne.layers.get_output``.

        Returns
        -------
        OrderedDict with log_px_h, log_ph, log_qh and log_w = log_px_h +
        log_ph - log_qh, and h, the samples (batch, eq, iw, num_latent).
        """
        h, q_prob, x_mu = get_output([self.l_h, self.l_q_prob, self.l_x_mu],
                                     **kwargs)
        per_sample = (self.x.shape[0], self.eq, self.iw, -1)
        per_example = lambda v: v.dimshuffle(0, 'x', 'x', 1)  # noqa: E731
        # The score-function estimator differentiates log q(h|x) at fixed,
        # discrete h: no gradient may reach the draws.
        h = theano.gradient.zero_grad(h).reshape(per_sample)
        eps = self.bernoulli_eps
        terms = OrderedDict()
        terms['log_px_h'] = log_bernoulli(per_example(self.x),
                                          x_mu.reshape(per_sample),
                                          eps=eps).sum(-1)
        terms['log_ph'] = log_bernoulli(
            h, self.prior_probability().dimshuffle('x', 'x', 'x', 0),
            eps=eps).sum(-1)
        terms['log_qh'] = log_bernoulli(h, per_example(q_prob),
                                        eps=eps).sum(-1)
        terms['log_w'] = terms['log_px_h'] + terms['log_ph'] - \
            terms['log_qh']
        terms['h'] = h
        return terms

    def objective(self, terms):
        """The VIMCO surrogate of :meth:`terms`: its value is the mean
        K-sample bound, its gradient VIMCO's estimate."""
        return vimco_surrogate(terms['log_w'], terms['log_qh'])

    def compile_evaluation(self):
        """Compiled helpers for evaluation and plots (deterministic).

        Returns
        -------
        dict of functions: log_weights(x, iw) with eq = 1; posterior_mean(x),
        q(h=1|x); reconstruct(x), p(x|h) at one h ~ q(h|x); decode(h);
        prior_probability(); with batch norm also collect(x), which fills
        the stored statistics.
        """
        one = T.constant(1, dtype='int32')
        terms = self.terms(deterministic=True)
        q_prob, x_mu = get_output([self.l_q_prob, self.l_x_mu],
                                  deterministic=True)
        h = T.matrix('h')
        decoded = get_output(self.l_x_mu, {self.l_h: h}, deterministic=True)
        functions = {
            'log_weights': theano.function(
                [self.x, self.iw], terms['log_w'].flatten(),
                givens=[(self.eq, one)]),
            'posterior_mean': theano.function([self.x], q_prob),
            'reconstruct': theano.function(
                [self.x], x_mu, givens=[(self.eq, one), (self.iw, one)]),
            'decode': theano.function([h], decoded),
            'prior_probability': theano.function([],
                                                 self.prior_probability()),
        }
        if self.normalize_layers():
            functions['collect'] = theano.function(
                [self.x], T.sum(get_output(self.l_x_mu, collect=True)),
                givens=[(self.eq, one), (self.iw, one)])
        return functions


#: Help texts the shared parser words for the Gaussian VAE.
_HELP = {
    'iw_samples': 'K, the samples per example of the bound VIMCO trains '
                  '(at least 2)',
    'nlatent': 'binary latent units',
    'batch_size': 'examples per mini-batch (each with K samples)',
}


def vimco_argument_parser(description, defaults=None):
    """The VAE trainers' flags (see
    :func:`parmesan.vae_training.vae_argument_parser`) with VIMCO's
    defaults, plus ``--prior``.

    Batch norm is off by default, unlike the original example: in the
    decoder it makes every log-weight depend on the other samples of the
    batch, which the score-function derivation assumes away, and it would
    make the evaluation depend on collected statistics. ``-batch_norm
    true`` still switches it on.

    Parameters
    ----------
    description : str
    defaults : dict, optional
        Overrides of :data:`VIMCO_DEFAULTS`.

    Returns
    -------
    argparse.ArgumentParser

    Example
    -------
    >>> args = vimco_argument_parser('VIMCO').parse_args(['-iw_samples', '5'])
    """
    parser = vae_argument_parser(description, dict(VIMCO_DEFAULTS,
                                                   **(defaults or {})))
    # The shared parser's only preset is Burda et al.'s Gaussian IWAE;
    # hide it from --help (run() rejects it) rather than advertise a flag
    # that cannot apply here.
    for action in parser._actions:
        if action.dest == 'preset':
            action.help = argparse.SUPPRESS
        elif action.dest in _HELP:
            action.help = _HELP[action.dest]
    parser.add_argument('--prior', choices=('fixed', 'learned'),
                        default='fixed',
                        help="'fixed': Bernoulli(0.5) latents, as the "
                             "original; 'learned': learn each unit's prior "
                             "probability")
    return parser


def run(argv=None, description='Train a binary-latent VAE on MNIST with '
        'VIMCO.', defaults=None):
    """Parse flags, train with VIMCO, evaluate, plot. Returns the final
    results dict (also written to OUTFOLDER/results.json).

    Writes log.txt, log.jsonl, checkpoint.npz, results.json, curves.png,
    samples.png (decoded prior samples), reconstructions.png and
    latent_activity.png to -outfolder.

    Parameters
    ----------
    argv : list of str, optional (default: sys.argv[1:])
    description : str
    defaults : dict, optional
        Overrides of :data:`VIMCO_DEFAULTS`.

    Example
    -------
    >>> run(['-iw_samples', '5', '-nepochs', '2', '-train_subset', '300',
    ...      '-outfolder', 'tmp'])
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = vimco_argument_parser(description, defaults)
    args = parser.parse_args(argv)
    if args.preset is not None:
        parser.error('--preset %s configures the Gaussian IWAE of '
                     'examples/iw_vae.py; it does not apply to VIMCO'
                     % args.preset)
    for name in ('eq_samples', 'batch_size', 'nepochs', 'eval_epoch',
                 'nhidden', 'nlatent', 'nlayers', 'eval_iw', 'final_iw'):
        if getattr(args, name) < 1:
            parser.error('-%s must be at least 1, got %d'
                         % (name, getattr(args, name)))
    if args.iw_samples < 2:
        parser.error('VIMCO needs -iw_samples of at least 2 (each sample\'s '
                     'baseline is built from the others), got %d'
                     % args.iw_samples)
    schedule = step_annealing_schedule(args.lr, args.anneal_lr_factor,
                                       args.anneal_lr_epoch)

    rng = np.random.RandomState(args.seed)
    lasagne.random.set_rng(np.random.RandomState(args.seed + 1))
    x_train, x_test, binarise_each_epoch = load_data(args)

    model = BernoulliLatentVAE(
        x_train.shape[1], [args.nhidden] * args.nlayers, args.nlatent,
        NONLINEARITIES[args.nonlin_enc], NONLINEARITIES[args.nonlin_dec],
        batch_norm=args.batch_norm, learn_prior=args.prior == 'learned')
    terms = model.terms()
    results, evaluation, _ = train_and_evaluate(
        args, argv, model, model.objective(terms), terms,
        ('log_px_h', 'log_ph', 'log_qh'), schedule, x_train, x_test,
        binarise_each_epoch, rng,
        title='%s (VIMCO, K=%d)' % (
            os.path.basename(os.path.normpath(args.outfolder)),
            args.iw_samples),
        reconstruction_title='test images and p(x|h), h ~ q(h|x)',
        activity_label='Cov_x q(h_u=1 | x)')
    draws = np.random.RandomState(0).uniform(size=(100, args.nlatent))
    prior_samples = (draws < evaluation['prior_probability']()).astype(
        theano.config.floatX)
    save_image_grid(evaluation['decode'](prior_samples),
                    os.path.join(args.outfolder, 'samples.png'),
                    title='p(x|h), h from the prior')
    return results
