"""Parmesan on Theano's GPU backend (gpuarray), run on the CPU through OpenCL.

Theano picks its device once, at import, so the backend runs in one
subprocess (this file run as a script, ``device=opencl0:0``, float32) that
builds every case, compiling everything once, and writes its results and op
placement as JSON; the test process builds the same cases on the CPU backend
(float64 by the suite's default, float32 with ``THEANO_FLAGS=floatX=float32``)
and compares them at float32 tolerances. The MRG streams on the device
reproduce the host's draws, so sample layers are compared sample by sample.

The subprocess starts when the tests are collected (``conftest.py`` calls
:func:`start_device_worker`), so that it compiles beside the other tests, on
the other core, with a Theano cache of its own (no waiting on the
suite's compile lock); the checkpoint case, which resumes from the host's
checkpoint, runs when its test comes.

Placement: a compiled node is "on the backend" when one of its outputs is a
GpuArrayType; the test fails if a heavy op (a float array from a dot
product, an element-wise op, a sampler, a reduction, a softmax) runs on the
host, except for the reductions the backend lacks (OpenCL: max / min and
argmax, which Theano moves to the device only for CUDA) and the element-wise
ops that stay on the host only because they take such a reduction and
nothing from the device (the straight-through one-hot of an argmax).

Needs pygpu + libgpuarray with its headers (Debian: python3-pygpu,
libgpuarray-dev), an OpenCL device (PoCL: pocl-opencl-icd), the unversioned
libOpenCL.so (ocl-icd-opencl-dev), libclblast.so (libclblast-dev) and mako;
skipped with the reason otherwise, and failed instead where
``PARMESAN_REQUIRE_GPU_TESTS=1`` (CI's ``.ci/run`` installs all of it).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import Future

import numpy as np
import pytest

HERE = os.path.abspath(__file__)
REPO = os.path.dirname(os.path.dirname(HERE))
DEVICE = 'opencl0:0'
SEED = 20261202
#: float32 tolerances: relative, and absolute per unit of the largest value.
RTOL, ATOL = 2e-4, 2e-5
#: Reductions Theano 1.0 keeps on the host for an OpenCL context (its
#: OpenCL reduction kernel does add and mul only), as printed by str(op).
HOST_REDUCTIONS_OPENCL = ('CAReduce{maximum}', 'CAReduce{minimum}',
                          'Reduce{maximum}', 'Reduce{minimum}')
#: The same reductions' index forms (Theano's GpuMaxAndArgmax is CUDA-only).
HOST_ARGMAX_OPS = ('Argmax', 'MaxAndArgmax')
#: Adam moves each parameter by up to the learning rate per step whatever
#: the gradient's size, so a gradient near zero whose sign differs between
#: float32 (device) and float64 (host) moves it apart by up to 2 x 1e-2 a
#: step; the bounds returned by the steps are compared at RTOL, ATOL.
ATOL_ADAM_PARAMS = 5e-3
#: What Theano 1.0 cannot yet do on OpenCL in Parmesan's graphs (measured),
#: by case: strict xfails, so that a fix shows up as an unexpected pass. A
#: reason starting with "compile" marks every test of the case, any other
#: only the placement test. None left: Parmesan computes softmax, the
#: softmax cross-entropy and one-hot rows from element-wise ops and
#: reductions (no SoftmaxGrad, scatter or fused cross-entropy kernel).
OPENCL_GAPS = {}

if __name__ != '__main__':
    pytestmark = [pytest.mark.gpu, pytest.mark.slow]


# ---------------------------------------------------------------- placement

def _is_device(variable):
    return type(variable.type).__name__ == 'GpuArrayType'


def _is_heavy(node):
    """A host node computing a float array (not shape arithmetic)."""
    return any(getattr(out.type, 'dtype', '').startswith('float') and
               getattr(out.type, 'ndim', 0) >= 1 for out in node.outputs)


def _follows_host_reduction(node):
    """Whether a host node stays there only because an input of it is a
    max / min / argmax reduction that the backend keeps on the host (and no
    input comes from the device): Theano moves an element-wise op to the
    backend when one of its inputs is there."""
    owners = [_through_views(i.owner) for i in node.inputs
              if i.owner is not None]
    return (not any(type(o.op).__name__ == 'HostFromGpu' for o in owners)
            and any(str(o.op).startswith(HOST_REDUCTIONS_OPENCL) or
                    type(o.op).__name__ in HOST_ARGMAX_OPS for o in owners))


def _through_views(node):
    """The node whose output `node` only views (a DimShuffle's input)."""
    while type(node.op).__name__ in ('DimShuffle', 'Reshape', 'Rebroadcast') \
            and node.inputs[0].owner is not None:
        node = node.inputs[0].owner
    return node


def placement(function):
    """Where the nodes of a compiled Theano function run."""
    nodes = function.maker.fgraph.toposort()
    device = [n for n in nodes if any(_is_device(o) for o in n.outputs)]
    host = [n for n in nodes if n not in device]
    heavy = sorted(str(n.op) for n in host
                   if _is_heavy(n) and type(n.op).__name__ != 'HostFromGpu'
                   and not _follows_host_reduction(n))
    return {'device': len(device), 'host': len(host),
            'to_device': sum(type(n.op).__name__ == 'GpuFromHost'
                             for n in nodes),
            'to_host': sum(type(n.op).__name__ == 'HostFromGpu'
                           for n in nodes),
            'heavy_host': heavy,
            'device_ops': sorted({type(n.op).__name__ for n in device})}


class Recorder(object):
    """Compiles the functions of a case and remembers their placement."""

    def __init__(self):
        self.placements = OrderedDict()

    def function(self, label, inputs, outputs, **kwargs):
        import theano
        return self.record(label, theano.function(inputs, outputs, **kwargs))

    def record(self, label, compiled):
        self.placements[label] = placement(compiled)
        return compiled


# ---------------------------------------------------------------- helpers

def _floatx(array):
    import theano
    return np.asarray(array, dtype=theano.config.floatX)


def _weighted_sum(expression, rng, shape):
    """A scalar that depends on every entry: sum(expression * R)."""
    import theano.tensor as T
    return T.sum(expression * _floatx(rng.uniform(-1, 1, shape)))


def _grads(loss, params):
    import theano
    return theano.grad(loss, params)


def _named(prefix, values):
    return [('%s%d' % (prefix, i), v) for i, v in enumerate(values)]


def _dense_inputs(rng, batch, features, outputs, name='x'):
    """An input matrix, its value, and two DenseLayers (mean, log-variance
    or logits) on it."""
    import theano.tensor as T
    from lasagne.layers import DenseLayer, InputLayer
    x = T.matrix(name)
    l_x = InputLayer((None, features), x)
    l_a = DenseLayer(l_x, outputs, nonlinearity=None)
    l_b = DenseLayer(l_x, outputs, nonlinearity=None)
    return x, _floatx(rng.normal(size=(batch, features))), l_a, l_b


# ---------------------------------------------------------------- layer cases

def case_sample(rec, rng):
    """SampleLayer with fixed eq/iw axes and with symbolic ones, and
    SimpleSampleLayer: samples and gradients."""
    import theano.tensor as T
    from lasagne.layers import get_all_params, get_output
    from parmesan.layers import SampleLayer, SimpleSampleLayer
    x, x_val, l_mu, l_lv = _dense_inputs(rng, 3, 4, 2)
    iw = T.iscalar('iw')
    l_fixed = SampleLayer(l_mu, l_lv, eq_samples=2, iw_samples=3)
    l_symbolic = SampleLayer(l_mu, l_lv, eq_samples=1, iw_samples=iw)
    l_simple = SimpleSampleLayer(l_mu, l_lv)
    z_fixed, z_sym, z_simple = get_output([l_fixed, l_symbolic, l_simple])
    params = get_all_params(l_fixed)
    loss = (_weighted_sum(z_fixed, rng, (18, 2)) +
            _weighted_sum(z_sym, rng, (12, 2)) +
            _weighted_sum(z_simple ** 2, rng, (3, 2)))
    f = rec.function('sample', [x, iw], [z_fixed, z_sym, z_simple] +
                _grads(loss, params))
    out = f(x_val, 4)
    return OrderedDict([('z_eq2_iw3', out[0]), ('z_iw4', out[1]),
                        ('z_simple', out[2])] + _named('grad', out[3:]))


def case_bernoulli(rec, rng):
    """BernoulliSampleLayer (eq, iw axes) and SimpleBernoulliSampleLayer:
    the 0/1 draws must be identical."""
    import theano.tensor as T
    from lasagne.layers import get_output
    from parmesan.layers import BernoulliSampleLayer, \
        SimpleBernoulliSampleLayer
    x, x_val, l_logits, _ = _dense_inputs(rng, 3, 4, 5)
    from lasagne.layers import NonlinearityLayer
    l_p = NonlinearityLayer(l_logits, T.nnet.sigmoid)
    l_h = BernoulliSampleLayer(l_p, eq_samples=2, iw_samples=2)
    l_simple = SimpleBernoulliSampleLayer(l_p)
    f = rec.function('bernoulli', [x], get_output([l_h, l_simple, l_p]))
    h, simple, p = f(x_val)
    return OrderedDict([('h', h), ('h_simple', simple), ('p', p)])


def case_flows(rec, rng):
    """Planar and radial flows stacked with ListIndexLayer: f(z), logdet,
    gradients."""
    from lasagne.layers import InputLayer, get_all_params, get_output
    import theano.tensor as T
    from parmesan.layers import ListIndexLayer, NormalizingPlanarFlowLayer, \
        NormalizingRadialFlowLayer
    z = T.matrix('z')
    l_z = InputLayer((None, 3), z)
    l_planar = NormalizingPlanarFlowLayer(l_z)
    l_radial = NormalizingRadialFlowLayer(ListIndexLayer(l_planar, 0))
    outputs = get_output([ListIndexLayer(l_radial, 0),
                          ListIndexLayer(l_planar, 1),
                          ListIndexLayer(l_radial, 1)])
    params = get_all_params(l_radial)
    loss = (_weighted_sum(outputs[0], rng, (4, 3)) + T.sum(outputs[1]) +
            T.sum(outputs[2]))
    f = rec.function('flows', [z], outputs + _grads(loss, params + [z]))
    out = f(_floatx(rng.normal(size=(4, 3))))
    return OrderedDict([('f_z', out[0]), ('logdet_planar', out[1]),
                        ('logdet_radial', out[2])] + _named('grad', out[3:]))


def case_iaf(rec, rng):
    """MaskedDenseLayer and two InverseAutoregressiveFlowLayers (the first
    with a context input): outputs, logdets, gradients."""
    import theano.tensor as T
    from lasagne.layers import InputLayer, get_all_params, get_output
    from parmesan.layers import InverseAutoregressiveFlowLayer, \
        ListIndexLayer, MaskedDenseLayer, made_hidden_degrees, \
        made_input_degrees
    z, h = T.matrix('z'), T.matrix('h')
    l_z = InputLayer((None, 4), z)
    l_h = InputLayer((None, 3), h)
    l_made = MaskedDenseLayer(l_z, 5, made_hidden_degrees(5, 4),
                              input_degrees=made_input_degrees(4))
    l_iaf1 = InverseAutoregressiveFlowLayer(l_z, [5, 5], context=l_h)
    l_iaf2 = InverseAutoregressiveFlowLayer(ListIndexLayer(l_iaf1, 0), 5,
                                            reverse=True)
    outputs = get_output([l_made, ListIndexLayer(l_iaf2, 0),
                          ListIndexLayer(l_iaf1, 1),
                          ListIndexLayer(l_iaf2, 1)])
    params = get_all_params([l_made, l_iaf2])
    loss = (_weighted_sum(outputs[0], rng, (3, 5)) +
            _weighted_sum(outputs[1], rng, (3, 4)) + T.sum(outputs[2]) +
            T.sum(outputs[3]))
    f = rec.function('iaf', [z, h], outputs + _grads(loss, params))
    out = f(_floatx(rng.normal(size=(3, 4))),
            _floatx(rng.normal(size=(3, 3))))
    return OrderedDict([('made', out[0]), ('z_new', out[1]),
                        ('logdet1', out[2]), ('logdet2', out[3])] +
                       _named('grad', out[4:]))


def case_normalize(rec, rng):
    """NormalizeLayer + ScaleAndShiftLayer: training pass and gradients
    (statistics from a subset of rows), running-average collection over two
    batches, then the deterministic pass with the stored statistics."""
    import theano.tensor as T
    from lasagne.layers import DenseLayer, InputLayer, get_all_params, \
        get_output
    from parmesan.layers import ListIndexLayer, NormalizeLayer, \
        ScaleAndShiftLayer
    x = T.matrix('x')
    l_x = InputLayer((None, 4), x)
    l_dense = DenseLayer(l_x, 3, b=None, nonlinearity=None)
    l_bn = NormalizeLayer(l_dense, alpha='running_average')
    # beta and gamma are (1, D), as in the original Parmesan.
    l_out = ScaleAndShiftLayer(l_bn, beta=rng.normal(size=(1, 3)),
                               gamma=rng.uniform(0.5, 2, size=(1, 3)))
    l_sub = NormalizeLayer(l_dense, return_stats=True,
                           stat_indices=slice(2, None))
    train, sub, sub_mean, sub_var = get_output(
        [l_out, ListIndexLayer(l_sub, 0), ListIndexLayer(l_sub, 1),
         ListIndexLayer(l_sub, 2)])
    params = get_all_params(l_out, trainable=True)
    loss = _weighted_sum(train, rng, (5, 3)) + _weighted_sum(sub, rng, (5, 3))
    f_train = rec.function('normalize_train', [x], [train, sub, sub_mean, sub_var] +
                      _grads(loss, params))
    f_collect = rec.function('normalize_collect', [x],
                        T.sum(get_output(l_out, collect=True)))
    f_det = rec.function('normalize_deterministic', [x],
                    get_output(l_out, deterministic=True))
    out = f_train(_floatx(rng.normal(size=(5, 4))))
    l_bn.reset_stats()
    for rows in (6, 3):
        f_collect(_floatx(rng.normal(1, 2, size=(rows, 4))))
    det = f_det(_floatx(rng.normal(size=(5, 4))))
    return OrderedDict([('train', out[0]), ('sub', out[1]),
                        ('sub_mean', out[2]), ('sub_var', out[3])] +
                       _named('grad', out[4:]) +
                       [('stored_mean', l_bn.mean.get_value()),
                        ('stored_var', l_bn.var.get_value()),
                        ('collected', l_bn.num_collected.get_value()),
                        ('deterministic', det)])


def case_ladder(rec, rng):
    """DecoderNormalizeLayer, DenoiseLayer and GaussianDenoiseLayer with
    non-trivial parameters: outputs and gradients."""
    import theano.tensor as T
    from lasagne.layers import InputLayer, get_all_params, get_output
    from parmesan.layers import DecoderNormalizeLayer, DenoiseLayer, \
        GaussianDenoiseLayer
    u, z, m, v = T.matrix('u'), T.matrix('z'), T.vector('m'), T.vector('v')
    l_u, l_z = InputLayer((None, 3), u), InputLayer((None, 3), z)
    l_denoise = DenoiseLayer(l_u, l_z)
    l_gauss = GaussianDenoiseLayer(l_u, l_z)
    for layer in (l_denoise, l_gauss):
        for param in layer.get_params():
            param.set_value(_floatx(rng.normal(size=3)))
    l_dec = DecoderNormalizeLayer(l_gauss, InputLayer((3,), m),
                                  InputLayer((3,), v), epsilon=1e-3)
    outputs = get_output([l_denoise, l_gauss, l_dec])
    params = get_all_params([l_denoise, l_dec])
    loss = sum(_weighted_sum(o, rng, (4, 3)) for o in outputs)
    f = rec.function('ladder', [u, z, m, v], outputs + _grads(loss, params))
    out = f(_floatx(rng.normal(size=(4, 3))),
            _floatx(rng.normal(size=(4, 3))),
            _floatx(rng.normal(size=3)), _floatx(rng.uniform(0.5, 2, 3)))
    return OrderedDict([('denoise', out[0]), ('gauss', out[1]),
                        ('decoder_normalized', out[2])] +
                       _named('grad', out[3:]))


def case_categorical(rec, rng):
    """GumbelSoftmaxSampleLayer and LogisticNormalSampleLayer, soft and
    straight-through, with ClipLayer logits and an annealed shared
    temperature: samples and gradients."""
    import theano
    import theano.tensor as T
    from lasagne.layers import get_all_params, get_output
    from parmesan.layers import ClipLayer, GumbelSoftmaxSampleLayer, \
        LogisticNormalSampleLayer
    x, x_val, l_a, l_b = _dense_inputs(rng, 3, 4, 4)
    tau = theano.shared(_floatx(0.7), 'tau')
    l_logits = ClipLayer(l_a, 1.5)
    layers = [GumbelSoftmaxSampleLayer(l_logits, tau, iw_samples=2),
              GumbelSoftmaxSampleLayer(l_logits, 0.5, eq_samples=2,
                                       straight_through=True),
              LogisticNormalSampleLayer(l_a, l_b, tau, iw_samples=2),
              LogisticNormalSampleLayer(l_a, l_b, 0.5,
                                        straight_through=True)]
    outputs = get_output(layers)
    params = get_all_params(layers)
    loss = sum(_weighted_sum(o, rng, (6, 4)) for o in outputs[:3]) + \
        _weighted_sum(outputs[3], rng, (3, 4))
    f = rec.function('categorical', [x], outputs + _grads(loss, params))
    out = f(x_val)
    tau.set_value(_floatx(0.3))
    annealed = f(x_val)[0]
    return OrderedDict([('gumbel', out[0]), ('gumbel_st', out[1]),
                        ('logistic_normal', out[2]),
                        ('logistic_normal_st', out[3]),
                        ('gumbel_tau0.3', annealed)] +
                       _named('grad', out[4:]))


def case_noise(rec, rng):
    """GaussianCorruptionLayer and DropoutCorruptionLayer: corrupted and
    clean passes, gradients."""
    import theano.tensor as T
    from lasagne.layers import get_all_params, get_output
    from parmesan.layers import DropoutCorruptionLayer, \
        GaussianCorruptionLayer
    x, x_val, l_a, _ = _dense_inputs(rng, 4, 3, 5)
    l_noise = GaussianCorruptionLayer(l_a, 0.3)
    l_drop = DropoutCorruptionLayer(l_noise, p=0.4)
    noisy, dropped = get_output([l_noise, l_drop])
    clean = get_output(l_drop, clean=True)
    params = get_all_params(l_drop)
    loss = _weighted_sum(dropped, rng, (4, 5)) + T.sum(noisy ** 2)
    f = rec.function('noise', [x], [noisy, dropped, clean] + _grads(loss, params))
    out = f(x_val)
    return OrderedDict([('gaussian', out[0]), ('dropout', out[1]),
                        ('clean', out[2])] + _named('grad', out[3:]))


# ---------------------------------------------------------------- trainers

def _batch(rng, rows, features=12):
    return _floatx(rng.uniform(size=(rows, features)) < 0.4)


def _steps(train, batches):
    return [np.asarray(v) for batch in batches for v in train(*batch)]


def _param_values(params):
    return [p.get_value() for p in params]


def case_vae_step(rec, rng):
    """A hand-built IWAE (DenseLayer -> SampleLayer -> DenseLayer, k = 3)
    with Lasagne's Adam: two steps, then the parameters."""
    import lasagne
    import theano
    import theano.tensor as T
    from lasagne.layers import DenseLayer, InputLayer, get_all_params, \
        get_output
    from parmesan.distributions import log_bernoulli_logits, log_normal2, \
        log_stdnormal
    from parmesan.layers import SampleLayer
    from parmesan.utils import importance_weighted_bound
    x = T.matrix('x')
    l_x = InputLayer((None, 12), x)
    l_h = DenseLayer(l_x, 8, nonlinearity=T.tanh)
    l_mu = DenseLayer(l_h, 3, nonlinearity=None)
    l_lv = DenseLayer(l_h, 3, nonlinearity=None)
    l_z = SampleLayer(l_mu, l_lv, iw_samples=3)
    l_logits = DenseLayer(DenseLayer(l_z, 8, nonlinearity=T.tanh), 12,
                          nonlinearity=None)
    z, mu, lv, logits = get_output([l_z, l_mu, l_lv, l_logits])
    per_example = lambda v: T.repeat(v, 3, axis=0)  # noqa: E731
    log_w = (log_bernoulli_logits(per_example(x), logits).sum(-1) +
             log_stdnormal(z).sum(-1) -
             log_normal2(z, per_example(mu), per_example(lv)).sum(-1))
    bound = importance_weighted_bound(log_w, 1, 3).mean()
    params = get_all_params(l_logits, trainable=True)
    updates = lasagne.updates.adam(-bound, params, learning_rate=0.01)
    train = rec.function('vae_step', [x], bound, updates=updates)
    bounds = [train(_batch(rng, 5)) for _ in range(2)]
    return OrderedDict([('bounds', np.array(bounds))] +
                       _named('param', _param_values(params)))



def _experiment(module, attribute):
    """`attribute` of parmesan.experiments.`module`, imported in the process
    whose backend is set up."""
    import importlib
    return getattr(importlib.import_module('parmesan.experiments.' + module),
                   attribute)


def _learning_rate(value=1e-2):
    import theano
    return theano.shared(_floatx(value), 'learning_rate')


def _vae_model():
    """A VariationalAutoencoder with batch norm and one IAF step."""
    import theano.tensor as T
    VAE = _experiment('vae', 'VariationalAutoencoder')
    return VAE(12, (8,), 3, T.tanh, T.tanh, batch_norm=True, flow='iaf',
               num_flows=1, iaf_hidden=4)


def case_vae_model(rec, rng):
    """VariationalAutoencoder (batch norm, IAF, k = 2, Adam with clipping):
    two training steps; batch-norm collection and L_20 in chunks of 8
    samples with its evaluation functions."""
    model = _vae_model()
    train, _ = model.compile_train(_learning_rate(), iw_samples=2)
    rec.record('vae_model_train', train)
    values = _steps(train, [(_batch(rng, 4),), (_batch(rng, 4),)])
    functions = model.compile_evaluation()
    rec.record('vae_model_log_weights', functions['log_weights'])
    rec.record('vae_model_collect', functions['collect'])
    collect = _experiment('evaluation', 'collect_statistics')
    likelihood = _experiment('evaluation',
                             'importance_sampled_log_likelihood')
    collect(functions['collect'], _batch(rng, 6), model.normalize_layers(),
            batch_size=4)
    ll = likelihood(functions['log_weights'], _batch(rng, 3), num_samples=20,
                    max_rows=8, show_progress=False)
    return OrderedDict([('train_outputs', np.array(values)), ('L_20', ll)] +
                       _named('param', _param_values(model.params())))


def case_vimco_model(rec, rng):
    """BernoulliLatentVAE with the VIMCO surrogate, K = 3: two steps."""
    import theano.tensor as T
    Model = _experiment('vimco', 'BernoulliLatentVAE')
    model = Model(12, (8,), 4, T.tanh, T.tanh, learn_prior=True)
    train, _ = model.compile_train(_learning_rate(), iw_samples=3)
    rec.record('vimco_model_train', train)
    values = _steps(train, [(_batch(rng, 4),), (_batch(rng, 4),)])
    return OrderedDict([('train_outputs', np.array(values))] +
                       _named('param', _param_values(model.params())))


def case_ladder_model(rec, rng):
    """LadderNetwork 12-8-6-3 ("gauss" combinator, noise 0.3): two steps on
    mixed batches (2 labelled + 4 unlabelled rows), then statistics
    collection and prediction with the stored statistics."""
    Model = _experiment('ladder', 'LadderNetwork')
    model = Model((12, 8, 6, 3))
    train, _ = model.compile_train(_learning_rate(),
                                   lambdas=(10., 1., 0.1, 0.1))
    rec.record('ladder_model_train', train)
    batches = [(_floatx(rng.normal(size=(6, 12))),
                rng.randint(0, 3, size=2).astype('int32'), 2)
               for _ in range(2)]
    values = _steps(train, batches)
    functions = model.compile_evaluation()
    rec.record('ladder_model_collect', functions['collect'])
    rec.record('ladder_model_predict', functions['predict'])
    functions['collect'](_floatx(rng.normal(size=(7, 12))))
    predicted = functions['predict'](_floatx(rng.normal(size=(3, 12))))
    return OrderedDict([('train_outputs', np.array(values)),
                        ('predicted', predicted)] +
                       _named('param', _param_values(model.params())))


def _m2_case(kind):
    def case(rec, rng):
        import contextlib
        import theano
        Model = _experiment('m2', 'M2Model')
        model = Model(kind, num_features=12, num_classes=3, num_latent=2,
                      q_hidden=4, q_layers=1, alpha_layers=1, z_layers=1,
                      p_hidden=4, p_layers=1, maxout_stride=2)
        iteration = theano.shared(_floatx(0), 'iteration')
        # compile_train announces itself on stdout
        with contextlib.redirect_stdout(sys.stderr):
            train, _ = model.compile_train(
                _learning_rate(1e-3), iteration, theano.tensor.constant(3.),
                classifier_warmup=10)
        rec.record('m2_%s_train' % kind, train)
        labels = rng.randint(0, 3, size=3).astype('int32')
        if kind == 'MLP':
            batches = [(_batch(rng, 3), labels)] * 2
        else:
            batches = [(_batch(rng, 4), _batch(rng, 3), labels)
                       for _ in range(2)]
        values = _steps(train, batches)
        return OrderedDict([('train_outputs', np.array(values))] +
                           _named('param', _param_values(model.params())))
    case.__doc__ = 'M2Model %r: two training steps.' % kind
    return case


M2_KINDS = ('ExactM2', 'STGumbelSoftmaxM2', 'LogisticNormalM2', 'MLP')


def case_checkpoint(rec, rng, workdir, backend):
    """A checkpoint of every shared variable (parameters, Adam's moments,
    noise streams, batch-norm statistics) after one VAE step, written to
    ``<workdir>/<backend>.npz``; then the second step. Where the other
    backend's checkpoint exists, it is loaded into a fresh model whose
    second step is reported too."""
    shared_state = _experiment('training', 'shared_state')
    save = _experiment('training', 'save_checkpoint')
    batches = [_batch(rng, 4), _batch(rng, 4)]
    model = _vae_model()
    train, _ = model.compile_train(_learning_rate(), iw_samples=2)
    state = shared_state([train])
    first = train(batches[0])
    saved = [v.get_value() for v in state]
    save(os.path.join(workdir, backend + '.npz'), state,
         np.random.RandomState(5), 1, [])
    second = train(batches[1])
    results = OrderedDict([('first', np.array(first)),
                           ('second', np.array(second))] +
                          _named('saved', saved))
    other = os.path.join(workdir, ('host' if backend == 'device' else
                                   'device') + '.npz')
    if os.path.exists(other):
        resumed = resume_from(other, batches[1])
        results['resumed_second'] = resumed['second']
        results.update(_named('loaded', resumed['loaded']))
    return results


def resume_from(path, batch):
    """A fresh VAE, restored from the checkpoint at `path`, one step."""
    shared_state = _experiment('training', 'shared_state')
    load = _experiment('training', 'load_checkpoint')
    lasagne_rng_seed(SEED + 7)
    model = _vae_model()
    train, _ = model.compile_train(_learning_rate(), iw_samples=2)
    state = shared_state([train])
    load(path, state, np.random.RandomState(0))
    loaded = [v.get_value() for v in state]
    return {'loaded': loaded, 'second': np.array(train(batch))}


CASES = OrderedDict(
    [('sample', case_sample), ('bernoulli', case_bernoulli),
     ('flows', case_flows), ('iaf', case_iaf), ('normalize', case_normalize),
     ('ladder', case_ladder), ('categorical', case_categorical),
     ('noise', case_noise),
     ('vae_step', case_vae_step), ('vae_model', case_vae_model),
     ('vimco_model', case_vimco_model), ('ladder_model', case_ladder_model)] +
    [('m2_%s' % kind, _m2_case(kind)) for kind in M2_KINDS] +
    [('checkpoint', case_checkpoint)])
LAYER_CASE_NAMES = list(CASES)[:8]
TRAINER_CASE_NAMES = [name for name in CASES
                      if name not in LAYER_CASE_NAMES + ['checkpoint']]

#: Ops that must run on the backend in each case (every compiled function
#: of the case together): the products, the samplers and the reductions.
EXPECTED_DEVICE_OPS = {
    'sample': {'GpuDot22', 'GPUA_mrg_uniform', 'GpuElemwise'},
    'bernoulli': {'GpuDot22', 'GPUA_mrg_uniform', 'GpuElemwise'},
    'flows': {'GpuElemwise', 'GpuCAReduceCPY'},
    'iaf': {'GpuDot22', 'GpuElemwise', 'GpuCAReduceCPY'},
    'normalize': {'GpuDot22', 'GpuElemwise', 'GpuCAReduceCPY'},
    'ladder': {'GpuElemwise', 'GpuCAReduceCPY'},
    'categorical': {'GpuDot22', 'GPUA_mrg_uniform', 'GpuElemwise'},
    'noise': {'GpuDot22', 'GPUA_mrg_uniform', 'GpuElemwise'},
}
for _name in TRAINER_CASE_NAMES:
    EXPECTED_DEVICE_OPS[_name] = {'GpuDot22', 'GpuElemwise', 'GpuCAReduceCPY'}
for _name in ('vae_step', 'vae_model', 'vimco_model', 'ladder_model',
              'm2_ExactM2', 'm2_STGumbelSoftmaxM2', 'm2_LogisticNormalM2'):
    EXPECTED_DEVICE_OPS[_name] = EXPECTED_DEVICE_OPS[_name] | \
        {'GPUA_mrg_uniform'}


# ---------------------------------------------------------------- running

def lasagne_rng_seed(seed):
    import lasagne
    lasagne.random.set_rng(np.random.RandomState(seed))


def run_case(name, workdir, backend):
    """Build and run one case with fixed seeds; return (results, placements).
    """
    import lasagne
    saved_rng = lasagne.random.get_rng()
    lasagne_rng_seed(SEED)
    rng = np.random.RandomState(SEED + 1)
    rec = Recorder()
    try:
        if name == 'checkpoint':
            results = case_checkpoint(rec, rng, workdir, backend)
        else:
            results = CASES[name](rec, rng)
    finally:
        lasagne.random.set_rng(saved_rng)
    return OrderedDict((key, _to_numpy(value))
                       for key, value in results.items()), rec.placements


def _to_numpy(value):
    """A result as a float64 numpy array. A function's outputs that live on
    the backend come back as pygpu arrays, which must be read in their own
    dtype (asking pygpu for another fails)."""
    return np.asarray(np.asarray(value), dtype=np.float64)


def worker(workdir, names):
    """The subprocess: run the cases `names` on this process's Theano
    device, adding each to ``<workdir>/device.json`` as it ends; the case
    under way is named in ``<workdir>/current_case`` (a crash of the OpenCL
    driver ends the process without a Python error)."""
    import time
    import traceback
    import theano
    path = os.path.join(workdir, 'device.json')
    report = OrderedDict([('device', theano.config.device),
                          ('floatX', theano.config.floatX),
                          ('cases', OrderedDict())])
    if os.path.exists(path):
        with open(path) as stream:
            report['cases'] = json.load(stream, object_pairs_hook=OrderedDict)[
                'cases']
    for name in names:
        with open(os.path.join(workdir, 'current_case'), 'w') as stream:
            stream.write(name)
        start = time.time()
        try:
            results, placements = run_case(name, workdir, 'device')
            entry = {'results': OrderedDict((k, v.tolist())
                                            for k, v in results.items()),
                     'placement': placements}
        except Exception:
            entry = {'error': traceback.format_exc()}
        entry['seconds'] = round(time.time() - start, 2)
        report['cases'][name] = entry
        print('%s: %.1f s%s' % (name, entry['seconds'],
                                ' (failed)' if 'error' in entry else ''),
              file=sys.stderr, flush=True)
        with open(path + '.tmp', 'w') as stream:
            json.dump(report, stream)
        os.replace(path + '.tmp', path)


# ---------------------------------------------------------------- the tests

REQUIRE_VARIABLE = 'PARMESAN_REQUIRE_GPU_TESTS'
#: What the backend needs on the machine, and where Debian has it.
NEEDS = [('libOpenCL.so', 'ocl-icd-opencl-dev'),
         ('libclblast.so', 'libclblast-dev')]


def _unavailable(reason):
    """Skip, or fail where CI promised the backend."""
    if os.environ.get(REQUIRE_VARIABLE, '') not in ('', '0'):
        pytest.fail('%s, but %s=%s: the GPU-backend tests must run here' % (
            reason, REQUIRE_VARIABLE, os.environ[REQUIRE_VARIABLE]))
    pytest.skip(reason)


def backend_missing():
    """Why Theano's gpuarray backend cannot run on OpenCL here, or None."""
    import ctypes
    import importlib.util
    for module, package in (('pygpu', 'python3-pygpu'), ('mako', 'mako')):
        if importlib.util.find_spec(module) is None:
            return ('%s is not importable (Debian/Ubuntu: apt-get install '
                    'python3-pygpu libgpuarray-dev, and pip install mako; '
                    'see README "GPU")' % module)
    for library, package in NEEDS:
        try:
            ctypes.CDLL(library)
        except OSError:
            return ('%s cannot be loaded (Debian/Ubuntu: apt-get install %s)'
                    % (library, package))
    if not _gpuarray_headers():
        return ('the libgpuarray headers (gpuarray/array.h) are missing, '
                'which Theano compiles against (Debian/Ubuntu: apt-get '
                'install libgpuarray-dev)')
    from pygpu import gpuarray
    try:
        devices = gpuarray.count_devices('opencl', 0)
    except Exception as error:  # pygpu raises its own error types
        return 'no OpenCL platform (pocl-opencl-icd): %s' % error
    if devices < 1:
        return 'OpenCL platform 0 has no device (pocl-opencl-icd)'
    return None


def _gpuarray_headers():
    """Whether g++ will find gpuarray/array.h."""
    import pygpu
    folders = ['/usr/include', '/usr/local/include', pygpu.get_include(),
               os.path.join(sys.prefix, 'include')]
    for variable in ('CPATH', 'CPLUS_INCLUDE_PATH'):
        folders += os.environ.get(variable, '').split(os.pathsep)
    folders += [token[2:] for token in
                os.environ.get('THEANO_FLAGS', '').replace(',', ' ').split()
                if token.startswith('-I')]
    return any(os.path.exists(os.path.join(folder, 'gpuarray', 'array.h'))
               for folder in folders if folder)


def run_worker(workdir, names, control=None):
    """Run the cases `names` (all if none) on device=opencl0:0 in a
    subprocess; its report. A case that kills the process (PoCL crashes on
    some kernels it cannot build) is recorded as that case's error, and a
    new process runs the cases after it. `control`, if given, is a
    :class:`WorkerControl` through which another thread can stop it."""
    import theano
    env = dict(os.environ)
    # later keys win: this process's flags, then the backend's
    env['THEANO_FLAGS'] = ','.join(
        [f for f in [env.get('THEANO_FLAGS')] if f] +
        ['device=' + DEVICE, 'floatX=float32', 'base_compiledir=' +
         os.path.join(theano.config.base_compiledir, 'opencl_worker')])
    path = os.path.join(workdir, 'device.json')
    pending = list(names) or list(CASES)
    while pending:
        process = subprocess.Popen(
            [sys.executable, HERE, workdir] + pending, env=env, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if control is not None and not control.started(process):
            raise RuntimeError('the OpenCL worker was stopped')
        try:
            stderr = process.communicate(timeout=3600)[1]
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        current = _read_text(os.path.join(workdir, 'current_case'))
        if current not in pending:  # it died before its first case
            pytest.fail('the OpenCL worker failed (exit %d):\n%s' % (
                process.returncode, stderr[-5000:]))
        report = json.loads(_read_text(path) or json.dumps(
            {'device': DEVICE, 'floatX': 'float32', 'cases': {}}),
            object_pairs_hook=OrderedDict)
        if process.returncode != 0 and current not in report['cases']:
            report['cases'][current] = {'error': (
                'the OpenCL worker process died (exit %d) in this case:\n%s'
                % (process.returncode, stderr[-3000:]))}
            with open(path, 'w') as stream:
                json.dump(report, stream)
        elif process.returncode != 0:
            pytest.fail('the OpenCL worker failed (exit %d):\n%s' % (
                process.returncode, stderr[-5000:]))
        pending = [name for name in pending if name not in report['cases']]
    if report['device'] != DEVICE:
        _unavailable('Theano did not initialise %s: %s' % (
            DEVICE, stderr[-2000:]))
    return report


def _die_with_parent():
    """Have the kernel kill this process (the worker) when its parent dies
    (Linux), so that a test session killed from outside leaves no worker
    compiling."""
    try:
        import ctypes
        import signal
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _read_text(path):
    """The file's text, or None where there is none."""
    if not os.path.exists(path):
        return None
    with open(path) as stream:
        return stream.read()


class WorkerControl(object):
    """Lets the thread that ends the session stop the worker's process,
    and any process the worker would start after it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process = None
        self._stopped = False

    def started(self, process):
        """Record `process`; False (and kill it) once stopped."""
        with self._lock:
            self._process = process
            if self._stopped:
                process.kill()
            return not self._stopped

    def stop(self):
        with self._lock:
            self._stopped = True
            if self._process is not None and self._process.poll() is None:
                self._process.kill()


#: The worker started at collection: its folder and future report.
EARLY_RUN = {}


def start_device_worker(session):
    """Start the OpenCL worker on the selected cases but the checkpoint
    (which needs the host's checkpoint first) in a background thread;
    `device_report` collects it."""
    names = [name for name in selected_cases(session.items)
             if name != 'checkpoint']
    if not names or backend_missing():
        return  # device_report skips, or fails, with the reason
    workdir = tempfile.mkdtemp(prefix='parmesan-gpu-backend-')
    report, control = Future(), WorkerControl()

    def work():
        try:
            report.set_result(run_worker(workdir, names, control=control))
        except BaseException as error:  # pytest's skip and fail too
            report.set_exception(error)

    def stop():
        # a session that ends early (-x, ^C) leaves no worker behind
        control.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    session.config.add_cleanup(stop)
    EARLY_RUN.update(workdir=workdir, report=report)
    threading.Thread(target=work, daemon=True).start()


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    return EARLY_RUN.get('workdir') or str(
        tmp_path_factory.mktemp('gpu_backend'))


@pytest.fixture(scope='module')
def host_results(workdir):
    """Each case on this process's CPU backend, run on first use."""
    cache = {}

    def results(name):
        if name not in cache:
            cache[name] = run_case(name, workdir, 'host')
        return cache[name]
    return results


def selected_cases(items):
    """The cases that the selected tests of this module (`items`, after
    ``-k``) compare, in CASES order: the backend compiles only those."""
    names = set()
    for item in items:
        if os.path.abspath(str(item.fspath)) != HERE:
            continue
        callspec = getattr(item, 'callspec', None)
        if callspec is not None and 'name' in callspec.params:
            names.add(callspec.params['name'])
        elif item.originalname == 'test_checkpoints_resume_across_backends':
            names.add('checkpoint')
    return [name for name in CASES if name in names]


@pytest.fixture(scope='module')
def device_report(request, workdir, host_results):
    reason = backend_missing()
    if reason:
        _unavailable(reason)
    names = selected_cases(request.session.items)
    report = EARLY_RUN['report'].result() if EARLY_RUN else None
    rest = [name for name in names
            if report is None or name not in report['cases']]
    if 'checkpoint' in rest:
        # the host writes its checkpoint first, so that the device resumes
        # from it (and the host, later, from the device's)
        host_results('checkpoint')
    return run_worker(workdir, rest) if rest else report


def device_case(report, name):
    entry = report['cases'][name]
    assert 'error' not in entry, entry['error']
    return entry


def assert_close(device, host, what):
    device, host = np.asarray(device), np.asarray(host)
    assert device.shape == host.shape, (what, device.shape, host.shape)
    scale = max(1.0, float(np.max(np.abs(host)))) if host.size else 1.0
    np.testing.assert_allclose(device, host, rtol=RTOL, atol=ATOL * scale,
                               err_msg=what)


def compare(report, host_results, name, skip=()):
    found = device_case(report, name)['results']
    expected, _ = host_results(name)
    assert [k for k in found if k not in skip] == \
        [k for k in expected if k not in skip], name
    for key in expected:
        if key in skip:
            continue
        if key.startswith('param') and name in TRAINER_CASE_NAMES or \
                key.startswith('saved') and name == 'checkpoint':
            np.testing.assert_allclose(found[key], expected[key], rtol=0,
                                       atol=ATOL_ADAM_PARAMS,
                                       err_msg='%s: %s' % (name, key))
        else:
            assert_close(found[key], expected[key], '%s: %s' % (name, key))


def _with_gaps(names, placement=False):
    """`names` as parameters, the known OpenCL gaps marked: a case that
    fails to compile fails every test; one that computes the right numbers
    with some ops on the host fails only the placement test."""
    return [pytest.param(name, marks=pytest.mark.xfail(
        reason=OPENCL_GAPS[name], strict=True))
        if name in OPENCL_GAPS and (placement or
                                    OPENCL_GAPS[name].startswith('compile'))
        else name for name in names]


@pytest.mark.parametrize('name', _with_gaps(LAYER_CASE_NAMES))
def test_layer_on_opencl_matches_cpu_backend(device_report, host_results,
                                             name):
    compare(device_report, host_results, name)


@pytest.mark.parametrize('name', _with_gaps(TRAINER_CASE_NAMES))
def test_training_step_on_opencl_matches_cpu_backend(device_report,
                                                     host_results, name):
    compare(device_report, host_results, name)


@pytest.mark.parametrize('name', _with_gaps(EXPECTED_DEVICE_OPS,
                                           placement=True))
def test_heavy_ops_run_on_the_backend(device_report, name):
    placements = device_case(device_report, name)['placement']
    on_device = set()
    for label, where in placements.items():
        stray = [op for op in where['heavy_host']
                 if not op.startswith(HOST_REDUCTIONS_OPENCL)]
        assert not stray, '%s: on the host: %s' % (label, stray)
        on_device.update(where['device_ops'])
    missing = EXPECTED_DEVICE_OPS[name] - on_device
    assert not missing, '%s: not on the backend: %s (found %s)' % (
        name, sorted(missing), sorted(on_device))


def test_checkpoints_resume_across_backends(device_report, host_results,
                                            workdir):
    """A checkpoint written on either backend restores every shared
    variable (parameters, Adam's moments, noise streams, batch-norm
    statistics) on the other, whose next step then equals the writer's."""
    compare(device_report, host_results, 'checkpoint',
            skip=[k for k in device_case(device_report, 'checkpoint')
                  ['results'] if k.startswith(('resumed', 'loaded'))])
    device = device_case(device_report, 'checkpoint')['results']
    host, _ = host_results('checkpoint')
    # the device resumed from the host's checkpoint ...
    assert_close(device['resumed_second'], host['second'],
                 'device resumed from host')
    saved = [k for k in host if k.startswith('saved')]
    assert saved and len(saved) == len(
        [k for k in device if k.startswith('loaded')])
    for key in saved:
        np.testing.assert_allclose(device['loaded' + key[5:]], host[key],
                                   rtol=1e-6, atol=1e-7, err_msg=key)
    # ... and the host, now, from the device's
    host_again, _ = run_case('checkpoint', workdir, 'host')
    assert_close(host_again['resumed_second'], device['second'],
                 'host resumed from device')
    for key in saved:
        np.testing.assert_array_equal(host_again['loaded' + key[5:]],
                                      device[key], err_msg=key)


if __name__ == '__main__':
    _die_with_parent()
    sys.path.insert(0, REPO)
    worker(sys.argv[1], sys.argv[2:])
