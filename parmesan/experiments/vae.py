"""VAEs and IWAEs with Gaussian latents and normalizing flows on binarised
MNIST (Kingma & Welling 2013; Burda et al. 2015; Rezende & Mohamed 2015),
the trainer of ``examples/vae_vanilla.py``, ``iw_vae.py`` and
``iw_vae_normflow.py``, and the part of it that the VIMCO trainer shares.

The command-line flags are the original Parmesan examples' (``-eq_samples``,
``-iw_samples``, ``-nflows``, ...), plus kebab-case flags of this trainer
(``--eval-iw``, ``--preset burda``, ...) and the flags of every run
(:func:`parmesan.experiments.cli.add_run_flags`).
"""
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import lasagne
import theano
import theano.tensor as T
from lasagne.layers import (DenseLayer, InputLayer, NonlinearityLayer,
                            get_output)

from .. import datasets
from ..distributions import (kl_normal2_stdnormal, log_bernoulli_logits,
                             log_normal2, log_stdnormal)
from ..layers import (InverseAutoregressiveFlowLayer, ListIndexLayer,
                      NormalizeLayer, NormalizingPlanarFlowLayer,
                      NormalizingRadialFlowLayer, SampleLayer,
                      ScaleAndShiftLayer)
from ..objectives import importance_weighted_bound
from ..updates import adam_with_clipping, burda_schedule, \
    step_annealing_schedule
from .cli import (NONLINEARITIES, add_run_flags, argument_parser,
                  parse_args, start_run, str2bool, write_results)
from .compiling import compiling
from .evaluation import (active_units, collect_statistics,
                         importance_sampled_log_likelihood)
from .model import ExperimentModel
from .plotting import plot_history, plot_per_latent, save_image_grid
from .training import check_finite, fit, iterate_minibatches, progress

__all__ = ['FLOWS', 'BURDA', 'BURDA_IWAE_TEST_LL', 'LIMITS',
           'VAE_VANILLA_DEFAULTS', 'dense_block', 'VariationalAutoencoder',
           'compile_variational_step', 'vae_argument_parser',
           'add_flow_flags', 'trainer_argument_parser', 'parse_vae_args',
           'apply_preset', 'load_data', 'build_model', 'run',
           'parse_run_args',
           'train_and_evaluate']

#: The flows :class:`VariationalAutoencoder` can stack after its sample layer.
FLOWS = ('planar', 'radial', 'iaf')

#: This trainer's bounds beyond :data:`parmesan.experiments.cli.ALLOWED`:
#: MNIST's 60000 training images (train and validation merged) and 10000
#: test images.
LIMITS = {'train_subset': dict(high=60000, why='(the training images)'),
          'eval_subset': dict(high=10000, why='(the test images)'),
          'test_subset': dict(high=10000, why='(the test images)')}

#: Burda et al. (2015), MNIST, one stochastic layer.
BURDA = dict(nhidden=200, nlatent=50, nonlin_enc='tanh', nonlin_dec='tanh',
             batch_size=20, batch_norm=False, lr=1e-3, dataset='sample',
             adam_epsilon=1e-4, max_norm=None, clip_value=None)

#: Burda et al. (2015), Table 1, MNIST, one stochastic layer: the IWAE's
#: test log-likelihood (L_5000) by its number of importance samples k.
BURDA_IWAE_TEST_LL = {1: -86.76, 5: -85.54, 50: -84.78}

#: The original vae_vanilla.py's hard-coded settings, as flag defaults.
VAE_VANILLA_DEFAULTS = dict(
    dataset='fixed', batch_size=100, nhidden=200, nlayers=2, nlatent=100,
    nonlin_enc='softplus', nonlin_dec='softplus', lr=3e-4, nepochs=1000,
    batch_norm=False, adam_epsilon=1e-8, max_norm=5.0, clip_value=1.0,
    # A factor of 1 switches annealing off whatever -nepochs is.
    anneal_lr_factor=1.0, anneal_lr_epoch=1000,
    seed=1234, outfolder='results/vae_vanilla')


