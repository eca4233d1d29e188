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
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import lasagne
import theano
import theano.tensor as T
from lasagne.layers import (ConcatLayer, DenseLayer, FeaturePoolLayer,
                            InputLayer, get_output)
from theano.sandbox.rng_mrg import MRG_RandomStreams

from .. import datasets, ops
from ..distributions import (kl_categorical_logits_uniform,
                             kl_normal2_stdnormal, log_bernoulli_logits,
                             log_multinomial_logits)
from ..layers import (ClipLayer, DropoutCorruptionLayer,
                      GumbelSoftmaxSampleLayer, LogisticNormalSampleLayer,
                      NormalizeLayer, SampleLayer, ScaleAndShiftLayer,
                      ZerosLikeLayer)
from ..layers.sample import draw_seed
from ..nonlinearities import softmax
from ..updates import (adam_with_clipping, floored_decay_schedule,
                       linear_warmup)
from ..utils import one_hot
from .cli import (add_run_flags, argument_parser, parse_args, start_run,
                  str2bool, write_results)
from .compiling import compiling
from .evaluation import collect_statistics
from .model import ExperimentModel
from .plotting import plot_history, plot_per_latent, save_image_grid
from .training import (check_finite, fit, iterate_minibatches, progress,
                       semi_supervised_batches)

__all__ = ['MODELS', 'VAE_SSL_VALID_ACCURACY', 'LIMITS', 'maxout_block',
           'M2Model', 'LOGGED_BOUNDS', 'logged_bounds', 'm2_argument_parser',
           'default_outfolder',
           'parse_run_args', 'load_data', 'build_model', 'run']

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


