"""The semi-supervised M2 family on MNIST with 100 labels (Kingma et al.
2014; Jang et al. 2016), after vae_ssl (clinicalml), used by
``examples/m2.py`` and ``examples/m2_multiseed.py``.

M2 is a VAE with a discrete class y and a Gaussian z:
p(x, y, z) = p(x | y, z) p(y) p(z), p(y) uniform over K classes, inferred by
q(y | x) q(z | x, y). With ``nll(x, y)`` = E_q(z|x,y)[-log p(x | y, z)] and
``KL_z(x, y)`` = KL(q(z | x, y) || N(0, I)), the negative bounds are

* labelled:   L(x, y) = nll(x, y) + KL_z(x, y) + log K        (-log p(y))
* unlabelled: U(x) = sum_y q(y|x) [nll(x, y) + KL_z(x, y)] + KL(q(y|x) || U_K)

(``KL(q || U_K) = sum_y q log q + log K`` absorbs -log p(y) for the
unlabelled term, so log K is counted once in each bound and KL_z once: the
original ExactM2 counted KL_z twice.) The models differ in how they handle
the sum over y in U(x):

* ``ExactM2``: enumerate all K classes (K passes of q(z|x,y) and p(x|y,z)).
* ``GumbelSoftmaxM2`` / ``STGumbelSoftmaxM2``: one relaxed sample
  y = softmax((logits + g) * s), g ~ Gumbel, with sharpening (inverse
  temperature) s; ST uses the one-hot argmax forward, soft gradients.
* ``LogisticNormalM2`` / ``STLogisticNormalM2``: the same with
  g ~ N(0, 1) (vae_ssl's ``LogisticNormal`` drew it with mean 1).
* ``MLP``: the classifier q(y|x) alone, trained on the labelled images.

The relaxed models replace the sum by nll(x, y~) + KL_z(x, y~) and keep the
categorical KL(q(y|x) || U_K), as vae_ssl did; that is not a bound on
-log p(x) for the relaxed variable, so every model is *evaluated* with the
exact marginalised U(x).

Training minimises, per iteration of 100 unlabelled and 100 labelled images,
the batch *sums* ``sum U + sum L + a_t * cw * sum CE(q(y|x_l), y_l) +
rv * sum_params ||p||^2`` with a_t = min(1, 0.01 + t / ancw), as vae_ssl.

Batch normalisation: vae_ssl keeps separate running statistics for its three
subgraphs (unlabelled bound, labelled bound, classifier). Here each subgraph
is its own ``get_output`` call, so in training each normalises with its own
batch statistics exactly as vae_ssl; the *stored* statistics (used only for
evaluation) are one set per layer, collected before every evaluation over
the whole training set through the unlabelled path with dropout off.
vae_ssl's classifier statistics were a running average over the 100
labelled images; a pass over all 50k training images estimates the same
input distribution far better.

Other choices, against vae_ssl's code (clinicalml/vae_ssl):

* Sharpening s_t = s (1 + a_t) / 2 with a_t over ``-annealSharpening``
  iterations. vae_ssl's default, used by its 10-seed runs, is 1 iteration,
  i.e. s from the start; ``-annealSharpening 50000`` anneals it over the
  classifier's schedule instead.
* L2: ``rv * sum ||p||^2`` over every parameter (batch-norm scale and shift
  included) added to the batch-summed objective, so with 100 + 100
  examples per batch it weighs about rv / 100 per example.
* Gradients rescaled to a total norm of ``gn * num_params / 1000``; Adam
  with eps 1e-8; lr divided by 1.0005 per epoch (floor 1e-4).
* Extra N(0, 0.05^2) noise on z in training, as vae_ssl (``-znoise``).
* The dense layer before a batch norm has no bias (the normalisation
  cancels it exactly).
* Validation and test images are binarised once (``load_mnist_dynamic``),
  so all runs are scored on the same images; vae_ssl re-binarised them on
  every pass. Pixels are scaled by 1/255 (vae_ssl's pickle: 1/256).
* The labelled images are drawn by ``select_balanced_labels`` seeded with
  10 * seed (vae_ssl seeded numpy with 10 * seed too, but drew differently,
  so the same seed picks other images).
"""
import argparse
import csv
import json
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import lasagne
import theano
import theano.tensor as T
from lasagne.layers import (ConcatLayer, DenseLayer, FeaturePoolLayer,
                            InputLayer, Layer, get_all_layers,
                            get_all_params, get_output)
from theano.sandbox.rng_mrg import MRG_RandomStreams

from . import datasets
from .distributions import (kl_categorical_logits_uniform,
                            kl_normal2_stdnormal, log_bernoulli_logits)
from .evaluation import collect_statistics
from .layers import (ClipLayer, DropoutCorruptionLayer,
                     GumbelSoftmaxSampleLayer, LogisticNormalSampleLayer,
                     NormalizeLayer, SampleLayer, ScaleAndShiftLayer)
from .layers.sample import draw_seed
from .plotting import plot_history, plot_per_latent, plt, save_image_grid
from .training import (adam_with_clipping, check_finite, fit,
                       iterate_minibatches, progress)
from .vae_training import str2bool

__all__ = ['MODELS', 'VAE_SSL_VALID_ACCURACY', 'maxout_block', 'M2Model', 'annealing_coefficient',
           'vae_ssl_lr_schedule', 'm2_batches', 'm2_argument_parser', 'run',
           'multiseed_argument_parser', 'run_multiseed', 'summarise_seeds']

#: The ``-model`` choices.
MODELS = ('ExactM2', 'GumbelSoftmaxM2', 'STGumbelSoftmaxM2',
          'LogisticNormalM2', 'STLogisticNormalM2', 'MLP')

#: How each model handles y in the unlabelled bound: (relaxation,
#: straight_through); relaxation None means exact enumeration.
_Y_HANDLING = {
    'ExactM2': (None, False),
    'GumbelSoftmaxM2': ('gumbel', False),
    'STGumbelSoftmaxM2': ('gumbel', True),
    'LogisticNormalM2': ('logistic_normal', False),
    'STLogisticNormalM2': ('logistic_normal', True),
}

#: vae_ssl's README: best point of the 10-seed mean validation-accuracy
#: curve within 300 epochs (sharpening 3 for the relaxed models).
VAE_SSL_VALID_ACCURACY = {'ExactM2': 0.942, 'GumbelSoftmaxM2': 0.941,
                          'LogisticNormalM2': 0.939, 'MLP': 0.771}

