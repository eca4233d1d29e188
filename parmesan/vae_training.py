"""Training and evaluation of VAEs and IWAEs on binarised MNIST, shared by
``examples/vae_vanilla.py``, ``iw_vae.py`` and ``iw_vae_normflow.py``.

The command-line flags are Parmesan's (``-eq_samples``, ``-iw_samples``,
...), plus ``--seed``, ``--data-dir``, ``--resume`` and ``--preset burda``.
"""
import argparse
import json
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import lasagne
import theano
import theano.tensor as T

from . import datasets
from .evaluation import (active_units, collect_statistics,
                         importance_sampled_log_likelihood)
from .models import FLOWS, VariationalAutoencoder
from .plotting import plot_history, plot_per_latent, save_image_grid
from .training import (adam_with_clipping, burda_schedule, check_finite,
                       fit, iterate_minibatches, progress,
                       step_annealing_schedule)

__all__ = ['NONLINEARITIES', 'str2bool', 'vae_argument_parser',
           'apply_preset', 'load_data', 'run', 'train_and_evaluate']

NONLINEARITIES = {
    'rectify': lasagne.nonlinearities.rectify,
    'very_leaky_rectify': lasagne.nonlinearities.very_leaky_rectify,
    'tanh': lasagne.nonlinearities.tanh,
    'softplus': T.nnet.softplus,
}

#: Burda et al. (2015), MNIST, one stochastic layer.
BURDA = dict(nhidden=200, nlatent=50, nonlin_enc='tanh', nonlin_dec='tanh',
             batch_size=20, batch_norm=False, lr=1e-3, dataset='sample',
             adam_epsilon=1e-4, max_norm=None, clip_value=None)


def str2bool(text):
    """Parse 'true'/'false' (and 1/0, yes/no) strictly; 'False' is false."""
    value = str(text).strip().lower()
    if value in ('true', '1', 'yes', 'y'):
        return True
    if value in ('false', '0', 'no', 'n'):
        return False
    raise argparse.ArgumentTypeError('expected true or false, got %r' % text)


