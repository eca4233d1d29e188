"""The ladder network of Rasmus et al. (2015) and its semi-supervised MNIST
trainer, used by ``examples/mnist_ladder.py``.

Rasmus, Valpola, Honkala, Berglund and Raiko (2015), "Semi-Supervised
Learning with Ladder Networks", reach 1.06 % test error on
permutation-invariant MNIST with 100 labels (0.84 % with 1000, 0.57 % with
all 60000).

The network has three paths that share their weights:

* a *corrupted* encoder: Gaussian noise on the input and on every
  batch-normalised pre-activation; its softmax output gives the supervised
  cost on the labelled rows;
* a *clean* encoder: the same layers without noise; its batch-normalised
  pre-activations z(l) are the denoising targets, and its softmax output is
  the classifier that is evaluated;
* a *decoder* that, from the top down, combines the layer above with the
  corrupted lateral signal (:class:`~parmesan.layers.GaussianDenoiseLayer`
  or :class:`~parmesan.layers.DenoiseLayer`) to reconstruct every z(l).

The cost is cross-entropy(corrupted output, labels) + sum_l lambda_l *
mean((z_hat_BN(l) - z(l))**2), the denoising terms averaged over the
unlabelled rows and the units of layer l.
"""
import argparse
import os
import sys
from collections import OrderedDict

import numpy as np
import lasagne
import theano
import theano.tensor as T
from lasagne.layers import (DenseLayer, InputLayer, NonlinearityLayer,
                            get_output)

from .. import datasets
from ..distributions import log_multinomial
from ..init import FanInNormal
from ..layers import (DecoderNormalizeLayer, DenoiseLayer,
                      GaussianCorruptionLayer, GaussianDenoiseLayer,
                      ListIndexLayer, NormalizeLayer, ScaleAndShiftLayer)
from ..nonlinearities import softmax
from ..updates import adam_with_clipping, linear_decay_schedule
from .cli import (NONLINEARITIES, add_run_flags, argument_parser,
                  number_list, parse_args, start_run, write_results)
from .compiling import compiling
from .evaluation import classification_error, collect_statistics
from .model import ExperimentModel
from .plotting import plot_history, plot_panels
from .training import check_finite, fit, progress, semi_supervised_batches

__all__ = ['COMBINATORS', 'PAPER_TEST_ERROR', 'LadderNetwork',
           'select_labelled', 'ladder_argument_parser', 'load_data',
           'build_model', 'run', 'parse_run_args']

#: The combinators g(u, z) of the decoder, by their ``-combinator`` name.
COMBINATORS = OrderedDict([('gauss', GaussianDenoiseLayer),
                           ('denoise', DenoiseLayer)])

#: Rasmus et al. (2015), Table 1, test error (%) of the full ladder by the
#: number of labels.
PAPER_TEST_ERROR = {'100': 1.06, '1000': 0.84, 'all': 0.57}