#: vae_ssl's learning-rate decay: divide by this every epoch ...
LR_DECAY = 1.0005
#: ... unless the result would fall below this.
LR_FLOOR = 1e-4
#: vae_ssl's batch-normalisation epsilon (added to the variance).
BN_EPSILON = 1e-3
#: Rows per call when evaluating or collecting statistics.
EVAL_BATCH = 500


def maxout_block(incoming, num_units, stride=4, batch_norm=True,
                 init=lasagne.init.Uniform(0.1)):
    """vae_ssl's hidden layer: linear(stride * num_units) -> batch norm ->
    maxout over groups of `stride` units.

    vae_ssl takes ``max_i h[:, i::stride]``, so output unit j is the maximum
    of units j*stride .. j*stride + stride - 1, exactly Lasagne's
    FeaturePoolLayer. With batch norm the dense layer has no bias (the
    normalisation removes it); the scale and shift carry their own.

    Parameters
    ----------
    incoming : Layer
    num_units : int
        Units after the maxout.
    stride : int
        Pieces per maxout unit (1: a linear layer, optionally normalised).
    batch_norm : bool
        NormalizeLayer (running-average collection, eps 1e-3) and
        ScaleAndShiftLayer before the maxout.
    init : lasagne initialiser
        For every weight, bias and batch-norm scale and shift (vae_ssl uses
        U(-0.1, 0.1) for all of them).

    Returns
    -------
    Layer of `num_units` features.

    Example
    -------
    >>> l_h = maxout_block(InputLayer((None, 784)), 300)
    """
    layer = DenseLayer(incoming, stride * num_units, W=init,
                       b=None if batch_norm else init, nonlinearity=None)
    if batch_norm:
        layer = NormalizeLayer(layer, epsilon=BN_EPSILON,
                               alpha='running_average')
        layer = ScaleAndShiftLayer(layer, beta=init, gamma=init)
    if stride > 1:
        layer = FeaturePoolLayer(layer, stride, pool_function=T.max)
    return layer


def _stack(layer, num_layers, num_units, stride, batch_norm, init):
    for _ in range(num_layers):
        layer = maxout_block(layer, num_units, stride, batch_norm, init)
    return layer