def dense_block(incoming, num_units, nonlinearity, batch_norm=False,
                W=lasagne.init.GlorotUniform()):
    """Dense layer, optionally followed by batch normalisation
    (NormalizeLayer + ScaleAndShiftLayer) before the nonlinearity."""
    if not batch_norm:
        return DenseLayer(incoming, num_units, W=W, nonlinearity=nonlinearity)
    layer = DenseLayer(incoming, num_units, W=W, b=None, nonlinearity=None)
    layer = NormalizeLayer(layer, alpha='running_average')
    return NonlinearityLayer(ScaleAndShiftLayer(layer), nonlinearity)


def _flow_layer(kind, incoming, index, iaf_hidden):
    if kind == 'planar':
        return NormalizingPlanarFlowLayer(incoming)
    if kind == 'radial':
        return NormalizingRadialFlowLayer(incoming)
    return InverseAutoregressiveFlowLayer(incoming, num_hidden=iaf_hidden,
                                          reverse=bool(index % 2))


def compile_variational_step(model, learning_rate, eq_samples, iw_samples,
                             **adam):
    """One Adam step on ``model.objective(model.terms())``, with the sample
    counts fixed, for the models of this module and of VIMCO.

    Returns
    -------
    (function, names), as :meth:`VariationalAutoencoder.compile_train`.
    """
    terms = model.terms()
    objective = model.objective(terms)
    updates = adam_with_clipping(-objective, model.params(trainable=True),
                                 learning_rate, **adam)
    monitored = [objective] + [terms[k].mean() for k in model.monitored_terms]
    train = theano.function(
        [model.x], monitored, updates=updates,
        givens=[(model.eq, theano.shared(np.int32(eq_samples), 'eq_samples')),
                (model.iw, theano.shared(np.int32(iw_samples), 'iw_samples'))])
    return train, ['bound'] + list(model.monitored_terms)