class LadderNetwork(ExperimentModel):
    """A fully connected ladder network (Rasmus et al. 2015).

    Encoder layer l (l = 1..L): DenseLayer without bias -> NormalizeLayer
    (batch statistics from the unlabelled rows, see `num_labelled`) ->
    GaussianCorruptionLayer -> ScaleAndShiftLayer (beta for every layer,
    gamma only for the softmax top, as in the paper: a ReLU does not need a
    scale) -> ReLU, or softmax at the top. The input gets noise too. The
    decoder has one combinator per layer, l = L..0; above the bottom it maps
    z_hat(l) down with its own weights V and batch-normalises the result to
    u(l-1). Its reconstructions are normalised with the clean encoder's
    batch statistics (:class:`~parmesan.layers.DecoderNormalizeLayer`).

    Every batch holds ``num_labelled`` labelled rows first and unlabelled
    rows after them; ``num_labelled`` is a Theano scalar input
    (``self.num_labelled``), 0 when collecting statistics over all rows.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from the input to the softmax, e.g. (784, 1000, 500, 250,
        250, 250, 10).
    noise_std : float
        Std of the noise on the input and on every pre-activation of the
        corrupted path.
    combinator : 'gauss' or 'denoise'
        :class:`~parmesan.layers.GaussianDenoiseLayer` (the paper's) or
        :class:`~parmesan.layers.DenoiseLayer`.
    nonlinearity : callable
        Of the hidden layers.
    epsilon : float
        Added to every batch variance (encoder, decoder and the
        normalisation of the reconstructions), 1e-10 like the official code.

    Attributes
    ----------
    x, targets, num_labelled : Theano inputs (matrix, int vector, int).
    lateral : L + 1 layers giving z~(l) (corrupted) or z(l) (clean).
    encoder_dense, encoder_normalize, scale_and_shift : the L encoder
        layers' DenseLayer (W), NormalizeLayer and ScaleAndShiftLayer.
    batch_means, batch_vars : L layers of the encoder's batch statistics.
    output : the softmax layer.
    combinators, reconstructions : L + 1 layers of z_hat(l) and of its
        normalised version compared with z(l) (z_hat(0) itself).
    decoder_dense : L + 1 entries; entry l >= 1 maps z_hat(l) to layer
        l - 1 (V), entry 0 is None.

    Returns
    -------
    An object holding the layers; :meth:`training_terms` builds the cost.

    Examples
    --------
    The paper's network is ``LadderNetwork((784, 1000, 500, 250, 250, 250,
    10))`` with lambdas ``(1000, 10, .1, .1, .1, .1, .1)``; a small one:

    >>> from parmesan.experiments.ladder import LadderNetwork
    >>> net = LadderNetwork((6, 4, 3))
    >>> terms = net.training_terms(lambdas=(1000, 10, 0.1))
    >>> list(terms)
    ['cost', 'class_cost', 'error', 'denoise0', 'denoise1', 'denoise2']
    """

    def __init__(self, layer_sizes, noise_std=0.3, combinator='gauss',
                 nonlinearity=lasagne.nonlinearities.rectify, epsilon=1e-10):
        layer_sizes = [int(size) for size in layer_sizes]
        if len(layer_sizes) < 2 or min(layer_sizes) < 1:
            raise ValueError('layer_sizes needs an input and at least one '
                             'layer of positive widths, got %r'
                             % (layer_sizes,))
        if combinator not in COMBINATORS:
            raise ValueError('unknown combinator %r; use one of %s'
                             % (combinator, ', '.join(COMBINATORS)))
        self.layer_sizes = layer_sizes
        self.noise_std = noise_std
        self.combinator = combinator
        self.epsilon = epsilon
        self.x = T.matrix('x')
        self.targets = T.ivector('targets')
        self.num_labelled = T.iscalar('num_labelled')
        self._build_encoder(nonlinearity)
        self._build_decoder()

    def _build_encoder(self, nonlinearity):
        """The shared encoder; lateral[l] outputs z~(l) in the corrupted
        path and z(l) in the clean one."""
        layer_sizes, noise_std = self.layer_sizes, self.noise_std
        unlabelled_rows = slice(self.num_labelled, None)
        top = len(layer_sizes) - 1
        self.l_in = InputLayer((None, layer_sizes[0]), self.x)
        self.lateral = [GaussianCorruptionLayer(self.l_in, noise_std,
                                                name='noise0')]
        self.encoder_normalize, self.batch_means, self.batch_vars = [], [], []
        self.encoder_dense, self.scale_and_shift = [], []
        layer = self.lateral[0]
        for depth in range(1, top + 1):
            dense = DenseLayer(layer, layer_sizes[depth], W=FanInNormal(),
                               b=None, nonlinearity=None,
                               name='W%d' % depth)
            self.encoder_dense.append(dense)
            normalize = NormalizeLayer(
                dense, epsilon=self.epsilon, alpha='running_average',
                return_stats=True, stat_indices=unlabelled_rows,
                name='bn%d' % depth)
            self.encoder_normalize.append(normalize)
            self.batch_means.append(ListIndexLayer(normalize, 1))
            self.batch_vars.append(ListIndexLayer(normalize, 2))
            noisy = GaussianCorruptionLayer(ListIndexLayer(normalize, 0),
                                            noise_std, name='noise%d' % depth)
            self.lateral.append(noisy)
            is_top = depth == top
            shifted = ScaleAndShiftLayer(
                noisy, gamma=lasagne.init.Constant(1.) if is_top else None,
                name='beta_gamma%d' % depth)
            self.scale_and_shift.append(shifted)
            layer = NonlinearityLayer(
                shifted, softmax if is_top else nonlinearity)
        self.output = layer

    def _build_decoder(self):
        """The decoder, on stand-ins for the encoder's outputs: it needs the
        corrupted and the clean path at once, which one get_output call of
        the shared encoder cannot give."""
        layer_sizes, epsilon = self.layer_sizes, self.epsilon
        top = len(layer_sizes) - 1
        self.decoder_top = InputLayer((None, layer_sizes[top]),
                                      name='corrupted_output')
        self.decoder_lateral = [InputLayer((None, size),
                                           name='corrupted_z%d' % depth)
                                for depth, size in enumerate(layer_sizes)]
        self.decoder_means = [InputLayer((size,), name='clean_mean%d' % depth)
                              for depth, size in
                              enumerate(layer_sizes[1:], 1)]
        self.decoder_vars = [InputLayer((size,), name='clean_var%d' % depth)
                             for depth, size in enumerate(layer_sizes[1:], 1)]
        self.combinators = [None] * (top + 1)
        self.reconstructions = [None] * (top + 1)
        self.decoder_dense = [None] * (top + 1)
        combinator_class = COMBINATORS[self.combinator]
        u = NormalizeLayer(self.decoder_top, epsilon=epsilon,
                           name='decoder_bn%d' % top)
        for depth in range(top, -1, -1):
            z_hat = combinator_class(u, self.decoder_lateral[depth],
                                     name='g%d' % depth)
            self.combinators[depth] = z_hat
            if depth == 0:
                # The input layer is not batch-normalised in the encoder.
                self.reconstructions[0] = z_hat
                break
            self.reconstructions[depth] = DecoderNormalizeLayer(
                z_hat, self.decoder_means[depth - 1],
                self.decoder_vars[depth - 1], epsilon=epsilon)
            projected = DenseLayer(z_hat, layer_sizes[depth - 1],
                                   W=FanInNormal(), b=None, nonlinearity=None,
                                   name='V%d' % depth)
            self.decoder_dense[depth] = projected
            u = NormalizeLayer(projected, epsilon=epsilon,
                               name='decoder_bn%d' % (depth - 1))

    @property
    def output_layers(self):
        return [self.output] + self.reconstructions

    def clean_outputs(self, **kwargs):
        """The clean encoder's lateral z(l), batch means and variances of
        layers 1..L, and softmax output; kwargs go to ``get_output``.

        Returns
        -------
        (lateral, means, variances, output): two lists of L + 1 and L
        Theano expressions and the output matrix.
        """
        top = len(self.layer_sizes) - 1
        outputs = get_output(self.lateral + self.batch_means +
                             self.batch_vars + [self.output], clean=True,
                             **kwargs)
        return (outputs[:top + 1], outputs[top + 1:2 * top + 1],
                outputs[2 * top + 1:3 * top + 1], outputs[-1])

    def corrupted_outputs(self):
        """The corrupted encoder's lateral z~(l) and softmax output.

        Returns
        -------
        (lateral, output): a list of L + 1 expressions and a matrix. Every
        call draws new noise.
        """
        outputs = get_output(self.lateral + [self.output])
        return outputs[:-1], outputs[-1]

    def training_terms(self, lambdas):
        """The training cost and what to monitor, for one mixed batch.

        Parameters
        ----------
        lambdas : sequence of float
            Weights of the denoising costs, input layer first (one per
            entry of `layer_sizes`).

        Returns
        -------
        OrderedDict of Theano scalars: 'cost' (to minimise),
        'class_cost' (cross-entropy of the corrupted output on the labelled
        rows), 'error' (% misclassified labelled rows by the clean path with
        batch statistics) and 'denoise0'..'denoiseL' (unweighted
        denoising costs, each a mean over unlabelled rows and units).

        Examples
        --------
        >>> from parmesan.experiments.ladder import LadderNetwork
        >>> terms = LadderNetwork((6, 4, 3)).training_terms((1000, 10, 0.1))
        >>> terms['cost'].ndim
        0
        """
        lambdas = [float(value) for value in lambdas]
        if len(lambdas) != len(self.layer_sizes):
            raise ValueError('%d lambdas for %d layers (input included); '
                             'give one per layer' % (len(lambdas),
                                                     len(self.layer_sizes)))
        labelled, unlabelled = slice(None, self.num_labelled), \
            slice(self.num_labelled, None)
        clean_z, clean_means, clean_vars, clean_output = \
            self.clean_outputs()
        corrupted_z, corrupted_output = self.corrupted_outputs()
        stand_ins = {self.decoder_top: corrupted_output[unlabelled]}
        for layer, z in zip(self.decoder_lateral, corrupted_z):
            stand_ins[layer] = z[unlabelled]
        stand_ins.update(zip(self.decoder_means, clean_means))
        stand_ins.update(zip(self.decoder_vars, clean_vars))
        reconstructed = get_output(self.reconstructions, stand_ins)

        class_cost = -T.mean(log_multinomial(self.targets,
                                             corrupted_output[labelled]))
        denoise = [T.mean(T.sqr(z_hat - z[unlabelled]))
                   for z_hat, z in zip(reconstructed, clean_z)]
        terms = OrderedDict()
        terms['cost'] = class_cost + sum(
            weight * cost for weight, cost in zip(lambdas, denoise) if weight)
        terms['class_cost'] = class_cost
        terms['error'] = 100. * T.mean(T.neq(
            T.argmax(clean_output[labelled], axis=1), self.targets))
        for depth, cost in enumerate(denoise):
            terms['denoise%d' % depth] = cost
        return terms

    def compile_train(self, learning_rate, lambdas):
        """Compile one Adam step on a mixed batch.

        Parameters
        ----------
        lambdas : sequence of float
            As for :meth:`training_terms`.
        learning_rate : Theano shared scalar

        Returns
        -------
        (function, names): ``function(x, targets, num_labelled)`` returns
        the monitored numbers, named by `names`, and updates the
        parameters; `x` holds the `num_labelled` labelled rows first.

        Examples
        --------
        One step on a batch of 2 labelled rows (first) and 2 unlabelled:

        >>> import numpy as np
        >>> import theano
        >>> from lasagne.utils import floatX
        >>> from parmesan.experiments.ladder import LadderNetwork
        >>> net = LadderNetwork((6, 4, 3))
        >>> lr = theano.shared(floatX(0.002))
        >>> train, names = net.compile_train(lr, (1000, 10, 0.1))
        >>> x_batch = floatX(np.random.RandomState(1).rand(4, 6))
        >>> values = train(x_batch, np.array([0, 2], 'int32'), 2)
        >>> len(values) == len(names), bool(np.isfinite(values).all())
        (True, True)
        """
        terms = self.training_terms(lambdas)
        # The paper's plain Adam: no gradient clipping (one fused node
        # unless parmesan.ops.config says otherwise).
        updates = adam_with_clipping(terms['cost'],
                                     self.params(trainable=True),
                                     learning_rate, max_norm=None,
                                     clip_value=None)
        function = theano.function(
            [self.x, self.targets, self.num_labelled], list(terms.values()),
            updates=updates)
        return function, list(terms.keys())

    def compile_evaluation(self):
        """Compile the clean classifier for evaluation.

        Returns
        -------
        dict of functions: 'collect'(x) runs the clean path with
        ``deterministic=True, collect=True`` over all rows of `x`, storing
        batch statistics
        (use it with
        :func:`parmesan.experiments.evaluation.collect_statistics`);
        'predict'(x) returns the clean class probabilities with the stored
        statistics (``deterministic=True``).

        Examples
        --------
        >>> import numpy as np
        >>> from lasagne.utils import floatX
        >>> from parmesan.experiments.evaluation import collect_statistics
        >>> from parmesan.experiments.ladder import LadderNetwork
        >>> net = LadderNetwork((6, 4, 3))
        >>> evaluation = net.compile_evaluation()
        >>> x = floatX(np.random.RandomState(1).rand(20, 6))
        >>> collect_statistics(evaluation['collect'], x,
        ...                    net.normalize_layers())
        >>> probabilities = evaluation['predict'](x)
        >>> probabilities.shape, np.allclose(probabilities.sum(axis=1), 1)
        ((20, 3), True)
        """
        every_row = [(self.num_labelled, T.constant(0, dtype='int32'))]
        collected = get_output(self.output, clean=True, deterministic=True,
                               collect=True)
        predicted = get_output(self.output, clean=True, deterministic=True)
        return {
            'collect': theano.function([self.x], T.sum(collected),
                                       givens=every_row),
            'predict': theano.function([self.x], predicted),
        }