class M2Model(ExperimentModel):
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

        self._build_classifier(num_features, num_classes, q_hidden,
                               q_layers, alpha_layers, maxout_stride,
                               batch_norm, input_dropout, init, logit_clip,
                               temperature)
        if kind == 'MLP':
            return
        self._build_posterior_z(num_classes, num_latent, q_hidden, z_layers,
                                maxout_stride, batch_norm, init)
        self._build_decoder(num_features, num_classes, num_latent, p_hidden,
                            p_layers, maxout_stride, init)
        self._srng = MRG_RandomStreams(draw_seed())

    def _build_classifier(self, num_features, num_classes, q_hidden,
                          q_layers, alpha_layers, maxout_stride, batch_norm,
                          input_dropout, init, logit_clip, temperature):
        """q(y|x), and the relaxed sample of y for the relaxed models."""
        self.l_x = InputLayer((None, num_features))
        self.l_dropout = DropoutCorruptionLayer(self.l_x, input_dropout)
        self.l_hx = _stack(self.l_dropout, q_layers, q_hidden, maxout_stride,
                           batch_norm, init)
        layer = _stack(self.l_hx, alpha_layers, q_hidden, maxout_stride,
                       batch_norm, init)
        self.l_logits = ClipLayer(
            DenseLayer(layer, num_classes, W=init, b=init, nonlinearity=None),
            logit_clip)
        self.relaxation, straight_through = _Y_HANDLING.get(self.kind,
                                                            (None, False))
        self.l_y_sample = None
        if self.relaxation == 'gumbel':
            self.l_y_sample = GumbelSoftmaxSampleLayer(
                self.l_logits, temperature, straight_through=straight_through)
        elif self.relaxation == 'logistic_normal':
            # vae_ssl's logistic normal has unit variance: log-variance 0.
            self.l_y_sample = LogisticNormalSampleLayer(
                self.l_logits, ZerosLikeLayer(self.l_logits), temperature,
                straight_through=straight_through)
        self.classifier_layers = [self.l_hx, self.l_logits]

    def _build_posterior_z(self, num_classes, num_latent, q_hidden, z_layers,
                           maxout_stride, batch_norm, init):
        """q(z|x,y) on stand-ins for h(x) and y."""
        self.l_qz_h = InputLayer((None, q_hidden))
        self.l_qz_y = InputLayer((None, num_classes))
        self.l_qz_y_embed = DenseLayer(self.l_qz_y, q_hidden, W=init,
                                       b=init, nonlinearity=None)
        concat = ConcatLayer([self.l_qz_y_embed, self.l_qz_h])
        layer = _stack(concat, z_layers, q_hidden, maxout_stride,
                       batch_norm, init)
        #: The first dense layer on [embedded y, h(x)] (None if z_layers
        #: is 0): ExactM2 computes it factored, see enumerated_first_dense.
        self.l_qz_first = next(
            (candidate for candidate in lasagne.layers.get_all_layers(layer)
             if isinstance(candidate, DenseLayer) and
             candidate.input_layer is concat), None)
        self.l_mu = DenseLayer(layer, num_latent, W=init, b=init,
                               nonlinearity=None)
        self.l_log_var = DenseLayer(layer, num_latent, W=init, b=init,
                                    nonlinearity=None)
        self.l_z = SampleLayer(self.l_mu, self.l_log_var)

    def _build_decoder(self, num_features, num_classes, num_latent, p_hidden,
                       p_layers, maxout_stride, init):
        """p(x|y,z) on stand-ins for y and z (never batch-normalised)."""
        self.l_px_y = InputLayer((None, num_classes))
        self.l_px_z = InputLayer((None, num_latent))
        layer = _stack(ConcatLayer([self.l_px_y, self.l_px_z]), p_layers,
                       p_hidden, maxout_stride, False, init)
        self.l_x_logits = DenseLayer(layer, num_features, W=init, b=init,
                                     nonlinearity=None)

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

    # ------------------------------------------------------------ pieces

    def classify(self, x, **kwargs):
        """h(x) and the clipped logits of q(y|x).

        Keyword arguments go to ``get_output`` (``deterministic=True`` for
        evaluation, ``collect=True`` to collect batch-norm statistics).
        """
        return get_output(self.classifier_layers, {self.l_x: x}, **kwargs)

    def posterior_z(self, hx, y, eps=None, first_dense=None, **kwargs):
        """mu, log-variance and a sample of q(z | x, y) from h(x) and y.

        `eps` (rows, num_latent), if given, replaces the layer's noise:
        z = mu + exp(log_var / 2) * eps (for tests against numpy).
        `first_dense`, if given, is the output of :attr:`l_qz_first` (from
        :meth:`enumerated_first_dense`), in place of hx and y.
        """
        inputs = {self.l_qz_h: hx, self.l_qz_y: y} if first_dense is None \
            else {self.l_qz_first: first_dense}
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

    def enumerated_first_dense(self, hx, **kwargs):
        """The output of q(z|x,y)'s first dense layer for every class and
        example, class-major (row c*B + b: example b with class c).

        The layer sees [embed(y), h(x)], so its product is
        embed(y) W_y + h(x) W_h: the first term has K distinct rows, the
        second B; computing each once and repeating them costs
        (K + B) rows of products instead of K * B (a quarter of ExactM2's
        matrix products), and Theano's gradients of the repetitions sum
        over the classes exactly as the tiled graph's do.
        """
        dense = self.l_qz_first
        width = self.l_qz_y_embed.num_units
        y_embed = get_output(self.l_qz_y_embed, {
            self.l_qz_y: T.eye(self.num_classes, dtype=hx.dtype)}, **kwargs)
        per_class = T.dot(y_embed, dense.W[:width])
        per_example = T.dot(hx, dense.W[width:])
        activation = T.repeat(per_class, hx.shape[0], axis=0) + \
            T.tile(per_example, (self.num_classes, 1))
        if dense.b is not None:
            activation = activation + dense.b.dimshuffle('x', 0)
        return dense.nonlinearity(activation)

    def _conditional_terms(self, x, hx, y, eps, first_dense=None, **kwargs):
        mu, log_var, z = self.posterior_z(hx, y, eps, first_dense=first_dense,
                                          **kwargs)
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
        probs = softmax(logits)
        y = T.repeat(T.eye(num_classes, dtype=x.dtype), batch, axis=0)
        if self.l_qz_first is not None and ops.config.factored_enumeration:
            nll, kl_units = self._conditional_terms(
                T.tile(x, (num_classes, 1)), None, y, eps,
                first_dense=self.enumerated_first_dense(hx, **kwargs),
                **kwargs)
        else:
            nll, kl_units = self._conditional_terms(
                T.tile(x, (num_classes, 1)), T.tile(hx, (num_classes, 1)), y,
                eps, **kwargs)
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

    # ------------------------------------------------------------ compiling

    def num_params(self):
        """The number of trainable parameter values."""
        return int(sum(np.prod(p.get_value().shape)
                       for p in self.params(trainable=True)))

    def compile_train(self, learning_rate, iteration, sharpening,
                      classifier_weight=128.0, classifier_warmup=50000,
                      l2=0.1, grad_norm=2.5):
        """Compile one Adam step of vae_ssl's objective.

        The objective is the batch *sum* ``sum U + sum L + a_t * cw *
        sum CE(q(y|x_l), y_l) + l2 * sum_params ||p||^2``, with
        a_t = :func:`parmesan.updates.linear_warmup` (t + 1,
        `classifier_warmup`); the MLP minimises ``cw * sum CE`` alone.

        Parameters
        ----------
        learning_rate : Theano shared scalar
        iteration : Theano shared scalar
            Iterations done so far; every call adds one.
        sharpening : Theano scalar expression
            The current sharpening, returned for the log.
        classifier_weight, classifier_warmup : float
            cw and the iterations of its warm-up.
        l2 : float
        grad_norm : float
            Gradients are rescaled to a total norm of at most grad_norm per
            1000 parameters (0: off).

        Returns
        -------
        (function, names): ``function(x_u, x_l, y_l)`` (the MLP:
        ``function(x_l, y_l)``) returns the numbers named by `names`
        (:data:`M2_TRAIN_KEYS` or :data:`MLP_TRAIN_KEYS`), per example.
        """
        x_u, x_l = T.matrix('x_unlabelled'), T.matrix('x_labelled')
        y_l = T.ivector('y_labelled')
        a_cw = linear_warmup(iteration + 1, classifier_warmup)
        _, logits_l = self.classify(x_l)
        ce = -log_multinomial_logits(y_l, logits_l)
        accuracy = T.mean(T.eq(T.argmax(logits_l, axis=1), y_l))
        params = self.params(trainable=True)
        penalty = l2 * sum(T.sum(p ** 2) for p in params)
        if self.kind == 'MLP':
            # vae_ssl's MLP: the classifier loss alone, not annealed.
            objective = classifier_weight * ce.sum()
            outputs = [objective / x_l.shape[0], ce.mean(), accuracy]
            inputs, names = [x_l, y_l], MLP_TRAIN_KEYS
        else:
            y_one_hot = one_hot(y_l, self.num_classes, dtype=x_l.dtype)
            unlabelled = self.unlabelled_terms(x_u)
            labelled = self.labelled_terms(x_l, y_one_hot)
            bound_sum = unlabelled['bound'].sum() + labelled['bound'].sum()
            objective = bound_sum + a_cw * classifier_weight * ce.sum()
            # vae_ssl's reported loss: un-annealed, per unlabelled example.
            loss = (bound_sum + classifier_weight * ce.sum()) / x_u.shape[0]
            outputs = [loss, unlabelled['bound'].mean(),
                       labelled['bound'].mean(), ce.mean(), accuracy,
                       unlabelled['kl_y'].mean(), unlabelled['kl_z'].mean(),
                       unlabelled['nll_x'].mean(), a_cw, sharpening]
            inputs, names = [x_u, x_l, y_l], M2_TRAIN_KEYS
        num_params = self.num_params()
        max_norm = grad_norm * num_params / 1000.0 if grad_norm else None
        updates = adam_with_clipping(objective + penalty, params,
                                     learning_rate, epsilon=1e-8,
                                     max_norm=max_norm, clip_value=None)
        updates[iteration] = iteration + 1
        with compiling('the training function of %s (%d parameters)'
                       % (self.kind, num_params)):
            function = theano.function(inputs, outputs, updates=updates,
                                       on_unused_input='ignore')
        return function, list(names)

    def compile_evaluation(self):
        """Compile collect (with batch norm only), evaluate and decode.

        Returns
        -------
        OrderedDict of compiled functions: ``collect(x)`` fills the
        batch-norm statistics; ``evaluate(x)`` -> probs (B, K) [, exact
        U(x) (B,), per-latent KL (B, num_latent)] with stored statistics;
        ``decode(y, z)`` -> Bernoulli means (M2 models only).
        """
        functions = OrderedDict()
        x = T.matrix('x')
        if self.normalize_layers():
            if self.kind == 'MLP':
                collected = self.classify(x, deterministic=True,
                                          collect=True)[1]
            else:
                collected = self.unlabelled_terms(
                    x, deterministic=True, collect=True)['bound']
            functions['collect'] = theano.function([x], collected.sum())
        hx, logits = self.classify(x, deterministic=True)
        if self.kind == 'MLP':
            functions['evaluate'] = theano.function([x], softmax(logits))
            return functions
        exact = self.exact_unlabelled_terms(x, hx, logits,
                                            deterministic=True)
        functions['evaluate'] = theano.function(
            [x], [exact['probs'], exact['bound'], exact['kl_units']])
        y, z = T.matrix('y'), T.matrix('z')
        functions['decode'] = theano.function(
            [y, z], T.nnet.sigmoid(self.decode_logits(y, z,
                                                      deterministic=True)))
        return functions