class VariationalAutoencoder(ExperimentModel):
    """A VAE / IWAE with a Gaussian latent layer and a Bernoulli decoder,
    optionally with K normalizing flows after the sample layer.

    The Monte-Carlo and importance-sample counts are Theano integer scalars
    (``self.eq``, ``self.iw``), so one compiled graph trains with any k and
    evaluates with thousands of samples.

    Parameters
    ----------
    num_features : int
    hidden_units : sequence of int
        Encoder widths; the decoder mirrors them.
    num_latent : int
    nonlinearity_encoder, nonlinearity_decoder : callables
    batch_norm : bool
        Batch-normalise every hidden layer (statistics in running-average
        mode; see :func:`parmesan.evaluation.collect_statistics`).
    flow : None or one of FLOWS
    num_flows : int
    iaf_hidden : int
        Hidden units of each IAF step's autoregressive network.
    bernoulli_eps : float
        0 (default): the exact log-likelihood from the decoder's logits
        (:func:`parmesan.distributions.log_bernoulli_logits`), finite for
        any logit, also in float32. A positive eps clips the probabilities
        to [eps, 1 - eps] (through the logits) as Parmesan's old
        probability form did; Theano does not vectorise that clip, which
        made evaluation with 5000 samples 1.6x slower.
    analytic_kl : bool
        Train on the ELBO with the analytic KL (Kingma & Welling) instead
        of the importance-weighted bound; needs iw_samples = 1, no flows.

    Example
    -------
    >>> vae = VariationalAutoencoder(784, (20,), 5, T.tanh, T.tanh)
    >>> lr = theano.shared(lasagne.utils.floatX(1e-3))
    >>> train, names = vae.compile_train(lr, iw_samples=5)
    >>> names
    ['bound', 'log_px_z', 'log_pz', 'log_qz']
    """

    #: The per-sample terms whose means the training function returns.
    monitored_terms = ('log_px_z', 'log_pz', 'log_qz')
    #: Plot labels of the shared trainer.
    reconstruction_title = ('50 test images and their reconstructions, '
                            'means of p(x | z) at one z ~ q(z | x)')
    activity_label = 'Cov_x E[z_u | x]'

    def __init__(self, num_features, hidden_units, num_latent,
                 nonlinearity_encoder, nonlinearity_decoder,
                 batch_norm=False, flow=None, num_flows=0, iaf_hidden=200,
                 bernoulli_eps=0.0, analytic_kl=False):
        if flow is not None and flow not in FLOWS:
            raise ValueError('unknown flow %r; use one of %s'
                             % (flow, ', '.join(FLOWS)))
        if num_flows and flow is None:
            raise ValueError('num_flows=%d needs a flow type' % num_flows)
        if analytic_kl and num_flows:
            raise ValueError('the analytic KL holds only without flows')
        self.analytic_kl = analytic_kl
        self.x = T.matrix('x')
        self.eq = T.iscalar('eq_samples')
        self.iw = T.iscalar('iw_samples')
        self.bernoulli_eps = bernoulli_eps
        self.l_x = InputLayer((None, num_features), self.x)
        layer = self.l_x
        for units in hidden_units:
            layer = dense_block(layer, units, nonlinearity_encoder,
                                batch_norm)
        self.l_mu = DenseLayer(layer, num_latent, nonlinearity=None)
        self.l_log_var = DenseLayer(layer, num_latent, nonlinearity=None)
        self.l_z0 = SampleLayer(self.l_mu, self.l_log_var,
                                eq_samples=self.eq, iw_samples=self.iw)
        layer, self.l_logdets = self.l_z0, []
        for index in range(num_flows):
            flow_layer = _flow_layer(flow, layer, index, iaf_hidden)
            layer = ListIndexLayer(flow_layer, 0)
            self.l_logdets.append(ListIndexLayer(flow_layer, 1))
        self.l_z = layer
        for units in reversed(hidden_units):
            layer = dense_block(layer, units, nonlinearity_decoder,
                                batch_norm)
        # The likelihood is computed from the logits: exact, and far
        # cheaper than clipping the probabilities and taking two logs.
        self.l_x_logits = DenseLayer(layer, num_features, nonlinearity=None)
        self.l_x_mu = NonlinearityLayer(self.l_x_logits,
                                        lasagne.nonlinearities.sigmoid)

    @property
    def output_layers(self):
        return [self.l_x_mu] + self.l_logdets

    def terms(self, **kwargs):
        """Per-sample log-densities, each of shape (batch, eq, iw), and the
        analytic KL of q0 per example.

        Keyword arguments go to ``lasagne.layers.get_output`` (e.g.
        ``deterministic=True`` or ``collect=True``).

        Returns
        -------
        OrderedDict with log_px_z, log_pz, log_qz (the flow-corrected
        log q_K(z_K | x) = log q0(z0 | x) - sum of log-dets), log_w and
        kl_analytic (batch,).
        """
        layers = [self.l_z0, self.l_z, self.l_mu, self.l_log_var,
                  self.l_x_logits] + self.l_logdets
        outputs = get_output(layers, **kwargs)
        z0, zk, mu, log_var, x_logits = outputs[:5]
        logdets = outputs[5:]
        per_sample = (self.x.shape[0], self.eq, self.iw, -1)
        per_example = lambda v: v.dimshuffle(0, 'x', 'x', 1)  # noqa: E731
        log_qz = log_normal2(z0.reshape(per_sample), per_example(mu),
                             per_example(log_var)).sum(-1)
        for logdet in logdets:
            log_qz -= logdet.reshape(per_sample[:3])
        terms = OrderedDict()
        # Both operands as equal-shaped contiguous matrices: Theano's loop
        # over a broadcast 4-d operand is not vectorised, and this
        # element-wise term dominates evaluation with thousands of samples.
        x_per_sample = T.repeat(self.x, self.eq * self.iw, axis=0)
        terms['log_px_z'] = log_bernoulli_logits(
            x_per_sample, x_logits, eps=self.bernoulli_eps).sum(
            -1).reshape(per_sample[:3])
        terms['log_pz'] = log_stdnormal(zk.reshape(per_sample)).sum(-1)
        terms['log_qz'] = log_qz
        terms['log_w'] = terms['log_px_z'] + terms['log_pz'] - log_qz
        terms['kl_analytic'] = kl_normal2_stdnormal(mu, log_var).sum(-1)
        return terms

    def bound(self, terms, analytic_kl=False):
        """Per-example bound: the IWAE bound averaged over eq, or with
        `analytic_kl` the ELBO E_q[log p(x|z)] - KL(q0 || p) (no flows)."""
        if analytic_kl:
            if self.l_logdets:
                raise ValueError('the analytic KL holds only without flows')
            return terms['log_px_z'].mean(axis=(1, 2)) - terms['kl_analytic']
        return importance_weighted_bound(terms['log_w'].flatten(), self.eq,
                                         self.iw)

    def objective(self, terms):
        """The batch mean of :meth:`bound`, maximised in training."""
        return self.bound(terms, analytic_kl=self.analytic_kl).mean()

    def compile_train(self, learning_rate, eq_samples=1, iw_samples=1,
                      **adam):
        """Compile one Adam step on :meth:`objective`.

        Parameters
        ----------
        learning_rate : Theano shared scalar
        eq_samples, iw_samples : int
            Monte-Carlo and importance samples per example.
        **adam : keyword arguments of
            :func:`parmesan.updates.adam_with_clipping` (epsilon,
            max_norm, clip_value).

        Returns
        -------
        (function, names): ``function(x)`` takes one step and returns the
        objective and the means of :attr:`monitored_terms`, named by
        `names` ('bound' first).
        """
        return compile_variational_step(self, learning_rate, eq_samples,
                                        iw_samples, **adam)

    def compile_evaluation(self):
        """Compiled helpers for evaluation and plots (deterministic).

        Returns
        -------
        dict of functions: log_weights(x, iw) with eq = 1; posterior_mean(x);
        kl_per_unit(x); reconstruct(x); decode(z); collect(x).
        """
        one = T.constant(1, dtype='int32')
        terms = self.terms(deterministic=True)
        mu, log_var, x_mu = get_output(
            [self.l_mu, self.l_log_var, self.l_x_mu], deterministic=True)
        z = T.matrix('z')
        decoded = get_output(self.l_x_mu, {self.l_z: z}, deterministic=True)
        collected = get_output(self.output_layers, deterministic=True,
                               collect=True)
        return {
            'log_weights': theano.function(
                [self.x, self.iw], terms['log_w'].flatten(),
                givens=[(self.eq, one)]),
            'posterior_mean': theano.function([self.x], mu),
            'kl_per_unit': theano.function(
                [self.x], kl_normal2_stdnormal(mu, log_var).mean(0)),
            'reconstruct': theano.function(
                [self.x], x_mu, givens=[(self.eq, one), (self.iw, one)]),
            'decode': theano.function([z], decoded),
            'collect': theano.function(
                [self.x], [T.sum(o) for o in collected],
                givens=[(self.eq, one), (self.iw, one)],
                on_unused_input='ignore'),
        }