class M2Model(object):
    """The networks of Kingma et al.'s M2 in vae_ssl's architecture, and its
    labelled and unlabelled negative bounds.

    Three Lasagne stacks share no layers, so each can be applied to any
    expression:

    * classifier q(y|x): x -> dropout -> `q_layers` maxout blocks = h(x)
      -> `alpha_layers` blocks -> K logits, clipped;
    * q(z|x,y): [linear(y), h(x)] -> `z_layers` blocks -> mu, log-variance
      -> a Gaussian sample;
    * p(x|y,z): [y, z] -> `p_layers` maxout blocks (no batch norm) -> 784
      Bernoulli logits.

    Parameters
    ----------
    kind : one of MODELS
    num_features, num_classes, num_latent : int
    q_hidden, q_layers, alpha_layers, z_layers : int
        Widths and depths of the inference networks (vae_ssl: 300, 4, 2, 2).
    p_hidden, p_layers : int
        Of the generative network (vae_ssl: 200, 4).
    maxout_stride : int
    batch_norm : bool
        In the inference networks (never in p(x|y,z)).
    input_dropout : float
        On x before h(x), during training.
    init_range : float
        Every parameter starts as U(-init_range, init_range).
    logit_clip : float or None
    temperature : float or Theano scalar
        Of the relaxed y samples, 1 / sharpening.
    z_noise : float
        Std. dev. of extra Gaussian noise added to z in training (vae_ssl:
        0.05); off for ``deterministic=True``.

    Example
    -------
    >>> model = M2Model('ExactM2', q_hidden=20, p_hidden=20, num_latent=4)
    >>> x = T.matrix('x')
    >>> terms = model.unlabelled_terms(x)
    >>> loss = terms['bound'].sum()
    """

    def __init__(self, kind, num_features=784, num_classes=10, num_latent=50,
                 q_hidden=300, q_layers=4, alpha_layers=2, z_layers=2,
                 p_hidden=200, p_layers=4, maxout_stride=4, batch_norm=True,
                 input_dropout=0.25, init_range=0.1, logit_clip=5.0,
                 temperature=1 / 3., z_noise=0.05):
        if kind not in MODELS:
            raise ValueError('unknown model %r; use one of %s'
                             % (kind, ', '.join(MODELS)))
        self.kind = kind
        self.num_classes = num_classes
        self.num_latent = num_latent
        self.z_noise = z_noise
        init = lasagne.init.Uniform(init_range)

        self.l_x = InputLayer((None, num_features))
        self.l_dropout = DropoutCorruptionLayer(self.l_x, input_dropout)
        self.l_hx = _stack(self.l_dropout, q_layers, q_hidden, maxout_stride,
                           batch_norm, init)
        layer = _stack(self.l_hx, alpha_layers, q_hidden, maxout_stride,
                       batch_norm, init)
        self.l_logits = ClipLayer(
            DenseLayer(layer, num_classes, W=init, b=init, nonlinearity=None),
            logit_clip)
        self.relaxation, straight_through = _Y_HANDLING.get(kind,
                                                            (None, False))
        self.l_y_sample = None
        if self.relaxation == 'gumbel':
            self.l_y_sample = GumbelSoftmaxSampleLayer(
                self.l_logits, temperature, straight_through=straight_through)
        elif self.relaxation == 'logistic_normal':
            # vae_ssl's logistic normal has unit variance: log-variance 0.
            self.l_y_sample = LogisticNormalSampleLayer(
                self.l_logits, _ZerosLikeLayer(self.l_logits), temperature,
                straight_through=straight_through)
        self.classifier_layers = [self.l_hx, self.l_logits]
        if kind == 'MLP':
            return

        self.l_qz_h = InputLayer((None, q_hidden))
        self.l_qz_y = InputLayer((None, num_classes))
        l_y_embed = DenseLayer(self.l_qz_y, q_hidden, W=init, b=init,
                               nonlinearity=None)
        layer = _stack(ConcatLayer([l_y_embed, self.l_qz_h]), z_layers,
                       q_hidden, maxout_stride, batch_norm, init)
        self.l_mu = DenseLayer(layer, num_latent, W=init, b=init,
                               nonlinearity=None)
        self.l_log_var = DenseLayer(layer, num_latent, W=init, b=init,
                                    nonlinearity=None)
        self.l_z = SampleLayer(self.l_mu, self.l_log_var)

        self.l_px_y = InputLayer((None, num_classes))
        self.l_px_z = InputLayer((None, num_latent))
        layer = _stack(ConcatLayer([self.l_px_y, self.l_px_z]), p_layers,
                       p_hidden, maxout_stride, False, init)
        self.l_x_logits = DenseLayer(layer, num_features, W=init, b=init,
                                     nonlinearity=None)
        self._srng = MRG_RandomStreams(draw_seed())

    # ------------------------------------------------------------ structure

    @property
    def output_layers(self):
        """The top layer of every stack."""
        layers = list(self.classifier_layers)
        if self.l_y_sample is not None:
            layers.append(self.l_y_sample)
        if self.kind != 'MLP':
            layers += [self.l_z, self.l_x_logits]
        return layers

    def params(self, **tags):
        """Every parameter (``trainable=True`` for the optimised ones)."""
        return get_all_params(self.output_layers, **tags)

    def normalize_layers(self):
        """The NormalizeLayers, whose statistics evaluation needs."""
        return [layer for layer in get_all_layers(self.output_layers)
                if isinstance(layer, NormalizeLayer)]

    # ------------------------------------------------------------ pieces

    def classify(self, x, **kwargs):
        """h(x) and the clipped logits of q(y|x).

        Keyword arguments go to ``get_output`` (``deterministic=True`` for
        evaluation, ``collect=True`` to collect batch-norm statistics).
        """
        return get_output(self.classifier_layers, {self.l_x: x}, **kwargs)

    def posterior_z(self, hx, y, eps=None, **kwargs):
        """mu, log-variance and a sample of q(z | x, y) from h(x) and y.

        `eps` (rows, num_latent), if given, replaces the layer's noise:
        z = mu + exp(log_var / 2) * eps (for tests against numpy).
        """
        inputs = {self.l_qz_h: hx, self.l_qz_y: y}
        if eps is not None:
            mu, log_var = get_output([self.l_mu, self.l_log_var], inputs,
                                     **kwargs)
            return mu, log_var, mu + T.exp(0.5 * log_var) * eps
        mu, log_var, z = get_output([self.l_mu, self.l_log_var, self.l_z],
                                    inputs, **kwargs)
        if self.z_noise and not kwargs.get('deterministic', False):
            z = z + self._srng.normal(z.shape, avg=0.0, std=self.z_noise,
                                      dtype=z.dtype)
        return mu, log_var, z

    def decode_logits(self, y, z, **kwargs):
        """Bernoulli logits of p(x | y, z)."""
        return get_output(self.l_x_logits, {self.l_px_y: y, self.l_px_z: z},
                          **kwargs)

    def _conditional_terms(self, x, hx, y, eps, **kwargs):
        mu, log_var, z = self.posterior_z(hx, y, eps, **kwargs)
        logits = self.decode_logits(y, z, **kwargs)
        nll = -log_bernoulli_logits(x, logits).sum(axis=1)
        kl_units = kl_normal2_stdnormal(mu, log_var)
        return nll, kl_units

    # ------------------------------------------------------------ bounds

    def labelled_terms(self, x, y, eps=None, **kwargs):
        """Negative labelled bound per example, L(x, y) = nll + KL_z + log K.

        Parameters
        ----------
        x : Theano matrix (B, D), binary images
        y : Theano matrix (B, K), one-hot labels
        eps : Theano matrix (B, num_latent), optional; fixed noise for z
        **kwargs : passed to ``get_output``

        Returns
        -------
        OrderedDict of (B,) vectors: bound, nll_x, kl_z.
        """
        hx, _ = self.classify(x, **kwargs)
        nll, kl_units = self._conditional_terms(x, hx, y, eps, **kwargs)
        kl_z = kl_units.sum(axis=1)
        terms = OrderedDict()
        terms['bound'] = nll + kl_z + np.log(self.num_classes)
        terms['nll_x'] = nll
        terms['kl_z'] = kl_z
        return terms

    def exact_unlabelled_terms(self, x, hx, logits, eps=None, **kwargs):
        """U(x) with the sum over all K classes (Kingma et al.'s M2).

        h(x) and x are tiled K times, class-major (row c*B + b is example b
        with class c), so that the batch statistics of q(z|x,y) are taken
        over the whole enumeration, as vae_ssl did.

        Parameters
        ----------
        x : Theano matrix (B, D)
        hx, logits : from :meth:`classify`
        eps : Theano matrix (K*B, num_latent), optional, class-major
        **kwargs : passed to ``get_output``

        Returns
        -------
        OrderedDict: bound, nll_x, kl_z, kl_y (B,), probs (B, K) and
        kl_units (B, num_latent), the per-latent KL_z expected under q(y|x).
        """
        num_classes = self.num_classes
        batch = x.shape[0]
        probs = T.nnet.softmax(logits)
        y = T.repeat(T.eye(num_classes, dtype=x.dtype), batch, axis=0)
        nll, kl_units = self._conditional_terms(
            T.tile(x, (num_classes, 1)), T.tile(hx, (num_classes, 1)), y, eps,
            **kwargs)
        # (K*B,) class-major -> (B, K)
        nll = nll.reshape((num_classes, batch)).T
        kl_units = kl_units.reshape((num_classes, batch, -1))
        kl_z = kl_units.sum(axis=2).T
        terms = OrderedDict()
        terms['kl_y'] = kl_categorical_logits_uniform(logits)
        terms['nll_x'] = (probs * nll).sum(axis=1)
        terms['kl_z'] = (probs * kl_z).sum(axis=1)
        terms['bound'] = terms['nll_x'] + terms['kl_z'] + terms['kl_y']
        terms['probs'] = probs
        terms['kl_units'] = (probs.T.dimshuffle(0, 1, 'x') * kl_units).sum(0)
        return terms

    def unlabelled_terms(self, x, eps=None, **kwargs):
        """The model's own negative unlabelled bound U(x) per example.

        ExactM2 enumerates the classes (:meth:`exact_unlabelled_terms`); the
        relaxed models use one relaxed sample y~ and
        nll(x, y~) + KL_z(x, y~) + KL(q(y|x) || U_K).

        Parameters
        ----------
        x : Theano matrix (B, D)
        eps : Theano matrix, optional
            Fixed noise for z: (K*B, num_latent) class-major for ExactM2,
            (B, num_latent) otherwise.
        **kwargs : passed to ``get_output``

        Returns
        -------
        OrderedDict of (B,) vectors: bound, nll_x, kl_z, kl_y; for the
        relaxed models also y (B, K), the sample; for ExactM2 see
        :meth:`exact_unlabelled_terms`.
        """
        if self.kind == 'MLP':
            raise ValueError('the MLP baseline has no bound')
        if self.l_y_sample is None:
            hx, logits = self.classify(x, **kwargs)
            return self.exact_unlabelled_terms(x, hx, logits, eps, **kwargs)
        hx, logits, y = get_output(self.classifier_layers + [self.l_y_sample],
                                   {self.l_x: x}, **kwargs)
        nll, kl_units = self._conditional_terms(x, hx, y, eps, **kwargs)
        terms = OrderedDict()
        terms['kl_y'] = kl_categorical_logits_uniform(logits)
        terms['nll_x'] = nll
        terms['kl_z'] = kl_units.sum(axis=1)
        terms['bound'] = nll + terms['kl_z'] + terms['kl_y']
        terms['y'] = y
        return terms


