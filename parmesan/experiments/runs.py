"""Saved runs: load a trained model from its output folder, and the
``evaluate`` command.

A run's folder holds ``config.json`` (its settings and trainer, written when
it started) and ``checkpoint.npz`` (its state, each variable under its name).
:func:`load_run` rebuilds the trained model from them for use from Python;
``python -m parmesan.experiments evaluate FOLDER`` (:func:`evaluate_main`)
evaluates it on the test images and writes its own result file, never
touching the run's ``results.json``.

Evaluation noise is reseeded from the run's seed and its last epoch before
every estimate (:func:`parmesan.experiments.training.reseed_noise`), as the
trainers do, so ``log_likelihood`` on the test images with the run's
``--final-iw`` gives the run's own ``test_LL``.
"""
import argparse
import json
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import theano

from .cli import CONFIG_NAME, read_config
from .evaluation import importance_sampled_log_likelihood
from .vae import test_images_phrase
from .training import (CheckpointError, assign_by_name, atomic_write,
                       is_noise_state, read_checkpoint_arrays, reseed_noise,
                       shared_state, state_names)

__all__ = ['SavedRun', 'load_run', 'evaluate_run', 'evaluate_main']

#: The trainers whose model has a latent variable model of the images.
_GENERATIVE = ('vae_vanilla', 'iw_vae', 'iw_vae_normflow', 'vimco')
#: The trainers whose model classifies.
_CLASSIFIERS = ('mnist_ladder', 'm2')


class SavedRun(object):
    """A trained model rebuilt from its run folder (see :func:`load_run`).

    Attributes
    ----------
    folder : str
    config : dict, the run's config.json
    settings : argparse.Namespace, the run's settings
    trainer : str, the trainer's name
    epoch : int, the epochs the checkpoint had trained
    model : the model object of the trainer's module
    functions : dict of the model's compiled evaluation functions
    results : dict, the run's results.json (None if it has none)
    """

    def __init__(self, folder, config, model, functions, epoch, data_dir):
        self.folder = folder
        self.config = config
        self.trainer = config['trainer']
        self.settings = argparse.Namespace(**config['settings'])
        if data_dir is not None:
            self.settings.data_dir = data_dir
        self.model = model
        self.functions = functions
        self.epoch = epoch
        shared = shared_state(list(functions.values()))
        self._noise = [v for v in shared if is_noise_state(v)]
        self.results = None
        path = os.path.join(folder, 'results.json')
        if os.path.exists(path):
            with open(path) as stream:
                self.results = json.load(stream)

    def __repr__(self):
        return '<SavedRun %s: %s after %d epochs>' % (
            self.folder, self.trainer, self.epoch)

    # ---------------------------------------------------------------- help

    def _reseed(self):
        reseed_noise(self._noise, self.settings.seed, self.epoch)

    def _needs(self, kinds, what):
        if self.trainer not in kinds:
            raise TypeError('%s: the %s model of this run has no %s'
                            % (self.folder, self.trainer, what))

    @staticmethod
    def _images(x):
        x = np.asarray(x, dtype=theano.config.floatX)
        if x.ndim != 2:
            raise ValueError('expected images as a matrix (N, 784), got '
                             'shape %s' % (x.shape,))
        return x

    def _batched(self, function, x, batch_size=1000):
        x = self._images(x)
        return np.concatenate([function(x[start:start + batch_size])
                               for start in range(0, len(x), batch_size)])

    # ---------------------------------------------------------------- use

    def sample(self, n, seed=0):
        """Decoded samples of the prior: Bernoulli means of p(x | z),
        z ~ p(z), shape (n, 784); for M2, one row per class, shape
        (num_classes, n, 784), the classes sharing the same n z's.

        Parameters
        ----------
        n : int
        seed : int, of the prior draws
        """
        self._needs(_GENERATIVE + ('m2',), 'generative model')
        rng = np.random.RandomState(seed)
        floatx = theano.config.floatX
        if self.trainer == 'm2':
            if self.model.kind == 'MLP':
                raise TypeError('%s: an MLP run has no generative model'
                                % self.folder)
            classes = self.model.num_classes
            z = np.tile(rng.randn(n, self.model.num_latent), (classes, 1))
            y = np.repeat(np.eye(classes), n, axis=0)
            images = self.functions['decode'](y.astype(floatx),
                                              z.astype(floatx))
            return images.reshape(classes, n, -1)
        if self.trainer == 'vimco':
            prior = self.functions['prior_probability']()
            h = (rng.uniform(size=(n, len(prior))) < prior).astype(floatx)
            return self.functions['decode'](h)
        return self.functions['decode'](
            rng.randn(n, self.settings.nlatent).astype(floatx))

    def encode(self, x):
        """The posterior mean E[z | x] (VIMCO: q(h = 1 | x)) of each image,
        shape (N, latent units)."""
        self._needs(_GENERATIVE, 'encoder')
        return self._batched(self.functions['posterior_mean'], x)

    def reconstruct(self, x):
        """Bernoulli means of p(x | z) at one z ~ q(z | x) per image."""
        self._needs(_GENERATIVE, 'decoder')
        self._reseed()
        return self._batched(self.functions['reconstruct'], x)

    def log_likelihood(self, x, k=5000, max_rows=25000, show_progress=True):
        """The importance-sampled estimate L_k of log p(x) of each image
        (Burda et al.'s bound, chunked so that one call evaluates at most
        `max_rows` samples), in nats, shape (N,)."""
        self._needs(_GENERATIVE, 'likelihood to estimate')
        self._reseed()
        return importance_sampled_log_likelihood(
            self.functions['log_weights'], self._images(x), k,
            max_rows=max_rows, show_progress=show_progress)

    def predict(self, x):
        """Class probabilities of each image, shape (N, classes)."""
        self._needs(_CLASSIFIERS, 'classifier')
        if self.trainer == 'mnist_ladder':
            return self._batched(self.functions['predict'], x)
        self._reseed()
        first = lambda outputs: outputs[0] if isinstance(  # noqa: E731
            outputs, list) else outputs
        return self._batched(
            lambda rows: first(self.functions['evaluate'](rows)), x, 500)

    def accuracy(self, x, targets):
        """The fraction of images whose most probable class is the
        target."""
        return float(np.mean(self.predict(x).argmax(axis=1) ==
                             np.asarray(targets)))

    def test_data(self):
        """The test images and labels (None for the VAE family) the run
        was evaluated on, loaded as its trainer loads them (its
        ``--data-dir``, or the one given to :func:`load_run`)."""
        module = _module(self.trainer)
        if self.trainer in _GENERATIVE:
            _, x_test, _ = module.load_data(self.settings)
            return x_test, None
        data = module.load_data(self.settings)
        return data['x_test'], data['t_test']