def vae_argument_parser(description, defaults=None, binary_latents=False):
    """The flags of the VAE trainers (and VIMCO's), with per-script
    defaults.

    Parameters
    ----------
    description : str
    defaults : dict, optional
        The script's own defaults, by destination name.
    binary_latents : bool
        VIMCO's wording of the sample flags, and no ``--preset`` (Burda et
        al.'s preset is a Gaussian IWAE).

    Returns
    -------
    argparse.ArgumentParser

    Example
    -------
    >>> args = vae_argument_parser('IWAE').parse_args(['-iw_samples', '5'])
    >>> args.iw_samples, args.eval_iw
    (5, 5000)
    """
    parser = argument_parser(description)
    add = parser.add_argument
    add('-dataset', choices=('sample', 'fixed'), default='sample',
        help="'sample': MNIST re-binarised every epoch (test set binarised "
             "once, seed 1234); 'fixed': Larochelle's fixed binarisation")
    add('-eq_samples', type=int, default=1,
        help='Monte-Carlo samples per example (averaged)')
    add('-iw_samples', type=int, default=1,
        help="K, the samples per example of the bound VIMCO trains (at "
             "least 2)" if binary_latents else
             'importance samples per Monte-Carlo sample (k of the IWAE)')
    add('-lr', type=float, default=1e-3, help='learning rate')
    add('-anneal_lr_factor', type=float, default=0.9995,
        help='multiply the learning rate by this every epoch ...')
    add('-anneal_lr_epoch', type=int, default=1000,
        help='... from this epoch on')
    add('-batch_norm', type=str2bool, default=True,
        help='batch-normalise the hidden layers')
    add('-nonlin_enc', choices=tuple(NONLINEARITIES), default='rectify',
        help="nonlinearity of the encoder's hidden layers")
    add('-nonlin_dec', choices=tuple(NONLINEARITIES), default='rectify',
        help="nonlinearity of the decoder's hidden layers")
    add('-nhidden', type=int, default=500, help='units per hidden layer')
    add('--num-layers', dest='nlayers', type=int, default=2,
        help='hidden layers in the encoder (the decoder mirrors it)')
    add('-nlatent', type=int, default=100,
        help='binary latent units' if binary_latents else 'latent units')
    add('-batch_size', type=int, default=100,
        help='examples per mini-batch' +
             (' (each with K samples)' if binary_latents else ''))
    add('-nepochs', type=int, default=10000, help='the last epoch to train')
    add('-eval_epoch', type=int, default=10,
        help='evaluate on the test set every this many epochs')
    add('--eval-iw', type=int, default=5000,
        help='importance samples of the periodic test evaluation')
    add('--eval-subset', type=int, default=None,
        help='evaluate periodically on the first N test images only')
    add('--final-iw', type=int, default=5000,
        help='importance samples of the final test log-likelihood')
    add('--test-subset', type=int, default=None,
        help='the final test log-likelihood on the first N test images '
             'only (default: all 10,000)')
    add('--adam-epsilon', type=float, default=1e-4, help="Adam's epsilon")
    add('--max-norm', type=float, default=5.0,
        help='rescale gradients to this total norm (0: off)')
    add('--clip-value', type=float, default=1.0,
        help='then clip each gradient element to +-this (0: off)')
    if not binary_latents:
        add('--preset', choices=('burda',), default=None,
            help="'burda': Burda et al. 2015 exactly: 784-200-200-50 tanh, "
                 'batch 20, Adam eps 1e-4, no clipping, no batch norm, '
                 '3^i epochs at 1e-3*10^(-i/7), i=0..7 (3280 epochs); '
                 'flags given explicitly still win')
    add_run_flags(parser, outfolder='results/iw_vae')
    if defaults:
        parser.set_defaults(**defaults)
    return parser