class _ZerosLikeLayer(Layer):
    """Zeros of the input's shape: the log-variance 0 of a unit-variance
    logistic normal."""

    def get_output_for(self, input, **kwargs):
        return T.zeros_like(input)


# ---------------------------------------------------------------- schedules


def annealing_coefficient(iteration, num_iterations):
    """vae_ssl's warm-up a_t = min(1, 0.01 + t / N) at iteration t >= 1.

    Works on numbers and on Theano scalars.

    Example
    -------
    >>> annealing_coefficient(25000, 50000)
    0.51
    """
    value = 0.01 + iteration / float(num_iterations)
    if isinstance(value, theano.Variable):
        return T.minimum(1.0, value)
    return min(1.0, value)


def vae_ssl_lr_schedule(learning_rate, factor=LR_DECAY, floor=LR_FLOOR):
    """vae_ssl's decay: divide by `factor` after every epoch unless that
    would go below `floor` (then it stays). Epochs count from 1.

    Example
    -------
    >>> schedule = vae_ssl_lr_schedule(5e-4)
    >>> schedule(1), round(schedule(301), 7)
    (0.0005, 0.0004304)
    """
    def schedule(epoch):
        value = learning_rate
        for _ in range(epoch - 1):
            if value / factor < floor:
                break
            value /= factor
        return value
    return schedule


def m2_batches(num_unlabelled, num_labelled, batch_size, rng):
    """One epoch of semi-supervised batches as vae_ssl draws them.

    The unlabelled rows are a permutation of all `num_unlabelled` training
    rows (labelled ones included) cut into batches of `batch_size`; each
    batch is paired with `batch_size` labelled rows drawn with replacement.

    Parameters
    ----------
    num_unlabelled, num_labelled, batch_size : int
    rng : numpy RandomState

    Yields
    ------
    (unlabelled_rows, labelled_rows): index arrays into the training set and
    into the labelled set.

    Example
    -------
    >>> for rows_u, rows_l in m2_batches(50000, 100, 100, rng):
    ...     train(x[rows_u], x_l[rows_l], y_l[rows_l])
    """
    for rows in iterate_minibatches(num_unlabelled, batch_size, rng):
        yield rows, rng.randint(0, num_labelled, batch_size)


# ---------------------------------------------------------------- trainer