#: What the training function returns, in order, per kind of model
#: (boundU and boundL are the negative bounds U(x) and L(x, y) it
#: minimises).
M2_TRAIN_KEYS = ('loss', 'boundU', 'boundL', 'ce', 'acc_labelled', 'kl_y',
                 'kl_z', 'nll_x', 'a_cw', 'sharpening')
MLP_TRAIN_KEYS = ('loss', 'ce', 'acc_labelled')

#: The logged bounds: lower bounds, negative like the VAE trainers' (the
#: training function's negative bounds with their sign flipped), by the
#: names that earlier versions logged positive.
LOGGED_BOUNDS = OrderedDict([
    ('train_boundU', 'train_bound_unlabelled'),
    ('train_boundL', 'train_bound_labelled'),
    ('valid_boundU', 'valid_bound_unlabelled'),
])


def logged_bounds(row):
    """A log row with the negative bounds of earlier versions
    (``train_boundU``: U(x) >= -log p(x)) as the lower bounds logged now
    (``train_bound_unlabelled`` = -U(x) <= log p(x)), so that old logs plot
    and compare with new ones; other rows are returned as they are.

    Example
    -------
    >>> logged_bounds({'epoch': 1, 'train_boundU': 120.5})
    OrderedDict([('epoch', 1), ('train_bound_unlabelled', -120.5)])
    """
    return OrderedDict((LOGGED_BOUNDS.get(key, key),
                        -value if key in LOGGED_BOUNDS and value is not None
                        else value) for key, value in row.items())


