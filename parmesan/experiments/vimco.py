"""A binary-latent autoencoder trained with VIMCO (Mnih & Rezende 2016) on
MNIST, the trainer of ``examples/vimco.py``.

The estimator itself is :func:`parmesan.objectives.vimco_surrogate`; this
module builds the model it trains and runs it with the VAE trainers'
flags, training loop and evaluation (:mod:`parmesan.experiments.vae`).
"""
import os
import sys
from collections import OrderedDict

import numpy as np
import lasagne
import theano
import theano.tensor as T
from lasagne.layers import DenseLayer, InputLayer, get_all_params, get_output

from ..distributions import log_bernoulli
from ..layers import BernoulliSampleLayer
from ..objectives import vimco_surrogate
from .cli import NONLINEARITIES, start_run
from .model import ExperimentModel
from .plotting import save_image_grid
from .vae import (compile_variational_step, dense_block, load_data,
                  parse_vae_args, train_and_evaluate, vae_argument_parser)

__all__ = ['BernoulliLatentVAE', 'VIMCO_DEFAULTS', 'vimco_argument_parser',
           'build_model', 'run', 'parse_run_args']

#: The original Parmesan vimco.py's flag defaults, plus 3 hidden layers (its
#: encoder and decoder had three each), evaluation every epoch with the
#: training K, and no batch norm: in the decoder it makes every log-weight
#: depend on the other samples of the batch, which the score-function
#: derivation assumes away (``-batch_norm true`` still switches it on).
VIMCO_DEFAULTS = dict(
    dataset='sample', eq_samples=1, iw_samples=50, lr=1e-3,
    anneal_lr_factor=0.99, anneal_lr_epoch=500, nhidden=200, nlatent=200,
    nlayers=3, batch_size=24, nepochs=10000, batch_norm=False,
    eval_epoch=1, eval_iw=50, outfolder='results/vimco')


class BernoulliLatentVAE(ExperimentModel):
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
    >>> model = BernoulliLatentVAE(784, (20,), 8, T.tanh, T.tanh)
    >>> lr = theano.shared(lasagne.utils.floatX(1e-3))
    >>> train, names = model.compile_train(lr, iw_samples=5)
    >>> names
    ['bound', 'log_px_h', 'log_ph', 'log_qh']
    """

    #: The per-sample terms whose means the training function returns.
    monitored_terms = ('log_px_h', 'log_ph', 'log_qh')
    #: Plot labels of the shared trainer.
    reconstruction_title = ('50 test images and their reconstructions, '
                            'means of p(x | h) at one h ~ q(h | x)')
    activity_label = 'Cov_x q(h_u=1 | x)'

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

    @property
    def output_layers(self):
        return [self.l_x_mu]

    def params(self, **tags):
        """The network's parameters (Lasagne tags such as trainable=True),
        plus the prior's logits when they are learned."""
        params = get_all_params(self.l_x_mu, **tags)
        return params + [self.prior_logits] if self.learn_prior else params

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

    def compile_train(self, learning_rate, eq_samples=1, iw_samples=2,
                      **adam):
        """Compile one Adam step on the VIMCO surrogate (see
        :meth:`parmesan.experiments.vae.VariationalAutoencoder.compile_train`;
        `iw_samples` is K, at least 2)."""
        if iw_samples < 2:
            raise ValueError('VIMCO needs iw_samples >= 2 (each sample\'s '
                             'baseline is built from the others), got %r'
                             % (iw_samples,))
        return compile_variational_step(self, learning_rate, eq_samples,
                                        iw_samples, **adam)

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
                [self.x], T.sum(get_output(self.l_x_mu, deterministic=True,
                                          collect=True)),
                givens=[(self.eq, one), (self.iw, one)])
        return functions


def vimco_argument_parser(description, defaults=None):
    """The VAE trainers' flags (see
    :func:`parmesan.experiments.vae.vae_argument_parser`) with
    :data:`VIMCO_DEFAULTS`, VIMCO's wording and ``--prior``.

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
    >>> vimco_argument_parser('VIMCO').parse_args([]).iw_samples
    50
    """
    parser = vae_argument_parser(description, dict(VIMCO_DEFAULTS,
                                                   **(defaults or {})),
                                 binary_latents=True)
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
    >>> run(['-iw_samples', '5', '-nepochs', '2', '--train-subset', '300',
    ...      '-outfolder', 'tmp'])                      # doctest: +SKIP
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args, schedule = parse_run_args(argv, description, defaults)
    with start_run(args, argv, trainer='vimco') as run_folder:
        return _train_vimco(args, run_folder, schedule)


def parse_run_args(argv, description='Train a binary-latent VAE on MNIST '
                   'with VIMCO.', defaults=None):
    """The flags of :func:`run` (same arguments), parsed and checked
    without training: ``(args, learning-rate schedule)``."""
    parser = vimco_argument_parser(description, defaults)
    return parse_vae_args(parser, argv, {'iw_samples': dict(
        low=2, why="(VIMCO builds each sample's baseline from the others)")})


def build_model(args):
    """The :class:`BernoulliLatentVAE` of parsed flags."""
    return BernoulliLatentVAE(
        784, [args.nhidden] * args.nlayers, args.nlatent,
        NONLINEARITIES[args.nonlin_enc], NONLINEARITIES[args.nonlin_dec],
        batch_norm=args.batch_norm, learn_prior=args.prior == 'learned')


def _train_vimco(args, run_folder, schedule):
    x_train, x_test, binarise_each_epoch = load_data(args)
    model = build_model(args)
    results, evaluation = train_and_evaluate(
        args, run_folder, model, schedule, x_train, x_test,
        binarise_each_epoch, title='%s (VIMCO, K=%d)' % (
            os.path.basename(os.path.normpath(args.outfolder)),
            args.iw_samples))
    draws = np.random.RandomState(0).uniform(size=(100, args.nlatent))
    prior_samples = (draws < evaluation['prior_probability']()).astype(
        theano.config.floatX)
    save_image_grid(evaluation['decode'](prior_samples),
                    os.path.join(args.outfolder, 'samples.png'),
                    title='100 samples: means of p(x | h), h from the prior')
    return results