def m2_argument_parser(description='Train an M2 model on MNIST.'):
    """The trainer's flags: vae_ssl's names and defaults where it has them.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add('-model', choices=MODELS, default='ExactM2',
        help='how y is handled in the unlabelled bound (see module doc); '
             'MLP trains the classifier alone on the labelled images')
    add('-ds', type=int, default=50, help='latent dimensions of z')
    add('-ph', type=int, default=200, help='hidden units of p(x|y,z)')
    add('-pl', type=int, default=4, help='hidden layers of p(x|y,z)')
    add('-qh', type=int, default=300, help='hidden units of q')
    add('-ql', type=int, default=4, help='hidden layers of h(x), shared by '
        'q(y|x) and q(z|x,y)')
    add('-al', type=int, default=2, help='hidden layers h(x) -> logits')
    add('-zl', type=int, default=2,
        help='hidden layers [y, h(x)] -> q(z|x,y)')
    add('-mstride', type=int, default=4,
        help='maxout pieces per unit (1: linear layers)')
    add('-bn', type=str2bool, default=True,
        help='batch-normalise the inference networks (never p(x|y,z))')
    add('-idrop', type=float, default=0.25,
        help='dropout probability on x in the inference network')
    add('-iw', '--init_weight', type=float, default=0.1,
        help='every parameter starts as U(-iw, iw) (vae_ssl; not importance '
             'weights)')
    add('-logit_clip', type=float, default=5.0,
        help='clip the logits of q(y|x) to +-this (0: off)')
    add('-znoise', type=float, default=0.05,
        help='std. dev. of the extra noise vae_ssl adds to z in training')
    add('-sharpening', type=float, default=3.0,
        help='inverse temperature s of the relaxed y samples '
             '(temperature 1/s)')
    add('-annealSharpening', type=float, default=1,
        help='iterations over which s rises from 0.5 s to s with '
             'a_t = min(1, 0.01 + t/N); vae_ssl\'s 1 means no annealing')
    add('-cw', type=float, default=128.0,
        help='weight of the summed classifier cross-entropy')
    add('-ancw', type=float, default=50000,
        help='iterations over which the classifier weight is annealed in, '
             'a_t = min(1, 0.01 + t/N)')
    add('-rv', type=float, default=0.1,
        help='L2 penalty rv * sum of squares of every parameter, added to '
             'the batch-summed objective (vae_ssl)')
    add('-gn', type=float, default=2.5,
        help='rescale gradients to a total norm of at most gn per 1000 '
             'parameters (0: off)')
    add('-lr', type=float, default=5e-4,
        help='Adam learning rate, divided by 1.0005 every epoch while it '
             'stays >= 1e-4')
    add('-bs', type=int, default=100,
        help='unlabelled and labelled images per iteration (each)')
    add('-ep', type=int, default=300, help='epochs')
    add('-nlpc', type=int, default=10, help='labels per class')
    add('-seed', type=int, default=1,
        help='seeds the labels (RandomState(10*seed), as vae_ssl), the data '
             'order and the initialisation')
    add('-eval_epoch', '-efreq', type=int, default=10,
        help='validation accuracy every this many epochs (and after the '
             'last)')
    add('-checkpoint_every', type=int, default=10, help='epochs')
    add('-maxiters', type=int, default=None,
        help='at most this many iterations per epoch (vae_ssl\'s debugging '
             'flag; for timing and quick tests)')
    add('-train_subset', type=int, default=None,
        help='train on the first N training images only (quick tests)')
    add('-eval_subset', type=int, default=None,
        help='evaluate on the first N validation / test images only')
    add('-outfolder', default=None,
        help='where results go (default results/m2/<model>_seed<seed>)')
    add('--max-minutes', type=float, default=None,
        help='stop training after this wall time (at an epoch boundary, '
             'with a checkpoint), then evaluate')
    add('--data-dir', default=None,
        help='folder with the MNIST files (default: $PARMESAN_DATA, else '
             '~/.parmesan/data)')
    add('--resume', action='store_true',
        help='continue from OUTFOLDER/checkpoint.npz')
    return parser


def _check_args(parser, args):
    for name in ('ds', 'ph', 'pl', 'qh', 'ql', 'al', 'zl', 'mstride', 'bs',
                 'ep', 'nlpc', 'eval_epoch', 'checkpoint_every'):
        minimum = 0 if name in ('pl', 'al', 'zl') else 1
        if getattr(args, name) < minimum:
            parser.error('-%s must be at least %d, got %r'
                         % (name, minimum, getattr(args, name)))
    if args.maxiters is not None and args.maxiters < 1:
        parser.error('-maxiters must be at least 1, got %r' % args.maxiters)
    for name in ('sharpening', 'annealSharpening', 'ancw'):
        if not getattr(args, name) > 0:
            parser.error('-%s must be positive, got %r'
                         % (name, getattr(args, name)))
    if not 0 <= args.idrop < 1:
        parser.error('-idrop must be in [0, 1), got %r' % args.idrop)


def load_data(args):
    """Training images (grey, binarised on the fly), labels, the labelled
    subset, and validation / test images binarised once.

    Returns
    -------
    dict with x_train (float32 grey), t_train, labelled (indices),
    x_valid, t_valid, x_test, t_test.
    """
    x_train, t_train, x_valid, t_valid, x_test, t_test = \
        datasets.load_mnist_dynamic(args.data_dir)
    if args.train_subset:
        x_train, t_train = x_train[:args.train_subset], \
            t_train[:args.train_subset]
    if args.eval_subset:
        x_valid, t_valid = x_valid[:args.eval_subset], \
            t_valid[:args.eval_subset]
        x_test, t_test = x_test[:args.eval_subset], t_test[:args.eval_subset]
    labelled = datasets.select_balanced_labels(t_train, args.nlpc,
                                               10 * args.seed)
    return dict(x_train=x_train, t_train=t_train, labelled=labelled,
                x_valid=x_valid, t_valid=t_valid, x_test=x_test,
                t_test=t_test)


def build_model(args, temperature=1 / 3.):
    """An :class:`M2Model` from parsed flags."""
    return M2Model(args.model, num_latent=args.ds, q_hidden=args.qh,
                   q_layers=args.ql, alpha_layers=args.al,
                   z_layers=args.zl, p_hidden=args.ph, p_layers=args.pl,
                   maxout_stride=args.mstride, batch_norm=args.bn,
                   input_dropout=args.idrop, init_range=args.init_weight,
                   logit_clip=args.logit_clip or None,
                   temperature=temperature, z_noise=args.znoise)


#: What the training function returns, in order, per kind of model.
M2_TRAIN_KEYS = ('loss', 'boundU', 'boundL', 'ce', 'acc_labelled', 'kl_y',
                 'kl_z', 'nll_x', 'a_cw', 'sharpening')
MLP_TRAIN_KEYS = ('loss', 'ce', 'acc_labelled')


def compile_functions(model, args, iteration, sharpening, learning_rate):
    """Compile train, collect, evaluate and decode.

    Parameters
    ----------
    model : M2Model
    args : parsed flags
    iteration : shared scalar, iterations done so far (updated by train)
    sharpening : Theano scalar expression, the current sharpening
    learning_rate : shared scalar

    Returns
    -------
    OrderedDict of compiled functions:

    * ``train(x_u, x_l, y_l)`` -> the numbers of M2_TRAIN_KEYS (or
      MLP_TRAIN_KEYS), per example;
    * ``collect(x)`` fills the batch-norm statistics (None without BN);
    * ``evaluate(x)`` -> probs (B, K) [, exact U(x) (B,), per-latent KL
      (B, ds)] with stored statistics;
    * ``decode(y, z)`` -> Bernoulli means (M2 models only).
    """
    x_u, x_l = T.matrix('x_unlabelled'), T.matrix('x_labelled')
    y_l = T.ivector('y_labelled')
    a_cw = annealing_coefficient(iteration + 1, args.ancw)
    _, logits_l = model.classify(x_l)
    ce = T.nnet.categorical_crossentropy(T.nnet.softmax(logits_l), y_l)
    accuracy = T.mean(T.eq(T.argmax(logits_l, axis=1), y_l))
    params = model.params(trainable=True)
    penalty = args.rv * sum(T.sum(p ** 2) for p in params)
    if model.kind == 'MLP':
        # vae_ssl's MLP: the classifier loss alone, not annealed.
        objective = args.cw * ce.sum()
        outputs = [objective / x_l.shape[0], ce.mean(), accuracy]
        inputs = [x_l, y_l]
    else:
        one_hot = T.extra_ops.to_one_hot(y_l, model.num_classes,
                                         dtype=x_l.dtype)
        unlabelled = model.unlabelled_terms(x_u)
        labelled = model.labelled_terms(x_l, one_hot)
        bound_sum = unlabelled['bound'].sum() + labelled['bound'].sum()
        objective = bound_sum + a_cw * args.cw * ce.sum()
        # vae_ssl's reported loss: un-annealed, per unlabelled example.
        loss = (bound_sum + args.cw * ce.sum()) / x_u.shape[0]
        outputs = [loss, unlabelled['bound'].mean(),
                   labelled['bound'].mean(), ce.mean(), accuracy,
                   unlabelled['kl_y'].mean(), unlabelled['kl_z'].mean(),
                   unlabelled['nll_x'].mean(), a_cw, sharpening]
        inputs = [x_u, x_l, y_l]
    num_params = int(sum(np.prod(p.get_value().shape) for p in params))
    max_norm = args.gn * num_params / 1000.0 if args.gn else None
    updates = adam_with_clipping(objective + penalty, params, learning_rate,
                                 epsilon=1e-8, max_norm=max_norm,
                                 clip_value=None)
    updates[iteration] = iteration + 1
    functions = OrderedDict()
    print('compiling %s (%d parameters; a cold Theano cache takes minutes)'
          '...' % (model.kind, num_params), flush=True)
    functions['train'] = theano.function(inputs, outputs, updates=updates,
                                         on_unused_input='ignore')
    x = T.matrix('x')
    if model.normalize_layers():
        if model.kind == 'MLP':
            collected = model.classify(x, collect=True)[1]
        else:
            collected = model.unlabelled_terms(x, collect=True)['bound']
        functions['collect'] = theano.function([x], collected.sum())
    else:
        functions['collect'] = None
    hx, logits = model.classify(x, deterministic=True)
    if model.kind == 'MLP':
        functions['evaluate'] = theano.function([x], T.nnet.softmax(logits))
    else:
        exact = model.exact_unlabelled_terms(x, hx, logits,
                                             deterministic=True)
        functions['evaluate'] = theano.function(
            [x], [exact['probs'], exact['bound'], exact['kl_units']])
        y, z = T.matrix('y'), T.matrix('z')
        functions['decode'] = theano.function(
            [y, z], T.nnet.sigmoid(model.decode_logits(y, z,
                                                       deterministic=True)))
    return functions, num_params


def _binarize(x, rng):
    return datasets.binarize(x, rng).astype(theano.config.floatX)


def run(argv=None, description='Train an M2 model on MNIST with 100 labels.'):
    """Parse flags, train, evaluate, plot. Returns the results dict.

    Writes to -outfolder: log.txt, log.jsonl, checkpoint.npz, results.json,
    curves.png (bounds), accuracy.png, samples.png (10 rows: samples of
    p(x|y) for y = 0..9, one z per column) and latent_kl.png (per-latent
    KL(q(z|x,y) || p(z)) on the validation set, expected under q(y|x)).

    Parameters
    ----------
    argv : list of str, optional (default: sys.argv[1:])
    description : str

    Example
    -------
    >>> results = run(['-model', 'ExactM2', '-ep', '2', '-train_subset',
    ...                '500', '-outfolder', '/tmp/m2'])   # doctest: +SKIP
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = m2_argument_parser(description)
    args = parser.parse_args(argv)
    _check_args(parser, args)
    if args.outfolder is None:
        args.outfolder = os.path.join('results', 'm2', '%s_seed%d'
                                      % (args.model, args.seed))

    rng = np.random.RandomState(args.seed)
    lasagne.random.set_rng(np.random.RandomState(args.seed + 1))
    data = load_data(args)
    x_train, labelled = data['x_train'], data['labelled']
    x_labelled, y_labelled = x_train[labelled], data['t_train'][labelled]

    iteration = theano.shared(lasagne.utils.floatX(0.0), 'iteration')
    sharpening = args.sharpening * 0.5 * (
        1.0 + annealing_coefficient(iteration + 1, args.annealSharpening))
    model = build_model(args, temperature=1.0 / sharpening)
    learning_rate = theano.shared(lasagne.utils.floatX(args.lr), 'lr')
    functions, num_params = compile_functions(model, args, iteration,
                                              sharpening, learning_rate)
    train = functions['train']
    train_keys = MLP_TRAIN_KEYS if args.model == 'MLP' else M2_TRAIN_KEYS
    normalize_layers = model.normalize_layers()

    def train_epoch(epoch):
        images = _binarize(x_train, rng)
        batches = list(m2_batches(len(images), len(labelled), args.bs,
                                  rng))[:args.maxiters]
        sums = np.zeros(len(train_keys))
        for rows_u, rows_l in progress(batches, len(batches),
                                       'epoch %d' % epoch):
            x_l = _binarize(x_labelled[rows_l], rng)
            inputs = [x_l, y_labelled[rows_l]]
            if args.model != 'MLP':
                inputs.insert(0, images[rows_u])
            values = np.array(train(*inputs), dtype=np.float64)
            sums += check_finite(values, 'the training loss in epoch %d'
                                 % epoch)
        means = sums / len(batches)
        row = OrderedDict(('train_' + key, float(value))
                          for key, value in zip(train_keys, means))
        if args.model != 'MLP':
            # Annealed values at the end of the epoch, not their means.
            row['a_cw'] = float(values[train_keys.index('a_cw')])
            row['sharpening'] = float(values[train_keys.index('sharpening')])
            del row['train_a_cw'], row['train_sharpening']
        return row

    def prepare_evaluation(epoch):
        # A binarisation of its own (seeded by the epoch), so evaluating
        # does not move the data stream of training and resumes exactly.
        if normalize_layers:
            collect_statistics(functions['collect'],
                               _binarize(x_train, np.random.RandomState(
                                   100003 + epoch)),
                               normalize_layers, batch_size=EVAL_BATCH)

    def predict(x):
        parts = [functions['evaluate'](x[rows]) for rows in
                 iterate_minibatches(len(x), EVAL_BATCH)]
        if args.model == 'MLP':
            return np.concatenate(parts), None, None
        return tuple(np.concatenate(p) for p in zip(*parts))

    def evaluate(epoch):
        prepare_evaluation(epoch)
        probs, bound, _ = predict(data['x_valid'].astype(theano.config.floatX))
        row = OrderedDict()
        row['valid_acc'] = float(np.mean(probs.argmax(1) == data['t_valid']))
        if bound is not None:
            row['valid_boundU'] = float(bound.mean())
        return row

    os.makedirs(args.outfolder, exist_ok=True)
    header = 'command: %s\nsettings: %s\nlabelled rows: %s' % (
        ' '.join([os.path.basename(sys.argv[0])] + argv),
        json.dumps(vars(args), sort_keys=True), labelled.tolist())

    def plots(history):
        name = '%s seed %d' % (args.model, args.seed)
        plot_history(history, ['train_acc_labelled', 'valid_acc'],
                     os.path.join(args.outfolder, 'accuracy.png'),
                     title=name, ylabel='accuracy')
        if args.model != 'MLP':
            plot_history(history, ['train_boundU', 'train_boundL',
                                   'valid_boundU'],
                         os.path.join(args.outfolder, 'curves.png'),
                         title=name, ylabel='negative bound, nats')
        else:
            plot_history(history, ['train_ce'],
                         os.path.join(args.outfolder, 'curves.png'),
                         title=name, ylabel='cross-entropy, nats')

    deadline = None if args.max_minutes is None else \
        time.time() + 60 * args.max_minutes
    history = fit(train_epoch, args.ep, args.outfolder,
                  [f for f in functions.values() if f is not None], rng,
                  learning_rate=learning_rate,
                  schedule=vae_ssl_lr_schedule(args.lr),
                  evaluate=evaluate, eval_every=args.eval_epoch,
                  checkpoint_every=args.checkpoint_every,
                  resume=args.resume, header=header, after_epoch=plots,
                  deadline=deadline)

    print('final evaluation on the validation and test sets...', flush=True)
    start = time.time()
    last_epoch = history[-1]['epoch'] if history else 0
    prepare_evaluation(last_epoch)
    floatx = theano.config.floatX
    valid_probs, valid_bound, kl_units = predict(
        data['x_valid'].astype(floatx))
    test_probs, test_bound, _ = predict(data['x_test'].astype(floatx))
    valid_acc = float(np.mean(valid_probs.argmax(1) == data['t_valid']))
    test_acc = float(np.mean(test_probs.argmax(1) == data['t_test']))
    evaluated = [row for row in history if 'valid_acc' in row]
    best = max(evaluated, key=lambda row: row['valid_acc']) if evaluated \
        else None
    train_seconds = sum(row['seconds'] for row in history)
    results = OrderedDict([
        ('model', args.model),
        ('seed', args.seed),
        ('epochs', last_epoch),
        ('num_labels', int(len(labelled))),
        ('num_params', num_params),
        ('train_seconds', round(train_seconds, 1)),
        ('seconds_per_epoch', round(train_seconds / max(len(history), 1),
                                    1)),
        ('eval_seconds', round(time.time() - start, 1)),
        ('valid_acc', valid_acc),
        ('test_acc', test_acc),
        ('test_error_percent', round(100 * (1 - test_acc), 2)),
        ('best_valid_acc', best['valid_acc'] if best else None),
        ('best_valid_epoch', best['epoch'] if best else None),
        ('valid_boundU', None if valid_bound is None
         else float(valid_bound.mean())),
        ('test_boundU', None if test_bound is None
         else float(test_bound.mean())),
        ('vae_ssl_valid_acc', VAE_SSL_VALID_ACCURACY.get(args.model)),
        ('last_train', history[-1] if history else None),
        ('labelled_rows', labelled.tolist()),
        ('settings', vars(args)),
    ])
    with open(os.path.join(args.outfolder, 'results.json'), 'w') as stream:
        json.dump(results, stream, indent=2)
    if args.model != 'MLP':
        _sample_grid(functions['decode'], model,
                     os.path.join(args.outfolder, 'samples.png'))
        plot_per_latent(kl_units.mean(axis=0),
                        os.path.join(args.outfolder, 'latent_kl.png'),
                        'E KL(q(z_u|x,y) || p(z_u)), nats',
                        title='%s: KL per latent unit (validation, '
                              'expected under q(y|x))' % args.model)
    print('%s seed %d: validation accuracy %.4f, test accuracy %.4f '
          '(%.2f %% error); results in %s'
          % (args.model, args.seed, valid_acc, test_acc,
             results['test_error_percent'], args.outfolder), flush=True)
    return results