def _module(trainer):
    from .trainers import get_trainer
    return get_trainer(trainer)._module()


def _build(trainer, settings):
    from .trainers import get_trainer
    spec = get_trainer(trainer)
    module = spec._module()
    if spec.module == 'vae':
        return module.build_model(settings,
                                  spec.options.get('analytic_kl', False),
                                  spec.options.get('flows', False))
    return module.build_model(settings)


def load_run(folder, data_dir=None):
    """Rebuild the trained model of a run folder.

    Reads ``config.json`` (the settings, the trainer) and
    ``checkpoint.npz``, builds the trainer's model, compiles its evaluation
    functions and loads, by name, only the variables they use (the
    parameters and batch-norm statistics; not the optimiser's moments or the
    training noise).

    Parameters
    ----------
    folder : str
        A run's -outfolder.
    data_dir : str, optional
        Where :meth:`SavedRun.test_data` finds the data, instead of the
        run's ``--data-dir``.

    Returns
    -------
    :class:`SavedRun`, with ``sample(n)``, ``encode(x)``,
    ``reconstruct(x)``, ``log_likelihood(x, k)`` (VAE, IWAE, flows, VIMCO),
    ``predict(x)``, ``accuracy(x, t)`` (ladder, M2; M2 also samples).

    Raises
    ------
    ValueError
        If the folder has no config.json (a run of an older Parmesan) or
        no trainer recorded in it.
    CheckpointError
        If the checkpoint is missing, unreadable or does not fit the model
        (listing the missing names and shape mismatches).

    Example
    -------
    >>> run = load_run('results/iw_vae')                 # doctest: +SKIP
    >>> images = run.sample(16)                          # doctest: +SKIP
    >>> x, _ = run.test_data()                           # doctest: +SKIP
    >>> run.log_likelihood(x[:100], k=5000).mean()       # doctest: +SKIP
    """
    config = read_config(folder)
    if config is None:
        raise ValueError('%s has no %s: it is not a run folder, or a run of '
                         'an older Parmesan, which cannot be rebuilt'
                         % (folder, CONFIG_NAME))
    if not config.get('trainer'):
        raise ValueError('%s: %s names no trainer' % (folder, CONFIG_NAME))
    path = os.path.join(folder, 'checkpoint.npz')
    arrays, meta = read_checkpoint_arrays(path)
    if meta.get('format', 1) < 2:
        raise CheckpointError('%s stores its variables by position (an '
                              'older Parmesan); it cannot be loaded by name'
                              % path)
    settings = argparse.Namespace(**config['settings'])
    model = _build(config['trainer'], settings)
    functions = model.compile_evaluation()
    variables = [variable for variable in
                 shared_state(list(functions.values()))
                 if not is_noise_state(variable)]
    assign_by_name(path, arrays, variables, state_names(variables, model),
                   allow_unexpected=True)
    return SavedRun(folder, config, model, functions, meta['epoch'],
                    data_dir)