def vae_argument_parser(description, defaults=None):
    """The flags shared by the VAE trainers, with per-script defaults."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add('-dataset', choices=('sample', 'fixed'), default='sample',
        help="'sample': MNIST re-binarised every epoch (test set binarised "
             "once, seed 1234); 'fixed': Larochelle's fixed binarisation")
    add('-eq_samples', type=int, default=1,
        help='Monte-Carlo samples per example (averaged)')
    add('-iw_samples', type=int, default=1,
        help='importance samples per Monte-Carlo sample (k of the IWAE)')
    add('-lr', type=float, default=1e-3, help='learning rate')
    add('-anneal_lr_factor', type=float, default=0.9995,
        help='multiply the learning rate by this every epoch ...')
    add('-anneal_lr_epoch', type=int, default=1000,
        help='... from this epoch on')
    add('-batch_norm', type=str2bool, default=True,
        help='batch-normalise the hidden layers')
    add('-outfolder', default='results/iw_vae', help='where results go')
    add('-nonlin_enc', choices=sorted(NONLINEARITIES), default='rectify',
        help="nonlinearity of the encoder's hidden layers")
    add('-nonlin_dec', choices=sorted(NONLINEARITIES), default='rectify',
        help="nonlinearity of the decoder's hidden layers")
    add('-nhidden', type=int, default=500, help='units per hidden layer')
    add('-nlayers', type=int, default=2,
        help='hidden layers in the encoder (the decoder mirrors it)')
    add('-nlatent', type=int, default=100, help='latent units')
    add('-batch_size', type=int, default=100, help='examples per mini-batch')
    add('-nepochs', type=int, default=10000, help='the last epoch to train')
    add('-eval_epoch', type=int, default=10,
        help='evaluate on the test set every this many epochs')
    add('-eval_iw', type=int, default=5000,
        help='importance samples of the periodic test evaluation')
    add('-eval_subset', type=int, default=None,
        help='evaluate periodically on the first N test images only')
    add('-final_iw', type=int, default=5000,
        help='importance samples of the final test log-likelihood, on the '
             'whole test set')
    add('-adam_epsilon', type=float, default=1e-4, help="Adam's epsilon")
    add('-max_norm', type=float, default=5.0,
        help='rescale gradients to this total norm (0: off)')
    add('-clip_value', type=float, default=1.0,
        help='then clip each gradient element to +-this (0: off)')
    add('-checkpoint_every', type=int, default=10, help='epochs')
    add('-train_subset', type=int, default=None,
        help='train on the first N images only (quick tests)')
    add('--preset', choices=('burda',), default=None,
        help="'burda': Burda et al. 2015 exactly: 784-200-200-50 tanh, "
             'batch 20, Adam eps 1e-4, no clipping, no batch norm, '
             '3^i epochs at 1e-3*10^(-i/7), i=0..7 (3280 epochs); flags '
             'given explicitly still win')
    add('--max-minutes', type=float, default=None,
        help='stop training after this wall time (at an epoch boundary, '
             'with a checkpoint), then evaluate')
    add('--seed', type=int, default=1234,
        help='seeds the batch order, the binarisation, the initial weights '
             'and the noise streams')
    add('--data-dir', default=None,
        help='folder with the data files (default: $PARMESAN_DATA, else '
             '~/.parmesan/data)')
    add('--resume', action='store_true',
        help='continue from OUTFOLDER/checkpoint.npz')
    if defaults:
        parser.set_defaults(**defaults)
    return parser


def apply_preset(args, argv):
    """Fill in a preset's values for every flag not given on the command
    line; return the learning-rate schedule and the number of epochs."""
    given = {token.lstrip('-').split('=')[0].replace('-', '_')
             for token in argv if token.startswith('-')}
    if args.preset == 'burda':
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
    and Parmesan did) and test images (binarised once)."""
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
        Add ``-nflows`` and ``--flow`` (iw_vae_normflow).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = vae_argument_parser(description, defaults)
    if flows:
        parser.add_argument('-nflows', type=int, default=5,
                            help='flow layers after the sample layer')
        parser.add_argument('--flow', choices=FLOWS, default='planar')
        parser.add_argument('-iaf_hidden', type=int, default=200,
                            help='hidden units of each IAF network')
    args = parser.parse_args(argv)
    schedule = apply_preset(args, argv)
    for name in ('eq_samples', 'iw_samples', 'batch_size', 'nepochs',
                 'eval_epoch', 'nhidden', 'nlatent', 'nlayers'):
        if getattr(args, name) < 1:
            parser.error('-%s must be at least 1, got %d'
                         % (name, getattr(args, name)))
    if analytic_kl and args.iw_samples != 1:
        parser.error('the analytic-KL ELBO needs -iw_samples 1')

    rng = np.random.RandomState(args.seed)
    lasagne.random.set_rng(np.random.RandomState(args.seed + 1))
    x_train, x_test, binarise_each_epoch = load_data(args)

    model = VariationalAutoencoder(
        784, [args.nhidden] * args.nlayers, args.nlatent,
        NONLINEARITIES[args.nonlin_enc], NONLINEARITIES[args.nonlin_dec],
        batch_norm=args.batch_norm,
        flow=args.flow if flows else None,
        num_flows=args.nflows if flows else 0,
        iaf_hidden=getattr(args, 'iaf_hidden', 200))
    terms = model.terms()
    bound = model.bound(terms, analytic_kl=analytic_kl).mean()
    results, evaluation, variances = train_and_evaluate(
        args, argv, model, bound, terms, ('log_px_z', 'log_pz', 'log_qz'),
        schedule, x_train, x_test, binarise_each_epoch, rng,
        title=os.path.basename(args.outfolder),
        reconstruction_title='test images and reconstructions',
        activity_label='Cov_x E[z_u | x]')
    save_image_grid(evaluation['decode'](
        np.random.RandomState(0).randn(100, args.nlatent).astype(
            theano.config.floatX)),
        os.path.join(args.outfolder, 'samples.png'), title='samples')
    plot_per_latent(evaluation['kl_per_unit'](x_test),
                    os.path.join(args.outfolder, 'latent_kl.png'),
                    'KL(q(z_u|x) || p(z_u)), nats', title='KL per latent unit')
    return results