def _sample_grid(decode, model, path, columns=10):
    """Row c: samples of p(x | y = c, z); column j shares one z ~ N(0, I)."""
    num_classes = model.num_classes
    z = np.random.RandomState(0).randn(columns, model.num_latent)
    z = np.tile(z, (num_classes, 1)).astype(theano.config.floatX)
    y = np.repeat(np.eye(num_classes), columns, axis=0).astype(
        theano.config.floatX)
    save_image_grid(decode(y, z), path, columns=columns,
                    title='p(x | y, z): row = class 0..%d, column = one z'
                          % (num_classes - 1))


# ---------------------------------------------------------------- seeds


def multiseed_argument_parser():
    """Flags of the multi-seed runner; everything else goes to :func:`run`.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        description='Run several M2 models over several seeds (one after '
                    'the other, each resumable in its own folder), then '
                    'write one table and one plot of validation accuracy '
                    'per epoch (mean +- std over seeds). Flags not listed '
                    'here are passed to every run (see examples/m2.py '
                    '--help).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add('--models', default='ExactM2',
        help='comma-separated, from: %s' % ', '.join(MODELS))
    add('--seeds', default='1,2,3,4,5,6,7,8,9,10',
        help='comma-separated seeds (vae_ssl used 1..10)')
    add('-outfolder', default=os.path.join('results', 'm2_multiseed'),
        help='runs go to OUTFOLDER/<model>/seed<N>; the table and plot to '
             'OUTFOLDER')
    add('--max-minutes', type=float, default=None,
        help='total wall-time budget: each run gets what is left; runs '
             'that do not start are reported as missing')
    add('--summary-only', action='store_true',
        help='only write the table and plot from the runs on disk')
    return parser


def _parse_list(text, convert, what):
    try:
        values = [convert(part) for part in text.split(',') if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('bad %s list %r' % (what, text))
    if not values:
        raise argparse.ArgumentTypeError('empty %s list' % what)
    return values


def run_multiseed(argv=None):
    """Train every model for every seed, then summarise.

    A run whose results.json covers the requested epochs is skipped, one
    with a checkpoint is resumed, others start fresh, so an interrupted
    invocation can simply be repeated.

    Parameters
    ----------
    argv : list of str, optional (default: sys.argv[1:])

    Returns
    -------
    list of dicts, the table rows (see :func:`summarise_seeds`).

    Example
    -------
    >>> run_multiseed(['--models', 'ExactM2,MLP', '--seeds', '1,2',
    ...                '-ep', '1', '-outfolder', '/tmp/ms'])  # doctest: +SKIP
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = multiseed_argument_parser()
    args, passed = parser.parse_known_args(argv)
    try:
        models = _parse_list(args.models, str, 'model')
        seeds = _parse_list(args.seeds, int, 'seed')
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error('unknown models %s; use %s' % (unknown,
                                                    ', '.join(MODELS)))
    for flag in ('-model', '-seed', '-outfolder', '--resume'):
        if flag in passed:
            parser.error('%s is set by the runner' % flag)
    # The epochs a finished run must have, from the trainer's own parser.
    trainer_args = m2_argument_parser().parse_args(passed)
    deadline = None if args.max_minutes is None else \
        time.time() + 60 * args.max_minutes
    if not args.summary_only:
        for model in models:
            for seed in seeds:
                folder = os.path.join(args.outfolder, model, 'seed%d' % seed)
                status = _run_status(folder, trainer_args.ep)
                if status == 'done':
                    print('%s seed %d: done already' % (model, seed))
                    continue
                run_argv = list(passed) + ['-model', model, '-seed',
                                           str(seed), '-outfolder', folder]
                if status == 'resume':
                    run_argv.append('--resume')
                if deadline is not None:
                    left = (deadline - time.time()) / 60.0
                    if left <= 0:
                        print('time budget used up; %s seed %d not run'
                              % (model, seed))
                        continue
                    run_argv += ['--max-minutes', '%.3f' % left]
                print('=== %s seed %d -> %s' % (model, seed, folder),
                      flush=True)
                run(run_argv)
    return summarise_seeds(args.outfolder, models, seeds)