def select_labelled(labels, how_many, seed):
    """The labelled rows: 'all', or a class-balanced subset.

    Parameters
    ----------
    labels : array of int (N,)
    how_many : str
        'all' or a multiple of the number of classes, e.g. '100'.
    seed : int
        Of :func:`parmesan.datasets.select_balanced_labels`.

    Returns
    -------
    Sorted int array of row indices.

    Example
    -------
    >>> select_labelled(t_train, '100', seed=1)[:3]      # doctest: +SKIP
    """
    if how_many == 'all':
        return np.arange(len(labels))
    num_classes = len(np.unique(labels))
    count = int(how_many)
    if count < num_classes or count % num_classes:
        raise ValueError('--labels %s: need a multiple of the %d classes'
                         % (how_many, num_classes))
    return datasets.select_balanced_labels(labels, count // num_classes, seed)


def _labels_flag(text):
    if text == 'all':
        return text
    try:
        if int(text) > 0:
            return str(int(text))
    except ValueError:
        pass
    raise argparse.ArgumentTypeError("expected 'all' or a positive number, "
                                     "got %r" % text)


def ladder_argument_parser(description):
    """The flags of ``examples/mnist_ladder.py``, defaults as in the paper.

    Parameters
    ----------
    description : str

    Returns
    -------
    argparse.ArgumentParser

    Example
    -------
    >>> parser = ladder_argument_parser('Ladder network on MNIST.')
    >>> parser.parse_args(['--labels', '1000']).labels
    '1000'
    """
    parser = argument_parser(description, epilog=_DATA_AND_LOG_HELP)
    add = parser.add_argument
    add('--layers', type=number_list(int),
        default='784,1000,500,250,250,250,10',
        help='layer widths, input (784) first, classes (10) last')
    add('-lambdas', type=number_list(float),
        default='1000,10,0.1,0.1,0.1,0.1,0.1',
        help='weights of the denoising costs, input layer first; one per '
             '--layers entry')
    add('--noise-std', type=float, default=0.3,
        help='std of the Gaussian noise on the input and every '
             'pre-activation of the corrupted path')
    add('--combinator', choices=tuple(COMBINATORS), default='gauss',
        help="decoder combinator: 'gauss' is the paper's "
             "(GaussianDenoiseLayer), 'denoise' Parmesan's DenoiseLayer")
    add('--nonlinearity', choices=tuple(NONLINEARITIES), default='rectify',
        help='of the hidden layers (the paper: rectify; the original '
             'Parmesan example: leaky_rectify)')
    add('-lr', type=float, default=0.002, help='Adam learning rate')
    add('-nepochs', type=int, default=150,
        help='epochs, each one pass over the unlabelled (= all training) '
             'images')
    add('--decay-start-epoch', type=int, default=100,
        help='the learning rate decays linearly towards 0 after this epoch')
    add('-batch_size', type=int, default=100,
        help='unlabelled rows per batch, and as many labelled rows (or all '
             'of them if there are fewer)')
    add('-eval_epoch', type=int, default=1,
        help='evaluate valid/test error every this many epochs (and after '
             'the last)')
    add('--train-set', choices=('50k', '60k'), default='50k',
        help='50k: train on 50000 images, validate on 10000; 60k: train on '
             'all 60000 (the paper), no validation')
    add('--labels', type=_labels_flag, default='100',
        help="labelled training images: 100 or 1000 (balanced, chosen with "
             "--seed), or 'all'")
    add_run_flags(parser, outfolder='results/mnist_ladder',
                  checkpoint_every=1,
                  seed_help='seeds the label choice, the initialisation, the '
                            'noise and the batch order')
    return parser


_DATA_AND_LOG_HELP = (
    'Data: with --train-set 50k (default) the model trains on the first '
    '50000 MNIST training images (all used as unlabelled, the labelled '
    'subset drawn from them), the last 10000 are the validation set for '
    'monitoring (valid_error), and the official 10000 test images give '
    'test_error. --train-set 60k trains on all 60000 like the paper, with '
    'no validation set. valid_error and test_error are those of the clean '
    'path with batch-norm statistics averaged over the whole training set. '
    'Logged every epoch: train_cost, train_class_cost (cross-entropy of the '
    'corrupted path on the labelled rows), train_error (% of the labelled '
    'rows the clean path misclassifies, with batch statistics), '
    'train_denoise<l> (unweighted denoising cost of layer l, input = 0).')


def load_data(args):
    """MNIST as --train-set and --train-subset ask.

    Parameters
    ----------
    args : argparse.Namespace with data_dir, train_set, train_subset

    Returns
    -------
    dict of floatX images and int32 labels: x_train, t_train, x_valid,
    t_valid (None with --train-set 60k), x_test, t_test.
    """
    x_train, t_train, x_valid, t_valid, x_test, t_test = \
        datasets.load_mnist_realval(args.data_dir)
    if args.train_set == '60k':
        x_train = np.concatenate([x_train, x_valid])
        t_train = np.concatenate([t_train, t_valid])
        x_valid = t_valid = None
    if args.train_subset:
        x_train, t_train = x_train[:args.train_subset], \
            t_train[:args.train_subset]
    floatx = theano.config.floatX
    return {'x_train': x_train.astype(floatx),
            't_train': t_train.astype(np.int32),
            'x_valid': None if x_valid is None else x_valid.astype(floatx),
            't_valid': None if t_valid is None else t_valid.astype(np.int32),
            'x_test': x_test.astype(floatx), 't_test': t_test.astype(np.int32)}


def _check_args(parser, args):
    """The ladder's own constraints; the ranges of the numeric flags are
    checked by :func:`parmesan.experiments.cli.parse_args`."""
    if args.layers[0] != 784:
        parser.error('--layers must start with the 784 MNIST pixels, got %d'
                     % args.layers[0])
    if args.layers[-1] != 10:
        parser.error('--layers must end with the 10 classes, got %d'
                     % args.layers[-1])
    if len(args.lambdas) != len(args.layers):
        parser.error('-lambdas has %d entries but --layers %d; give one '
                     'weight per layer, input first'
                     % (len(args.lambdas), len(args.layers)))
    if args.labels != 'all' and args.train_subset is not None and \
            int(args.labels) > args.train_subset:
        parser.error('--labels %s needs at least as many training images, '
                     'got --train-subset %d' % (args.labels,
                                                args.train_subset))


def _limits(args):
    """--train-subset stays within the training set of --train-set."""
    return {'train_subset': dict(
        low=2, high=60000 if args.train_set == '60k' else 50000,
        why='(the training images of --train-set %s)' % args.train_set)}


def _epoch_trainer(train, names, x_train, t_train, labelled_indices,
                   batch_size, rng):
    def train_epoch(epoch):
        batches = list(semi_supervised_batches(
            len(x_train), labelled_indices, batch_size, rng))
        sums = np.zeros(len(names))
        for index, (unlabelled, labelled) in enumerate(progress(
                batches, len(batches), 'epoch %d' % epoch)):
            x_batch = np.concatenate([x_train[labelled],
                                      x_train[unlabelled]])
            sums += check_finite(
                train(x_batch, t_train[labelled], np.int32(len(labelled))),
                'epoch %d, batch %d of %d' % (epoch, index + 1, len(batches)),
                ['train_' + name for name in names])
        means = sums / len(batches)
        return OrderedDict(('train_' + name, float(value))
                           for name, value in zip(names, means))
    return train_epoch


def _plotter(args, data):
    name = os.path.basename(os.path.normpath(args.outfolder))
    held_out = ', '.join(
        '%s on %d %s images' % (key, len(data['x_' + part]), part)
        for key, part in (('valid_error', 'valid'), ('test_error', 'test'))
        if data['x_' + part] is not None)
    error_title = ('%s: error of the clean path; train_error on the labelled '
                   'rows of each batch, %s' % (name, held_out))
    cost_title = ('%s: training costs (means over the epoch); total = '
                  'class cost + the denoising costs weighted by -lambdas'
                  % name)

    def plots(history):
        plot_history(history, ['train_error', 'valid_error', 'test_error'],
                     os.path.join(args.outfolder, 'errors.png'),
                     title=error_title, ylabel='error (%)')
        # The total (~100 with the paper's lambdas) on its own axis, the
        # unweighted per-layer costs (~1) on a log axis below it.
        plot_panels(history, [
            (['train_cost'], 'total cost'),
            (['train_class_cost'] + ['train_denoise%d' % depth
                                     for depth in range(len(args.layers))],
             'cost', True)],
            os.path.join(args.outfolder, 'costs.png'), title=cost_title)
    return plots


def run(argv=None, description='Ladder network on MNIST.'):
    """Parse flags, train, evaluate and plot; return the results dict.

    Parameters
    ----------
    argv : list of str, optional (default: sys.argv[1:])
    description : str
        For ``--help``.

    Returns
    -------
    dict, also written to OUTFOLDER/results.json: test_error (%) at the
    end, valid_error, per-epoch history, settings and timings.

    Example
    -------
    >>> run(['--train-subset', '1000', '-nepochs', '2',
    ...      '--layers', '784,50,10', '-lambdas', '1000,10,0.1'])
    ... # doctest: +SKIP
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_run_args(argv, description)
    with start_run(args, argv, trainer='mnist_ladder') as run_folder:
        return _train_ladder(args, run_folder)


def parse_run_args(argv, description='Ladder network on MNIST.'):
    """The flags of :func:`run`, parsed and checked without training."""
    return parse_args(ladder_argument_parser(description), argv,
                      limits=_limits, check=_check_args)


def build_model(args):
    """The :class:`LadderNetwork` of parsed flags."""
    return LadderNetwork(args.layers, noise_std=args.noise_std,
                         combinator=args.combinator,
                         nonlinearity=NONLINEARITIES[args.nonlinearity])


def _train_ladder(args, run_folder):
    rng = run_folder.rng
    data = load_data(args)
    x_train, t_train = data['x_train'], data['t_train']
    try:
        labelled_indices = select_labelled(t_train, args.labels, args.seed)
    except ValueError as error:
        sys.exit('--labels: %s' % error)
    run_folder.header += '\nlabelled rows: %d of %d' % (
        len(labelled_indices), len(x_train))

    net = build_model(args)
    learning_rate = theano.shared(lasagne.utils.floatX(args.lr), 'lr')
    with compiling('the training function'):
        train, names = net.compile_train(learning_rate, args.lambdas)
    with compiling('the evaluation functions'):
        evaluation = net.compile_evaluation()

    def evaluate(epoch=None):
        collect_statistics(evaluation['collect'], x_train,
                           net.normalize_layers())
        row = OrderedDict()
        if data['x_valid'] is not None:
            row['valid_error'] = classification_error(
                evaluation['predict'], data['x_valid'], data['t_valid'])
        row['test_error'] = classification_error(
            evaluation['predict'], data['x_test'], data['t_test'])
        return row

    plots = _plotter(args, data)
    history = fit(_epoch_trainer(train, names, x_train, t_train,
                                 labelled_indices, args.batch_size, rng),
                  args.nepochs, run_folder,
                  [train] + list(evaluation.values()),
                  learning_rate=learning_rate,
                  schedule=linear_decay_schedule(
                      args.lr, args.decay_start_epoch, args.nepochs),
                  evaluate=evaluate, eval_every=args.eval_epoch,
                  after_epoch=plots, model=net)
    final = history[-1] if history and 'test_error' in history[-1] else None
    if final is None:
        # Stopped by the time budget between two evaluations.
        run_folder.reseed_evaluation(history[-1]['epoch'] if history else 0)
        final = evaluate()
    if history:
        plots(history)
    results = _results(args, history, final, labelled_indices, len(x_train))
    write_results(args.outfolder, results)
    print('test error %.2f %% on all %d test images (clean path, batch-norm '
          'statistics of the %d training images) after %d epochs (paper: '
          '%s %%); results in %s'
          % (results['test_error'], len(data['x_test']), len(x_train),
             results['epochs'], results['paper_test_error'], args.outfolder),
          flush=True)
    return results


def _results(args, history, final, labelled_indices, num_train):
    results = OrderedDict()
    results['epochs'] = history[-1]['epoch'] if history else 0
    results['test_error'] = final['test_error']
    results['valid_error'] = final.get('valid_error')
    evaluated = [row for row in history if 'valid_error' in row]
    if evaluated:
        best = min(evaluated, key=lambda row: row['valid_error'])
        results['best_valid_epoch'] = best['epoch']
        results['best_valid_error'] = best['valid_error']
        results['test_error_at_best_valid'] = best['test_error']
    results['paper_test_error'] = PAPER_TEST_ERROR.get(args.labels)
    results['num_labelled'] = int(len(labelled_indices))
    results['num_train'] = int(num_train)
    if len(labelled_indices) <= 1000:
        results['labelled_indices'] = labelled_indices.tolist()
    train_seconds = sum(row['seconds'] for row in history)
    results['train_seconds'] = round(train_seconds, 1)
    results['seconds_per_epoch'] = round(train_seconds / len(history), 1) \
        if history else None
    results['settings'] = vars(args)
    return results