# ------------------------------------------------------------ the command


def evaluate_run(folder, num_samples=None, subset=None, data_dir=None,
                 output=None):
    """Evaluate a saved run on the test images and write the result to
    `output` (default FOLDER/evaluation_<what>.json), atomically.

    Parameters
    ----------
    folder : str
    num_samples : int, optional
        k of L_k for the VAE family (default: the run's --final-iw).
    subset : int, optional
        The first N test images only.
    data_dir : str, optional
    output : str, optional

    Returns
    -------
    (dict written, the one-line summary)
    """
    start = time.time()
    run = load_run(folder, data_dir)
    x_test, t_test = run.test_data()
    if subset:
        x_test = x_test[:subset]
        t_test = None if t_test is None else t_test[:subset]
    which = 'the first %d' % len(x_test) if subset else \
        'all %d' % len(x_test)
    result = OrderedDict([('folder', os.path.abspath(folder)),
                          ('trainer', run.trainer), ('epochs', run.epoch),
                          ('test_images', len(x_test)),
                          ('subset', subset)])
    if run.trainer in _GENERATIVE:
        k = num_samples or getattr(run.settings, 'final_iw', 5000)
        ll = run.log_likelihood(x_test, k)
        mean, stderr = float(ll.mean()), float(ll.std() / np.sqrt(len(ll)))
        what = 'L%d' % k
        result.update([('importance_samples', k), ('test_L%d' % k, mean),
                       ('test_L%d_stderr' % k, stderr)])
        summary = ('%s: test L_%d = %.2f +- %.2f nats on %s test images (%s),'
                   ' %d importance samples' % (
                       folder, k, mean, stderr, which,
                       test_images_phrase(run.settings), k))
    else:
        if num_samples:
            raise ValueError('--iw applies to the VAE family; %s is a '
                             'classifier' % run.trainer)
        accuracy = run.accuracy(x_test, t_test)
        what = 'accuracy'
        result.update([('test_accuracy', accuracy),
                       ('test_error_percent', 100 * (1 - accuracy))])
        summary = ('%s: test accuracy %.4f (%.2f %% error) on %s test images'
                   % (folder, accuracy, 100 * (1 - accuracy), which))
    if subset:
        what += '_first%d' % len(x_test)
    result['seconds'] = round(time.time() - start, 1)
    result['summary'] = summary
    output = output or os.path.join(folder, 'evaluation_%s.json' % what)
    text = json.dumps(result, indent=2)
    atomic_write(output, lambda stream: stream.write(text), 'w')
    return result, summary


def evaluate_argument_parser(prog=None):
    """The flags of the ``evaluate`` command."""
    parser = argparse.ArgumentParser(
        prog=prog, description='Evaluate a saved run on the test images: '
        'test L_k for the VAE family, test accuracy for M2 and the ladder. '
        'Writes FOLDER/evaluation_<what>.json (never results.json).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('folder', help="the run's -outfolder")
    parser.add_argument('--iw', type=int, default=None,
                        help="importance samples k of L_k (default: the "
                             "run's --final-iw)")
    parser.add_argument('--subset', type=int, default=None,
                        help='the first N test images only')
    parser.add_argument('--data-dir', default=None,
                        help="folder with the data files (default: the "
                             "run's --data-dir, else $PARMESAN_DATA, else "
                             "~/.parmesan/data)")
    parser.add_argument('-o', '--output', default=None,
                        help='result file (default: '
                             'FOLDER/evaluation_<what>.json)')
    return parser


def evaluate_main(argv=None, prog=None):
    """``python -m parmesan.experiments evaluate FOLDER [--iw K]
    [--subset N] [--data-dir D] [-o FILE]``; returns the result dict."""
    parser = evaluate_argument_parser(prog)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for flag, value in (('--iw', args.iw), ('--subset', args.subset)):
        if value is not None and value < 1:
            parser.error('%s must be an integer >= 1, got %d' % (flag, value))
    if not os.path.isdir(args.folder):
        parser.error('%s is not a folder' % args.folder)
    if args.data_dir and not os.path.isdir(args.data_dir):
        parser.error('--data-dir %s is not a folder' % args.data_dir)
    try:
        result, summary = evaluate_run(args.folder, args.iw, args.subset,
                                       args.data_dir, args.output)
    except (ValueError, TypeError) as error:
        parser.exit(2, '%s: error: %s\n' % (parser.prog, error))
    print(summary, flush=True)
    return result