# ---------------------------------------------------------------- trainer


def m2_argument_parser(description='Train an M2 model on MNIST.'):
    """The trainer's flags: vae_ssl's names and defaults where it has them
    (``-bs``, ``-ep``, ``-seed``, ``-efreq``, ... stay accepted beside the
    spellings the other trainers share).

    Returns
    -------
    argparse.ArgumentParser

    Example
    -------
    >>> args = m2_argument_parser().parse_args(['-bs', '50', '-ep', '3'])
    >>> args.batch_size, args.nepochs
    (50, 3)
    """
    parser = argument_parser(description)
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
    add('--init-weight', '-iw', type=float, default=0.1,
        help='every parameter starts as U(-w, w) (vae_ssl\'s -iw; not '
             'importance weights)')
    add('--logit-clip', type=float, default=5.0,
        help='clip the logits of q(y|x) to +-this (0: off)')
    add('--z-noise', type=float, default=0.05,
        help='std. dev. of the extra noise vae_ssl adds to z in training')
    add('-sharpening', type=float, default=3.0,
        help='inverse temperature s of the relaxed y samples '
             '(temperature 1/s)')
    add('--anneal-sharpening', '-annealSharpening', type=float, default=1,
        help='iterations over which s rises from 0.5 s to s with '
             'a_t = min(1, 0.01 + t/N); vae_ssl\'s 1 means no annealing')
    add('-cw', type=float, default=128.0,
        help='weight of the summed classifier cross-entropy')
    add('--anneal-cw', '-ancw', '--annealCW', type=float, default=50000,
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
    add('-batch_size', '-bs', type=int, default=100,
        help='unlabelled and labelled images per iteration (each)')
    add('-nepochs', '-ep', '--epochs', dest='nepochs', type=int, default=300,
        help='epochs')
    add('-nlpc', type=int, default=10, help='labels per class')
    add('-eval_epoch', '-efreq', type=int, default=10,
        help='validation accuracy every this many epochs (and after the '
             'last)')
    add('-maxiters', type=int, default=None,
        help='at most this many iterations per epoch (vae_ssl\'s debugging '
             'flag; for timing and quick tests)')
    add('--eval-subset', type=int, default=None,
        help='evaluate on the first N validation / test images only')
    add_run_flags(parser, outfolder=None, seed=1, seed_aliases=('-seed',),
                  seed_help='seeds the labels (RandomState(10*seed), as '
                            'vae_ssl), the data order and the '
                            'initialisation')
    return parser


#: This trainer's bounds beyond :data:`parmesan.experiments.cli.ALLOWED`.
LIMITS = {
    'train_subset': dict(high=50000, why='(the training images)'),
    'eval_subset': dict(high=10000, why='(the validation and test images)'),
    # The labels are drawn with RandomState(10 * seed), below 2**32.
    'seed': dict(high=(2 ** 32 - 1) // 10, why='(the labels are drawn with '
                 'RandomState(10 * seed))'),
}


def default_outfolder(args):
    """results/m2/<model>_seed<seed>, when -outfolder is not given."""
    return os.path.join('results', 'm2', '%s_seed%d' % (args.model,
                                                        args.seed))


def parse_run_args(argv, description='Train an M2 model on MNIST with 100 '
                   'labels.'):
    """The flags of :func:`run`, parsed and checked without training (see
    :func:`parmesan.experiments.cli.parse_args`); fills in the default
    output folder."""
    return parse_args(m2_argument_parser(description), argv, LIMITS,
                      outfolder=default_outfolder)


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
                   temperature=temperature, z_noise=args.z_noise)