def _run_status(folder, epochs):
    results = os.path.join(folder, 'results.json')
    if os.path.exists(results):
        with open(results) as stream:
            if json.load(stream).get('epochs', 0) >= epochs:
                return 'done'
    if os.path.exists(os.path.join(folder, 'checkpoint.npz')):
        return 'resume'
    return 'fresh'


def _read_history(folder):
    path = os.path.join(folder, 'log.jsonl')
    if not os.path.exists(path):
        return []
    with open(path) as stream:
        rows = [json.loads(line) for line in stream if line.strip()]
    # A resumed run appends; later rows of an epoch replace earlier ones.
    by_epoch = OrderedDict()
    for row in rows:
        by_epoch[row['epoch']] = row
    return [by_epoch[e] for e in sorted(by_epoch)]


def _mean_std(values):
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if len(values) == 0:
        return None, None
    return float(values.mean()), float(values.std(ddof=1)) \
        if len(values) > 1 else 0.0


def summarise_seeds(outfolder, models, seeds):
    """Write the multi-seed table (markdown and CSV) and accuracy plot.

    For each model: the validation-accuracy curve averaged over the seeds
    that reached each evaluated epoch, its best point (vae_ssl's README
    convention), and the final validation and test accuracies as
    mean +- sample std over seeds.

    Parameters
    ----------
    outfolder : str
        Holds <model>/seed<N>/ run folders; gets summary.md, summary.csv
        and valid_accuracy.png.
    models : list of str
    seeds : list of int

    Returns
    -------
    list of OrderedDicts, one table row per model.
    """
    table, curves = [], OrderedDict()
    for model in models:
        per_epoch, finals, tests, done = OrderedDict(), [], [], []
        for seed in seeds:
            folder = os.path.join(outfolder, model, 'seed%d' % seed)
            for row in _read_history(folder):
                if 'valid_acc' in row:
                    per_epoch.setdefault(row['epoch'], []).append(
                        row['valid_acc'])
            path = os.path.join(folder, 'results.json')
            if os.path.exists(path):
                with open(path) as stream:
                    results = json.load(stream)
                finals.append(results['valid_acc'])
                tests.append(results['test_acc'])
                done.append(seed)
        epochs = sorted(per_epoch)
        mean = np.array([np.mean(per_epoch[e]) for e in epochs])
        std = np.array([np.std(per_epoch[e], ddof=1)
                        if len(per_epoch[e]) > 1 else 0.0 for e in epochs])
        curves[model] = (epochs, mean, std)
        valid_mean, valid_std = _mean_std(finals)
        test_mean, test_std = _mean_std(tests)
        best = int(np.argmax(mean)) if len(mean) else None
        table.append(OrderedDict([
            ('model', model),
            ('seeds_done', len(done)),
            ('valid_acc_mean', valid_mean),
            ('valid_acc_std', valid_std),
            ('test_acc_mean', test_mean),
            ('test_acc_std', test_std),
            ('best_of_mean_curve', float(mean[best]) if best is not None
             else None),
            ('best_epoch', epochs[best] if best is not None else None),
            ('vae_ssl_reported', VAE_SSL_VALID_ACCURACY.get(model)),
        ]))
    os.makedirs(outfolder, exist_ok=True)
    with open(os.path.join(outfolder, 'summary.csv'), 'w',
              newline='') as stream:
        writer = csv.DictWriter(stream, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    with open(os.path.join(outfolder, 'summary.md'), 'w') as stream:
        stream.write(_markdown_table(table, seeds))
    _plot_curves(curves, seeds, os.path.join(outfolder,
                                             'valid_accuracy.png'))
    print(_markdown_table(table, seeds), flush=True)
    return table


def _markdown_table(table, seeds):
    def pm(mean, std):
        return '-' if mean is None else '%.4f +- %.4f' % (mean, std)

    lines = ['Seeds %s. Accuracies as mean +- sample std over the finished '
             'seeds; "best of mean curve" is the highest point of the '
             'seed-averaged validation curve (vae_ssl\'s convention).'
             % ','.join(str(s) for s in seeds), '',
             '| model | seeds done | valid acc (final) | test acc (final) '
             '| best of mean curve (epoch) | vae_ssl reported |',
             '|---|---|---|---|---|---|']
    for row in table:
        best = '-' if row['best_of_mean_curve'] is None else '%.4f (%d)' % (
            row['best_of_mean_curve'], row['best_epoch'])
        reported = '-' if row['vae_ssl_reported'] is None else \
            '%.3f' % row['vae_ssl_reported']
        lines.append('| %s | %d | %s | %s | %s | %s |' % (
            row['model'], row['seeds_done'],
            pm(row['valid_acc_mean'], row['valid_acc_std']),
            pm(row['test_acc_mean'], row['test_acc_std']), best, reported))
    return '\n'.join(lines) + '\n'


def _plot_curves(curves, seeds, path):
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for model, (epochs, mean, std) in curves.items():
        if not epochs:
            continue
        line, = axis.plot(epochs, mean, marker='.' if len(epochs) < 30
                          else None, label=model)
        axis.fill_between(epochs, mean - std, mean + std,
                          color=line.get_color(), alpha=0.2)
    axis.set_xlabel('epoch')
    axis.set_ylabel('validation accuracy')
    axis.set_title('mean +- std over seeds %s'
                   % ','.join(str(s) for s in seeds))
    axis.grid(alpha=0.3)
    if curves and any(c[0] for c in curves.values()):
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