def train_and_evaluate(args, argv, model, objective, terms, term_names,
                       schedule, x_train, x_test, binarise_each_epoch, rng,
                       title, reconstruction_title, activity_label):
    """The part of a VAE trainer that does not depend on the model: compile
    Adam on `objective`, train with :func:`parmesan.training.fit` (logs,
    checkpoints, resume, NaN guard, deadline), evaluate L_k on the test
    images, write results.json, curves.png, reconstructions.png and
    latent_activity.png to ``args.outfolder``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags of :func:`vae_argument_parser` (or a parser built on it).
    argv : list of str
        The command line, recorded in the log header.
    model : object
        With ``x``, ``eq``, ``iw``, ``params()``, ``normalize_layers()`` and
        ``compile_evaluation()`` returning at least log_weights,
        posterior_mean, reconstruct and collect, as
        :class:`parmesan.models.VariationalAutoencoder`.
    objective : Theano scalar
        Maximised.
    terms : dict of Theano tensors
        The model's per-sample terms; the means of `term_names` are logged
        as ``train_<name>``.
    schedule : callable epoch -> learning rate, or None
    x_train, x_test : float arrays
    binarise_each_epoch : bool
        Draw new binary training images (from grey `x_train`) every epoch.
    rng : numpy.random.RandomState
        Drives the batches and the binarisation; checkpointed.
    title, reconstruction_title, activity_label : str
        Of the plots.

    Returns
    -------
    (results dict, compiled evaluation functions, variances of the
    posterior means per latent unit)
    """
    learning_rate = theano.shared(lasagne.utils.floatX(args.lr), 'lr')
    updates = adam_with_clipping(
        -objective, model.params(trainable=True), learning_rate,
        epsilon=args.adam_epsilon, max_norm=args.max_norm or None,
        clip_value=args.clip_value or None)
    monitored = [objective] + [terms[k].mean() for k in term_names]
    print('compiling (a cold Theano cache takes about a minute)...',
          flush=True)
    train = theano.function(
        [model.x], monitored, updates=updates,
        givens=[(model.eq, np.int32(args.eq_samples)),
                (model.iw, np.int32(args.iw_samples))])
    evaluation = model.compile_evaluation()
    normalize_layers = model.normalize_layers()
    x_eval = x_test[:args.eval_subset] if args.eval_subset else x_test
    logged = ['train_bound'] + ['train_' + name for name in term_names]

    def training_images():
        if binarise_each_epoch:
            return datasets.binarize(x_train, rng).astype(x_train.dtype)
        return x_train

    def train_epoch(epoch):
        images = training_images()
        batches = list(iterate_minibatches(len(images), args.batch_size,
                                           rng))
        sums = np.zeros(len(logged))
        for rows in progress(batches, len(batches), 'epoch %d' % epoch):
            sums += check_finite(np.array(train(images[rows])),
                                 'the training bound in epoch %d' % epoch)
        return OrderedDict(zip(logged, (sums / len(batches)).tolist()))

    def prepare_evaluation():
        if normalize_layers:
            collect_statistics(evaluation['collect'], training_images(),
                               normalize_layers)

    def evaluate(epoch, x=x_eval, num_samples=args.eval_iw):
        prepare_evaluation()
        log_weights = evaluation['log_weights']
        row = OrderedDict(test_L1=float(np.mean(
            importance_sampled_log_likelihood(log_weights, x, 1,
                                              show_progress=False))))
        row['test_L%d' % num_samples] = float(np.mean(
            importance_sampled_log_likelihood(log_weights, x, num_samples)))
        return row

    os.makedirs(args.outfolder, exist_ok=True)
    header = 'command: %s\nsettings: %s' % (
        ' '.join([os.path.basename(sys.argv[0])] + argv),
        json.dumps(vars(args), sort_keys=True))

    def plots(history):
        plot_history(history, ['train_bound', 'test_L1',
                               'test_L%d' % args.eval_iw],
                     os.path.join(args.outfolder, 'curves.png'),
                     title=title, ylabel='nats')

    deadline = None if args.max_minutes is None else \
        time.time() + 60 * args.max_minutes
    history = fit(train_epoch, args.nepochs, args.outfolder,
                  [train] + list(evaluation.values()), rng,
                  learning_rate=learning_rate, schedule=schedule,
                  evaluate=evaluate, eval_every=args.eval_epoch,
                  checkpoint_every=args.checkpoint_every,
                  resume=args.resume, header=header, after_epoch=plots,
                  deadline=deadline)

    print('final evaluation: L_%d on all %d test images...'
          % (args.final_iw, len(x_test)), flush=True)
    start = time.time()
    prepare_evaluation()
    final_ll = importance_sampled_log_likelihood(
        evaluation['log_weights'], x_test, args.final_iw)
    count, variances = active_units(evaluation['posterior_mean'], x_test)
    results = {
        'epochs': history[-1]['epoch'] if history else 0,
        'train_seconds': round(sum(row['seconds'] for row in history), 1),
        'eval_seconds': round(time.time() - start, 1),
        'test_LL': float(final_ll.mean()),
        'test_LL_stderr': float(final_ll.std() / np.sqrt(len(final_ll))),
        'eval_importance_samples': args.final_iw,
        'active_units': count,
        'last_train_bound': history[-1]['train_bound'] if history else None,
        'settings': vars(args),
    }
    with open(os.path.join(args.outfolder, 'results.json'), 'w') as stream:
        json.dump(results, stream, indent=2)
    originals = x_test[np.random.RandomState(0).choice(len(x_test), 50,
                                                       replace=False)]
    pairs = np.stack([originals, evaluation['reconstruct'](originals)], 1)
    save_image_grid(pairs.reshape(100, -1),
                    os.path.join(args.outfolder, 'reconstructions.png'),
                    title=reconstruction_title)
    plot_per_latent(variances, os.path.join(args.outfolder,
                                            'latent_activity.png'),
                    activity_label, threshold=0.01,
                    title='active units: %d' % count)
    print('test LL (L_%d) %.2f +- %.2f nats, %d active units; results in %s'
          % (args.final_iw, results['test_LL'], results['test_LL_stderr'],
             count, args.outfolder), flush=True)
    return results, evaluation, variances