def _binarize(x, rng):
    return datasets.binarize(x, rng).astype(theano.config.floatX)


def _epoch_trainer(train, names, args, data, rng):
    x_train, t_train, labelled = data['x_train'], data['t_train'], \
        data['labelled']
    is_mlp = args.model == 'MLP'

    def train_epoch(epoch):
        images = _binarize(x_train, rng)
        batches = list(semi_supervised_batches(
            len(images), labelled, args.batch_size, rng,
            labelled_draw='with_replacement'))[:args.maxiters]
        sums = np.zeros(len(names))
        for index, (rows_u, rows_l) in enumerate(progress(
                batches, len(batches), 'epoch %d' % epoch)):
            inputs = [_binarize(x_train[rows_l], rng), t_train[rows_l]]
            if not is_mlp:
                inputs.insert(0, images[rows_u])
            values = check_finite(train(*inputs), 'epoch %d, batch %d of %d'
                                  % (epoch, index + 1, len(batches)), names)
            sums += values
        row = logged_bounds(OrderedDict(
            ('train_' + key, float(value))
            for key, value in zip(names, sums / len(batches))))
        if not is_mlp:
            # Annealed values at the end of the epoch, not their means.
            row['a_cw'] = float(values[names.index('a_cw')])
            row['sharpening'] = float(values[names.index('sharpening')])
            del row['train_a_cw'], row['train_sharpening']
        return row
    return train_epoch