def apply_preset(args, given=()):
    """Fill in a preset's values for every flag not given on the command
    line; return the learning-rate schedule.

    Parameters
    ----------
    args : argparse.Namespace
    given : set of str
        Destinations set on the command line, in any spelling
        (:func:`parmesan.experiments.cli.given_flags`); they win over the
        preset.
    """
    if getattr(args, 'preset', None) == 'burda':
        for key, value in BURDA.items():
            if key not in given:
                setattr(args, key, value)
        schedule, epochs = burda_schedule(args.lr)
        if 'nepochs' not in given:
            args.nepochs = epochs
        return schedule
    return step_annealing_schedule(args.lr, args.anneal_lr_factor,
                                   args.anneal_lr_epoch)


def load_data(args):
    """Training images (60k: train and validation merged, as Burda et al.
    and Parmesan did), test images (binarised once) and whether to
    re-binarise the training images every epoch."""
    if args.dataset == 'fixed':
        x_train, x_valid, x_test = datasets.load_mnist_binarized(
            args.data_dir)
        x_train, binarise_each_epoch = np.concatenate([x_train, x_valid]), \
            False
    else:
        x_train, _, x_valid, _, x_test, _ = datasets.load_mnist_realval(
            args.data_dir)
        _, _, _, _, x_test, _ = datasets.load_mnist_dynamic(args.data_dir)
        x_train, binarise_each_epoch = np.concatenate([x_train, x_valid]), \
            True
    if args.train_subset:
        x_train = x_train[:args.train_subset]
    return x_train.astype(theano.config.floatX), \
        x_test.astype(theano.config.floatX), binarise_each_epoch


