"""Model builders that several trainers and the benchmarks share."""
from collections import OrderedDict

import lasagne
import theano
import theano.tensor as T
from lasagne.layers import (DenseLayer, InputLayer, NonlinearityLayer,
                            get_all_layers, get_all_params, get_output)

from .distributions import (kl_normal2_stdnormal, log_bernoulli_logits,
                            log_normal2, log_stdnormal)
from .layers import (InverseAutoregressiveFlowLayer, ListIndexLayer,
                     NormalizeLayer, NormalizingPlanarFlowLayer,
                     NormalizingRadialFlowLayer, SampleLayer,
                     ScaleAndShiftLayer)
from .utils import importance_weighted_bound

__all__ = ['dense_block', 'VariationalAutoencoder', 'FLOWS']

#: The flows :class:`VariationalAutoencoder` can stack after its sample layer.
FLOWS = ('planar', 'radial', 'iaf')


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


class VariationalAutoencoder(object):
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

    Example
    -------
    >>> vae = VariationalAutoencoder(784, (200, 200), 50, T.tanh, T.tanh)
    >>> terms = vae.terms()
    >>> loss = -vae.bound(terms).mean()
    """

    def __init__(self, num_features, hidden_units, num_latent,
                 nonlinearity_encoder, nonlinearity_decoder,
                 batch_norm=False, flow=None, num_flows=0, iaf_hidden=200,
                 bernoulli_eps=0.0):
        if flow is not None and flow not in FLOWS:
            raise ValueError('unknown flow %r; use one of %s'
                             % (flow, ', '.join(FLOWS)))
        if num_flows and flow is None:
            raise ValueError('num_flows=%d needs a flow type' % num_flows)
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

    def params(self, **tags):
        return get_all_params(self.output_layers, **tags)

    def normalize_layers(self):
        return [layer for layer in get_all_layers(self.output_layers)
                if isinstance(layer, NormalizeLayer)]

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
        collected = get_output(self.output_layers, collect=True)
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