class _Evaluator(object):
    """Batch-norm statistics from the training images, then q(y|x) and the
    exact unlabelled bound on held-out images."""

    def __init__(self, functions, model, x_train):
        self.functions = functions
        self.normalize_layers = model.normalize_layers()
        self.is_mlp = model.kind == 'MLP'
        self.x_train = x_train

    def prepare(self, epoch):
        # A binarisation of its own (seeded by the epoch), so evaluating
        # does not move the data stream of training and resumes exactly.
        if self.normalize_layers:
            collect_statistics(self.functions['collect'],
                               _binarize(self.x_train, np.random.RandomState(
                                   100003 + epoch)),
                               self.normalize_layers, batch_size=EVAL_BATCH)

    def predict(self, x):
        """(probs, exact U(x) or None, per-latent KL or None)."""
        x = x.astype(theano.config.floatX)
        parts = [self.functions['evaluate'](x[rows]) for rows in
                 iterate_minibatches(len(x), EVAL_BATCH)]
        if self.is_mlp:
            return np.concatenate(parts), None, None
        return tuple(np.concatenate(p) for p in zip(*parts))

    def validation_row(self, epoch, x_valid, t_valid):
        self.prepare(epoch)
        probs, bound, _ = self.predict(x_valid)
        row = OrderedDict()
        row['valid_acc'] = float(np.mean(probs.argmax(1) == t_valid))
        if bound is not None:
            row['valid_bound_unlabelled'] = -float(bound.mean())
        return row


def _plotter(args, data):
    name = '%s seed %d' % (args.model, args.seed)
    accuracy_title = ('%s: accuracy of q(y|x) on the labelled rows of each '
                      'batch (train) and on %s validation images'
                      % (name, _how_many(len(data['x_valid']),
                                         args.eval_subset)))

    def plots(history):
        plot_history(history, ['train_acc_labelled', 'valid_acc'],
                     os.path.join(args.outfolder, 'accuracy.png'),
                     title=accuracy_title, ylabel='accuracy')
        if args.model != 'MLP':
            plot_history([logged_bounds(row) for row in history],
                         list(LOGGED_BOUNDS.values()),
                         os.path.join(args.outfolder, 'curves.png'),
                         title='%s: lower bounds on log p(x) (unlabelled) '
                               'and log p(x, y) (labelled)' % name,
                         ylabel='bound, nats')
        else:
            plot_history(history, ['train_ce'],
                         os.path.join(args.outfolder, 'curves.png'),
                         title=name, ylabel='cross-entropy, nats')
    return plots


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
    >>> results = run(['-model', 'ExactM2', '-nepochs', '2',
    ...                '--train-subset', '500', '-outfolder', '/tmp/m2'])
    ... # doctest: +SKIP
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_run_args(argv, description)
    with start_run(args, argv, trainer='m2') as run_folder:
        return _train_m2(args, run_folder)


def _train_m2(args, run_folder):
    data = load_data(args)
    run_folder.header += '\nlabelled rows: %s' % data['labelled'].tolist()

    iteration = theano.shared(lasagne.utils.floatX(0.0), 'iteration')
    sharpening = args.sharpening * 0.5 * (
        1.0 + linear_warmup(iteration + 1, args.anneal_sharpening))
    model = build_model(args, temperature=1.0 / sharpening)
    learning_rate = theano.shared(lasagne.utils.floatX(args.lr), 'lr')
    train, names = model.compile_train(
        learning_rate, iteration, sharpening, classifier_weight=args.cw,
        classifier_warmup=args.anneal_cw, l2=args.rv, grad_norm=args.gn)
    with compiling('the evaluation functions'):
        evaluator = _Evaluator(model.compile_evaluation(), model,
                               data['x_train'])
    history = fit(_epoch_trainer(train, names, args, data, run_folder.rng),
                  args.nepochs, run_folder,
                  [train] + list(evaluator.functions.values()),
                  learning_rate=learning_rate,
                  schedule=floored_decay_schedule(args.lr, LR_DECAY,
                                                  LR_FLOOR),
                  evaluate=lambda epoch: evaluator.validation_row(
                      epoch, data['x_valid'], data['t_valid']),
                  eval_every=args.eval_epoch, after_epoch=_plotter(args, data),
                  model=model)
    run_folder.reseed_evaluation(history[-1]['epoch'] if history else 0)
    return _final_evaluation(args, model, evaluator, history, data)