def add_flow_flags(parser):
    """``-nflows``, ``--flow`` and ``--iaf-hidden`` (iw_vae_normflow)."""
    parser.add_argument('-nflows', type=int, default=5,
                        help='flow layers after the sample layer')
    parser.add_argument('--flow', choices=FLOWS, default='planar',
                        help='the kind of flow layer')
    parser.add_argument('--iaf-hidden', type=int, default=200,
                        help='hidden units of each IAF network')


def trainer_argument_parser(description, defaults=None, analytic_kl=False,
                            flows=False):
    """The flags of one VAE trainer: :func:`vae_argument_parser`, plus
    :func:`add_flow_flags` for a trainer with flows.

    Parameters
    ----------
    description : str
    defaults : dict, optional
        The trainer's own defaults, by destination name.
    analytic_kl : bool
        Unused here (it is an option of :func:`run`, which takes the same
        options).
    flows : bool
        Add the flow flags.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = vae_argument_parser(description, defaults)
    if flows:
        add_flow_flags(parser)
    return parser


def parse_vae_args(parser, argv, limits=None):
    """Parse and check the flags of a parser built on
    :func:`vae_argument_parser`, a preset included
    (:func:`parmesan.experiments.cli.parse_args`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    argv : list of str
    limits : dict, optional
        More bounds, added to :data:`LIMITS`.

    Returns
    -------
    (args, learning-rate schedule)
    """
    return parse_args(parser, argv, dict(LIMITS, **(limits or {})),
                      preset=apply_preset)


def run(argv=None, description='Train a VAE / IWAE on MNIST.', defaults=None,
        analytic_kl=False, flows=False):
    """Parse flags, train, evaluate, plot. Returns the final results dict.

    Parameters
    ----------
    argv : list of str, optional (default: sys.argv[1:])
    description : str
    defaults : dict, optional
        The script's own flag defaults.
    analytic_kl : bool
        Train on the ELBO with the analytic KL (Kingma & Welling).
    flows : bool
        Add ``-nflows``, ``--flow`` and ``--iaf-hidden``
        (iw_vae_normflow).

    Example
    -------
    >>> run(['-nepochs', '2', '--train-subset', '300', '--eval-iw', '5',
    ...      '--final-iw', '5', '-outfolder', 'tmp'])   # doctest: +SKIP
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args, schedule = parse_run_args(argv, description, defaults,
                                    analytic_kl, flows)
    with start_run(args, argv, trainer=_trainer_name(analytic_kl, flows)) \
            as run_folder:
        return _train_vae(args, run_folder, schedule, analytic_kl, flows)


def _trainer_name(analytic_kl, flows):
    """The name of the trainer of :func:`run` with these options."""
    return 'iw_vae_normflow' if flows else \
        'vae_vanilla' if analytic_kl else 'iw_vae'


def parse_run_args(argv, description='Train a VAE / IWAE on MNIST.',
                   defaults=None, analytic_kl=False, flows=False):
    """The flags of :func:`run` (same arguments), parsed and checked
    without training: ``(args, learning-rate schedule)``."""
    parser = trainer_argument_parser(description, defaults, flows=flows)
    # Checked with the other flags, before the output folder is made.
    limits = {'iw_samples': dict(high=1, why='(the analytic-KL ELBO '
                                 'needs -iw_samples 1)')} \
        if analytic_kl else None
    return parse_vae_args(parser, argv, limits)


def build_model(args, analytic_kl=False, flows=False):
    """The :class:`VariationalAutoencoder` of parsed flags (and the
    trainer's options)."""
    return VariationalAutoencoder(
        784, [args.nhidden] * args.nlayers, args.nlatent,
        NONLINEARITIES[args.nonlin_enc], NONLINEARITIES[args.nonlin_dec],
        batch_norm=args.batch_norm,
        flow=args.flow if flows else None,
        num_flows=args.nflows if flows else 0,
        iaf_hidden=getattr(args, 'iaf_hidden', 200), analytic_kl=analytic_kl)


def _train_vae(args, run_folder, schedule, analytic_kl, flows):
    x_train, x_test, binarise_each_epoch = load_data(args)
    model = build_model(args, analytic_kl, flows)
    results, evaluation = train_and_evaluate(
        args, run_folder, model, schedule, x_train, x_test,
        binarise_each_epoch, title=os.path.basename(args.outfolder))
    save_image_grid(evaluation['decode'](
        np.random.RandomState(0).randn(100, args.nlatent).astype(
            theano.config.floatX)),
        os.path.join(args.outfolder, 'samples.png'),
        title='100 samples: means of p(x | z), z ~ N(0, I)')
    plot_per_latent(evaluation['kl_per_unit'](x_test),
                    os.path.join(args.outfolder, 'latent_kl.png'),
                    'KL(q(z_u|x) || p(z_u)), nats', title='KL per latent unit')
    return results


class _Evaluator(object):
    """The evaluation of a variational trainer: batch-norm statistics from
    the training images, then L_1 and L_k on test images."""

    def __init__(self, model, training_images):
        self.functions = model.compile_evaluation()
        self.normalize_layers = model.normalize_layers()
        self.training_images = training_images
        self.prepared_after = None

    def prepare(self, epoch):
        """Collect the batch-norm statistics of the model after `epoch`,
        unless they were collected for it already (the final evaluation
        then uses the statistics the checkpoint holds)."""
        if self.normalize_layers and self.prepared_after != epoch:
            collect_statistics(self.functions['collect'],
                               self.training_images(), self.normalize_layers)
        self.prepared_after = epoch

    def test_bounds(self, x, num_samples, epoch):
        self.prepare(epoch)
        log_weights = self.functions['log_weights']
        row = OrderedDict(test_L1=float(np.mean(
            importance_sampled_log_likelihood(log_weights, x, 1,
                                              show_progress=False))))
        row['test_L%d' % num_samples] = float(np.mean(
            importance_sampled_log_likelihood(log_weights, x, num_samples)))
        return row


def test_images_phrase(args):
    """How the test images of :func:`load_data` were made binary."""
    if args.dataset == 'fixed':
        return "Larochelle's fixed binarisation"
    return 'binarised once, seed 1234'


def _epoch_trainer(train, names, images, batch_size, rng):
    """A callable(epoch) that runs `train` over shuffled mini-batches of
    ``images()`` and returns the means of its outputs as ``train_<name>``."""
    logged = ['train_' + name for name in names]

    def train_epoch(epoch):
        x = images()
        batches = list(iterate_minibatches(len(x), batch_size, rng))
        sums = np.zeros(len(logged))
        for index, rows in enumerate(progress(batches, len(batches),
                                              'epoch %d' % epoch)):
            sums += check_finite(train(x[rows]), 'epoch %d, batch %d of %d'
                                 % (epoch, index + 1, len(batches)), logged)
        return OrderedDict(zip(logged, (sums / len(batches)).tolist()))
    return train_epoch


def train_and_evaluate(args, run_folder, model, schedule, x_train, x_test,
                       binarise_each_epoch, title):
    """The part of a variational trainer that does not depend on the model:
    compile Adam on the model's objective, train with
    :func:`parmesan.experiments.training.fit`, evaluate L_k on the test
    images, write results.json, curves.png, reconstructions.png and
    latent_activity.png to ``args.outfolder``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags of :func:`vae_argument_parser`.
    run_folder : :class:`parmesan.experiments.training.Run`
    model : :class:`VariationalAutoencoder` or
        :class:`parmesan.experiments.vimco.BernoulliLatentVAE`
    schedule : callable epoch -> learning rate, or None
    x_train, x_test : float arrays
    binarise_each_epoch : bool
        Draw new binary training images (from grey `x_train`) every epoch.
    title : str
        Of the curves.

    Returns
    -------
    (results dict, compiled evaluation functions)
    """
    rng = run_folder.rng
    learning_rate = theano.shared(lasagne.utils.floatX(args.lr), 'lr')
    with compiling('the training function'):
        train, names = model.compile_train(
            learning_rate, args.eq_samples, args.iw_samples,
            epsilon=args.adam_epsilon, max_norm=args.max_norm or None,
            clip_value=args.clip_value or None)

    def training_images():
        if binarise_each_epoch:
            return datasets.binarize(x_train, rng).astype(x_train.dtype)
        return x_train

    with compiling('the evaluation functions'):
        evaluator = _Evaluator(model, training_images)
    x_eval = x_test[:args.eval_subset] if args.eval_subset else x_test

    curve_title = ('%s: training bound (mean over the epoch), test L_1 '
                   'and L_%d (%d importance samples) on %s test images'
                   % (title, args.eval_iw, args.eval_iw,
                      ('the first %d' if args.eval_subset else 'all %d')
                      % len(x_eval)))

    def plots(history):
        plot_history(history, ['train_bound', 'test_L1',
                               'test_L%d' % args.eval_iw],
                     os.path.join(args.outfolder, 'curves.png'),
                     title=curve_title,
                     ylabel='lower bound on log p(x), nats')

    history = fit(_epoch_trainer(train, names, training_images,
                                 args.batch_size, rng),
                  args.nepochs, run_folder,
                  [train] + list(evaluator.functions.values()),
                  learning_rate=learning_rate, schedule=schedule,
                  evaluate=lambda epoch: evaluator.test_bounds(
                      x_eval, args.eval_iw, epoch),
                  eval_every=args.eval_epoch, after_epoch=plots, model=model)
    run_folder.reseed_evaluation(history[-1]['epoch'] if history else 0)
    results = _final_evaluation(args, model, evaluator, history, x_test)
    return results, evaluator.functions


def _final_evaluation(args, model, evaluator, history, x_test):
    x_final = x_test[:args.test_subset]
    print('final evaluation: L_%d on %s %d test images...'
          % (args.final_iw, 'the first' if args.test_subset else 'all',
             len(x_final)), flush=True)
    start = time.time()
    evaluator.prepare(history[-1]['epoch'] if history else 0)
    functions = evaluator.functions
    final_ll = importance_sampled_log_likelihood(
        functions['log_weights'], x_final, args.final_iw)
    count, variances = active_units(functions['posterior_mean'], x_test)
    results = {
        'epochs': history[-1]['epoch'] if history else 0,
        'train_seconds': round(sum(row['seconds'] for row in history), 1),
        'eval_seconds': round(time.time() - start, 1),
        'test_LL': float(final_ll.mean()),
        'test_LL_stderr': float(final_ll.std() / np.sqrt(len(final_ll))),
        'eval_importance_samples': args.final_iw,
        'test_images': len(x_final),
        'active_units': count,
        'last_train_bound': history[-1]['train_bound'] if history else None,
        'settings': vars(args),
    }
    write_results(args.outfolder, results)
    originals = x_test[np.random.RandomState(0).choice(len(x_test), 50,
                                                       replace=False)]
    # Rows alternate: ten test images, then their reconstructions.
    rows = np.stack([originals.reshape(5, 10, -1), functions['reconstruct'](
        originals).reshape(5, 10, -1)], 1)
    save_image_grid(rows.reshape(100, -1),
                    os.path.join(args.outfolder, 'reconstructions.png'),
                    title=model.reconstruction_title,
                    row_labels=['data', 'reconstruction'] * 5)
    plot_per_latent(variances, os.path.join(args.outfolder,
                                            'latent_activity.png'),
                    model.activity_label, threshold=0.01,
                    title='active units: %d of %d (over the %d test images)'
                          % (count, len(variances), len(x_test)))
    print('test L_%d = %.2f +- %.2f nats on %s %d test images (%s), %d '
          'importance samples; %d active units (on all %d); results in %s'
          % (args.final_iw, results['test_LL'], results['test_LL_stderr'],
             'the first' if args.test_subset else 'all', len(x_final),
             test_images_phrase(args), args.final_iw, count, len(x_test),
             args.outfolder), flush=True)
    return results