def _final_evaluation(args, model, evaluator, history, data):
    print('final evaluation on the validation and test sets (%d and %d '
          'images)...' % (len(data['x_valid']), len(data['x_test'])),
          flush=True)
    start = time.time()
    last_epoch = history[-1]['epoch'] if history else 0
    evaluator.prepare(last_epoch)
    valid_probs, valid_bound, kl_units = evaluator.predict(data['x_valid'])
    test_probs, test_bound, _ = evaluator.predict(data['x_test'])
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
        ('num_labels', int(len(data['labelled']))),
        ('num_params', model.num_params()),
        ('train_seconds', round(train_seconds, 1)),
        ('seconds_per_epoch', round(train_seconds / max(len(history), 1),
                                    1)),
        ('eval_seconds', round(time.time() - start, 1)),
        ('valid_acc', valid_acc),
        ('test_acc', test_acc),
        ('test_error_percent', round(100 * (1 - test_acc), 2)),
        ('best_valid_acc', best['valid_acc'] if best else None),
        ('best_valid_epoch', best['epoch'] if best else None),
        ('valid_bound_unlabelled', None if valid_bound is None
         else -float(valid_bound.mean())),
        ('test_bound_unlabelled', None if test_bound is None
         else -float(test_bound.mean())),
        ('vae_ssl_valid_acc', VAE_SSL_VALID_ACCURACY.get(args.model)),
        ('last_train', history[-1] if history else None),
        ('labelled_rows', data['labelled'].tolist()),
        ('settings', vars(args)),
    ])
    write_results(args.outfolder, results)
    if args.model != 'MLP':
        _sample_grid(evaluator.functions['decode'], model,
                     os.path.join(args.outfolder, 'samples.png'))
        plot_per_latent(kl_units.mean(axis=0),
                        os.path.join(args.outfolder, 'latent_kl.png'),
                        'E KL(q(z_u|x,y) || p(z_u)), nats',
                        title='%s: KL per latent unit (validation, '
                              'expected under q(y|x))' % args.model)
    print('%s seed %d: validation accuracy %.4f on %s validation images, '
          'test accuracy %.4f (%.2f %% error) on %s test images (binarised '
          'once, seeds 1235 and 1234); results in %s'
          % (args.model, args.seed, valid_acc,
             _how_many(len(data['x_valid']), args.eval_subset), test_acc,
             results['test_error_percent'],
             _how_many(len(data['x_test']), args.eval_subset),
             args.outfolder), flush=True)
    return results


def _how_many(count, subset):
    """'all 10000' or 'the first 100' (with --eval-subset)."""
    return ('the first %d' if subset else 'all %d') % count


def _sample_grid(decode, model, path, columns=10):
    """Row c: samples of p(x | y = c, z); column j shares one z ~ N(0, I)."""
    num_classes = model.num_classes
    z = np.random.RandomState(0).randn(columns, model.num_latent)
    z = np.tile(z, (num_classes, 1)).astype(theano.config.floatX)
    y = np.repeat(np.eye(num_classes), columns, axis=0).astype(
        theano.config.floatX)
    save_image_grid(decode(y, z), path, columns=columns,
                    title='means of p(x | y, z): one row per class y, one '
                          'z ~ N(0, I) per column',
                    row_labels=['y = %d' % c for c in range(num_classes)])
