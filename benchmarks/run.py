"""Time Parmesan (Theano) against the same models written in PyTorch.

One run, one machine: every row starts one worker process per framework
and times them alternately, pair by pair, so the ratio Parmesan / PyTorch of
each pair shares the machine's state (this machine's speed drifts by up to
30 %); the table reports medians over the pairs.

Rows:

* ``iwae-k1``, ``iwae-k5``, ``iwae-k50``: Parmesan's iw_vae model,
  784-500-500-100-500-500-784, softplus, batch 100, Adam (epsilon 1e-4,
  gradients rescaled to norm 5 and clipped to +-1 as iw_vae does), k
  importance samples per example; seconds per 60,000-example epoch,
  extrapolated from a timed window of steps.
* ``burda-k1``, ``burda-k5``: Burda et al.'s 784-200-200-50 tanh model at
  batch 20, Adam epsilon 1e-4, no clipping.
* ``eval-L5000``: the test log-likelihood L_5000 (5000 importance samples per
  example, :func:`parmesan.experiments.evaluation.importance_sampled_log_likelihood`
  with its default 25,000 samples per call) of the iw_vae model over a fixed
  slice of the test set.
* ``ladder``: the ladder network's training step (784-1000-500-250-250-250-10,
  100 unlabelled + 100 labelled rows, Adam); seconds per 50,000-image epoch.
* ``exact-m2``, ``gumbel-m2``: vae_ssl's ExactM2 and GumbelSoftmaxM2 training
  step (100 unlabelled + 100 labelled images); seconds per 50,000-image
  epoch.

Every row also times numpy doing only the row's matrix products (recorded
from one step of Parmesan's compiled graph: shapes and memory layouts), the
reference of the ``% of numpy matmul`` column: the share of numpy's matmul
rate that Parmesan's whole step reaches. The VAE rows also time the same
model in PyTorch (eager) and, where JAX is installed, in JAX (jit).

Also: Theano's cold compile (an empty compile cache) and warm compile (the
same cache, filled), the peak resident memory of each worker above its
state after the imports, and with ``--ablations`` what each of Parmesan's
performance settings buys (the shipped defaults against one setting
changed, again pair by pair).

Usage::

    python benchmarks/run.py --quick            # smoke test, ~2-4 minutes
    python benchmarks/run.py                    # the README table
    python benchmarks/run.py --ablations        # + per-setting speedups
    python benchmarks/run.py --rows iwae-k1,eval-L5000 --pairs 3

PyTorch and JAX are optional (``pip install torch==2.13.0``,
``pip install jax jaxlib``); without them their columns are left empty. The table goes to stdout and to ``--out`` (.rst and
.json).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TORCH_HINT = ('PyTorch is not installed: the PyTorch rows are skipped. '
              'Install it with  pip install torch==2.13.0  (a local CPU '
              'wheel here, from /opt/wheels; keep setuptools<82 for '
              'Lasagne: pip install torch==2.13.0 "setuptools>=77.0.3,<81")')
JAX_HINT = ('JAX is not installed: the JAX columns are left empty. Install '
            'it with  pip install jax jaxlib  (a CPU build)')

#: Examples per epoch: the VAEs' 60,000 (training and validation images
#: merged), the ladder's and M2's 50,000 unlabelled images.
EPOCH = 60000
SEMI_SUPERVISED_EPOCH = 50000
IWAE = dict(hidden=[500, 500], latent=100, nonlinearity='softplus',
            batch_size=100, adam_epsilon=1e-4, max_norm=5.0, clip_value=1.0)
BURDA = dict(hidden=[200, 200], latent=50, nonlinearity='tanh',
             batch_size=20, adam_epsilon=1e-4, max_norm=None,
             clip_value=None)

LADDER = dict(kind='ladder', layers=[784, 1000, 500, 250, 250, 250, 10],
              lambdas=[1000, 10, 0.1, 0.1, 0.1, 0.1, 0.1], batch_size=100,
              epoch_examples=SEMI_SUPERVISED_EPOCH)
M2 = dict(kind='m2', batch_size=100, epoch_examples=SEMI_SUPERVISED_EPOCH)

#: name -> (model and workload, steps per timing in full mode, quick mode)
ROWS = OrderedDict([
    ('iwae-k1', (dict(IWAE, kind='train', iw=1), 150, 4)),
    ('iwae-k5', (dict(IWAE, kind='train', iw=5), 60, 2)),
    ('iwae-k50', (dict(IWAE, kind='train', iw=50), 10, 1)),
    ('burda-k1', (dict(BURDA, kind='train', iw=1), 600, 10)),
    ('burda-k5', (dict(BURDA, kind='train', iw=5), 300, 5)),
    ('eval-L5000', (dict(IWAE, kind='eval', iw=5000, max_rows=25000), 1, 1)),
    ('ladder', (LADDER, 30, 2)),
    ('exact-m2', (dict(M2, model='ExactM2'), 15, 1)),
    ('gumbel-m2', (dict(M2, model='GumbelSoftmaxM2'), 30, 2)),
])
#: The rows with a PyTorch and a JAX twin (the VAE's).
TWIN_KINDS = ('train', 'eval')
#: test images of the evaluation row (the first N), full and quick mode
EVAL_EXAMPLES = (50, 5)

def scipy_openblas_ldflags():
    """``blas.ldflags`` linking Theano's C code to the OpenBLAS in scipy
    1.13's wheel, which exports the plain LP64 symbols (sgemm_, ...) Theano
    calls (numpy 1.26's has 64-bit integers and suffixed names); '' if
    there is none. Only for the ablation: Parmesan does not ship it."""
    import glob
    import importlib.util
    spec = importlib.util.find_spec('scipy')
    if spec is None or not spec.submodule_search_locations:
        return ''
    site = os.path.dirname(list(spec.submodule_search_locations)[0])
    found = sorted(glob.glob(os.path.join(site, 'scipy.libs',
                                          'libopenblasp-*.so')))
    if not found or ' ' in found[0] or ',' in found[0]:
        return ''
    return '-L%s -l:%s' % (os.path.dirname(found[0]),
                           os.path.basename(found[0]))


#: Parmesan's own ops and graph rewrites off: the graphs before issue 15.
BEFORE = {'env': {'PARMESAN_FUSED_OPS': '0'}}

#: (name, row, what changes against the shipped defaults): Theano flags
#: ('flags'), environment variables ('env'), workload settings.
ABLATIONS = [
    ('all of Parmesan\'s ops off (PARMESAN_FUSED_OPS=0)', row, BEFORE)
    for row in ('iwae-k1', 'iwae-k5', 'burda-k1', 'burda-k5', 'eval-L5000',
                'ladder', 'exact-m2', 'gumbel-m2')] + [
    ('FusedAdam off (PARMESAN_FUSED_ADAM=0)', 'iwae-k1',
     {'env': {'PARMESAN_FUSED_ADAM': '0'}}),
    ('AddRowBias off (PARMESAN_ROW_BIAS=0)', 'iwae-k1',
     {'env': {'PARMESAN_ROW_BIAS': '0'}}),
    ('FusedAdam off (PARMESAN_FUSED_ADAM=0)', 'burda-k1',
     {'env': {'PARMESAN_FUSED_ADAM': '0'}}),
    ('AddRowBias off (PARMESAN_ROW_BIAS=0)', 'burda-k1',
     {'env': {'PARMESAN_ROW_BIAS': '0'}}),
    ('AddRowBias off (PARMESAN_ROW_BIAS=0)', 'eval-L5000',
     {'env': {'PARMESAN_ROW_BIAS': '0'}}),
    ('factored enumeration off', 'exact-m2',
     {'env': {'PARMESAN_FACTORED_ENUMERATION': '0'}}),
    ('BLAS linked to scipy\'s OpenBLAS (not shipped; PARMESAN filter)', 'iwae-k1',
     {'flags': 'BLAS'}),
    ('BLAS linked to scipy\'s OpenBLAS (not shipped; PARMESAN filter)',
     'eval-L5000', {'flags': 'BLAS'}),
    ('openmp=True (elemwise on 2 threads)', 'iwae-k1',
     {'flags': 'openmp=True,openmp_elemwise_minsize=20000'}),
    ('openmp=True (elemwise on 2 threads)', 'eval-L5000',
     {'flags': 'openmp=True,openmp_elemwise_minsize=20000'}),
    ('float64 instead of float32', 'iwae-k1', {'flags': 'floatX=float64'}),
    ('no vectorised math (gcc.cxxflags empty)', 'iwae-k1',
     {'flags': 'gcc.cxxflags='}),
    ('allow_gc=True', 'iwae-k1', {'flags': 'allow_gc=True'}),
    ('linker=c|py', 'iwae-k1', {'flags': 'linker=c|py'}),
    ('5,000 samples per call (max_rows)', 'eval-L5000', {'max_rows': 5000}),
    ('all of Parmesan 0.2.0\'s old settings', 'iwae-k1',
     {'flags': 'floatX=float64,gcc.cxxflags=,allow_gc=True,blas.ldflags=',
      'bernoulli': 'probabilities', 'env': {'PARMESAN_FUSED_OPS': '0'}}),
]


# --------------------------------------------------------------------------
# Workers: one process per framework and row, driven over stdin/stdout.
# --------------------------------------------------------------------------

def _proc_status(key):
    try:
        with open('/proc/self/status') as stream:
            for line in stream:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float('nan')


def _reset_peak_memory():
    """Reset VmHWM (Linux >= 4.0); harmless elsewhere."""
    try:
        with open('/proc/self/clear_refs', 'w') as stream:
            stream.write('5')
    except OSError:
        pass


def load_images(spec):
    """Binarised training images and the test slice (float32), MNIST when
    available, else random binary images of MNIST's density."""
    import numpy as np
    rng = np.random.RandomState(1234)
    try:
        from parmesan import datasets
        train, _, _, _, test, _ = datasets.load_mnist_dynamic(
            spec.get('data_dir'), download=False)
        train = datasets.binarize(train, rng)
        source = 'MNIST'
    except Exception:  # no data here: timing does not depend on pixels
        train = (rng.rand(20000, 784) < 0.13).astype(np.float32)
        test = (rng.rand(1000, 784) < 0.13).astype(np.float32)
        source = 'random'
    # 20,000 training images are plenty for timing; keep the memory small.
    return train[:20000].copy(), test[:spec.get('examples', 1)].copy(), \
        source


class Workload(object):
    """The timed work of one row, for one framework."""

    def __init__(self, spec, data):
        import numpy as np
        self.spec = spec
        self.train_x, self.test_x, self.source = data
        self.order = np.random.RandomState(0).permutation(len(self.train_x))
        self.position = 0
        self.products = None

    def batches(self, count):
        size = self.spec['batch_size']
        for _ in range(count):
            if self.position + size > len(self.order):
                self.position = 0
            yield self.order[self.position:self.position + size]
            self.position += size

    def step(self, rows):
        """One training step on the images `rows`."""
        raise NotImplementedError

    def evaluate(self):
        from parmesan.experiments.evaluation import \
            importance_sampled_log_likelihood
        return importance_sampled_log_likelihood(
            self.log_weights, self.test_x, self.spec['iw'],
            self.spec['max_rows'], show_progress=False)

    def run(self, count):
        """Run `count` training steps (or evaluations); return the
        seconds."""
        start = time.perf_counter()
        if self.spec['kind'] == 'eval':
            for _ in range(count):
                self.last = self.evaluate()
        else:
            for rows in self.batches(count):
                self.step(rows)
        return time.perf_counter() - start


#: Theano ops that are matrix products: class name -> the positions of
#: their two operands among the node's inputs (Ger: an outer product).
MATMUL_OPERANDS = {'Dot22': (0, 1), 'Dot22Scalar': (0, 1), 'Dot': (0, 1),
                   'Gemm': (2, 3), 'Gemv': (2, 3), 'Ger': (2, 3),
                   'CGemv': (2, 3), 'CGer': (2, 3), 'ScipyGer': (2, 3)}


def _layout(array):
    if array.flags.c_contiguous:
        return 'C'
    return 'F' if array.flags.f_contiguous else 'N'


def matmul_product(op_name, a, b):
    """(m, k, n, layout of a, layout of b) of one matrix product of `a`
    and `b` by the Theano op `op_name` (vectors as rows / columns; Ger's
    outer product as k = 1)."""
    if op_name.endswith('Ger'):
        a, b = a.reshape(-1, 1), b.reshape(1, -1)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if b.ndim == 1:
        b = b.reshape(-1, 1)
    return (int(a.shape[0]), int(a.shape[1]), int(b.shape[1]), _layout(a),
            _layout(b))


def product_flops(products):
    """2 m k n summed over [(m, k, n, layout_a, layout_b, count)]."""
    return sum(2.0 * m * k * n * count for m, k, n, _, _, count in products)


class TheanoWorkload(Workload):
    def __init__(self, spec, data):
        super(TheanoWorkload, self).__init__(spec, data)
        import numpy as np
        import lasagne
        import theano
        import theano.tensor as T
        from parmesan import ops
        lasagne.random.set_rng(np.random.RandomState(1))
        start = time.perf_counter()
        builder = {'train': self._build_vae, 'eval': self._build_vae,
                   'ladder': self._build_ladder, 'm2': self._build_m2}
        builder[spec['kind']]()
        self.compile_seconds = time.perf_counter() - start
        nodes = self.function.maker.fgraph.toposort()
        self.settings = {
            'device': theano.config.device,
            # nodes whose outputs live on the GPU backend (gpuarray)
            'backend_nodes': sum(
                any(type(o.type).__name__ == 'GpuArrayType'
                    for o in node.outputs) for node in nodes),
            'nodes': len(nodes),
            'floatX': theano.config.floatX,
            'blas.ldflags': theano.config.blas.ldflags,
            'gcc.cxxflags': theano.config.gcc.cxxflags,
            'allow_gc': theano.config.allow_gc,
            'linker': theano.config.linker,
            'openmp': theano.config.openmp,
            'bernoulli': spec.get('bernoulli', 'logits'),
            'parmesan.ops': repr(ops.config)}
        del T

    def _compile(self, *args, **kwargs):
        """theano.function, remembering its arguments for the probe."""
        import theano
        self.compile_args = (args, kwargs)
        return theano.function(*args, **kwargs)

    def _capture_compile(self, build):
        """Call build() (a trainer's compile_train), remembering the
        arguments of the theano.function call it makes."""
        import theano
        original = theano.function

        def capture(*args, **kwargs):
            self.compile_args = (args, kwargs)
            return original(*args, **kwargs)
        theano.function = capture
        try:
            return build()
        finally:
            theano.function = original

    def _build_vae(self):
        import numpy as np
        import lasagne
        import theano
        import theano.tensor as T
        from parmesan.experiments import vae as models
        from parmesan.distributions import log_bernoulli
        from parmesan.updates import adam_with_clipping
        spec = self.spec
        if spec.get('bernoulli') == 'probabilities':
            # Parmesan <= 0.2.0: clip(sigmoid) and binary_crossentropy.
            models.log_bernoulli_logits = \
                lambda x, logits, eps: log_bernoulli(
                    x, T.nnet.sigmoid(logits), eps=eps)
        nonlinearity = {'softplus': T.nnet.softplus, 'tanh': T.tanh,
                        'rectify': lasagne.nonlinearities.rectify}[
            spec['nonlinearity']]
        model = models.VariationalAutoencoder(
            784, spec['hidden'], spec['latent'], nonlinearity, nonlinearity)
        self.model = model
        if spec['kind'] == 'train':
            # As parmesan.experiments.vae compiles iw_vae's train function.
            terms = model.terms()
            bound = model.bound(terms).mean()
            learning_rate = theano.shared(lasagne.utils.floatX(1e-3))
            updates = adam_with_clipping(
                -bound, model.params(trainable=True), learning_rate,
                epsilon=spec['adam_epsilon'], max_norm=spec['max_norm'],
                clip_value=spec['clip_value'])
            monitored = [bound] + [terms[k].mean() for k in
                                   ('log_px_z', 'log_pz', 'log_qz')]
            self.function = self._compile(
                [model.x], monitored, updates=updates,
                givens=[(model.eq, np.int32(1)),
                        (model.iw, np.int32(spec['iw']))])
        else:
            one = T.constant(1, dtype='int32')
            terms = model.terms(deterministic=True)
            # As VariationalAutoencoder.compile_evaluation's log_weights.
            self.function = self._compile(
                [model.x, model.iw], terms['log_w'].flatten(),
                givens=[(model.eq, one)])
            self.log_weights = self.function

    def _build_ladder(self):
        import numpy as np
        import lasagne
        import theano
        from parmesan.experiments.ladder import LadderNetwork
        spec = self.spec
        net = LadderNetwork(spec['layers'])
        learning_rate = theano.shared(lasagne.utils.floatX(2e-3))
        self.function, _ = self._capture_compile(
            lambda: net.compile_train(learning_rate, spec['lambdas']))
        self.model = net
        rng = np.random.RandomState(2)
        self.labelled = rng.choice(len(self.train_x), spec['batch_size'],
                                   replace=False)
        self.targets = rng.randint(0, spec['layers'][-1],
                                   spec['batch_size']).astype(np.int32)

    def _build_m2(self):
        import numpy as np
        import lasagne
        import theano
        from parmesan.experiments.m2 import M2Model
        from parmesan.updates import linear_warmup
        spec = self.spec
        iteration = theano.shared(lasagne.utils.floatX(0.0), 'iteration')
        sharpening = 3.0 * 0.5 * (1.0 + linear_warmup(iteration + 1, 1))
        model = M2Model(spec['model'], temperature=1.0 / sharpening)
        learning_rate = theano.shared(lasagne.utils.floatX(5e-4))
        self.function, _ = self._capture_compile(
            lambda: model.compile_train(learning_rate, iteration,
                                        sharpening))
        self.model = model
        rng = np.random.RandomState(2)
        self.labelled = rng.choice(len(self.train_x), spec['batch_size'],
                                   replace=False)
        self.targets = rng.randint(0, 10, spec['batch_size']).astype(
            np.int32)

    def step(self, rows):
        import numpy as np
        kind = self.spec['kind']
        if kind == 'train':
            self.function(self.train_x[rows])
        elif kind == 'ladder':
            self.function(np.concatenate([self.train_x[self.labelled],
                                          self.train_x[rows]]),
                          self.targets, np.int32(len(self.labelled)))
        else:
            self.function(self.train_x[rows], self.train_x[self.labelled],
                          self.targets)

    def record_products(self):
        """The matrix products of one step: the function recompiled with
        a Python VM whose callback records every product's operands, run
        once. Returns [(m, k, n, layout_a, layout_b, count)]."""
        import theano
        from theano.gof.vm import VM_Linker
        found = {}

        def callback(node, thunk, storage_map, compute_map):
            name = type(node.op).__name__
            operands = getattr(node.op, 'matmul_operands', None)
            positions = operands(node) if operands else \
                MATMUL_OPERANDS.get(name)
            if positions is None:
                return
            a, b = [storage_map[node.inputs[i]][0] for i in positions]
            key = matmul_product(name, a, b)
            found[key] = found.get(key, 0) + 1

        mode = theano.compile.Mode(
            linker=VM_Linker(use_cloop=False, callback=callback,
                             allow_gc=False),
            optimizer=theano.config.optimizer)
        saved = self.function, getattr(self, 'log_weights', None)
        args, kwargs = self.compile_args
        probe = theano.function(*args, **dict(kwargs, mode=mode))
        self.function = probe
        if self.spec['kind'] == 'eval':
            self.log_weights = probe
        try:
            self.run(1)
        finally:
            self.function, self.log_weights = saved
        return sorted(key + (count,) for key, count in found.items())


class TorchWorkload(Workload):
    def __init__(self, spec, data):
        super(TorchWorkload, self).__init__(spec, data)
        import torch
        sys.path.insert(0, HERE)
        import torch_models
        torch.manual_seed(1)
        self.torch, self.models = torch, torch_models
        self.device = torch.device(spec.get('device', 'cpu'))
        start = time.perf_counter()
        self.model = torch_models.TorchVAE(
            784, spec['hidden'], spec['latent'], spec['nonlinearity']).to(
                self.device)
        self.optimizer = torch_models.make_optimizer(
            self.model, epsilon=spec['adam_epsilon'])
        self.log_weights = torch_models.log_weights_function(self.model)
        self.compile_seconds = time.perf_counter() - start
        self.settings = {'torch': torch.__version__,
                         'threads': torch.get_num_threads(),
                         'device': str(self.device)}

    def step(self, rows):
        # the monitored values come back to the host: one sync per step,
        # as Theano's outputs
        self.models.train_step(
            self.model, self.optimizer,
            self.torch.from_numpy(self.train_x[rows]).to(self.device), 1,
            self.spec['iw'], self.spec['max_norm'], self.spec['clip_value'])


class JaxWorkload(Workload):
    def __init__(self, spec, data):
        super(JaxWorkload, self).__init__(spec, data)
        import jax
        sys.path.insert(0, HERE)
        import jax_models
        self.jax, self.models = jax, jax_models
        start = time.perf_counter()
        params = jax_models.init_params(
            jax.random.PRNGKey(1), 784, spec['hidden'], spec['latent'])
        self.state = jax_models.adam_state(params)
        self.key = jax.random.PRNGKey(2)
        self.train_step = jax_models.make_train_step(
            spec['nonlinearity'], iw_samples=spec['iw'],
            epsilon=spec['adam_epsilon'], max_norm=spec['max_norm'],
            clip_value=spec['clip_value'])
        self.log_weights = jax_models.log_weights_function(
            params, spec['nonlinearity'])
        # jit compiles on the first call with each shape: count it here.
        if spec['kind'] == 'train':
            self.step(next(self.batches(1)))
        else:
            self.log_weights(self.test_x[:1], spec['iw'])
        self.compile_seconds = time.perf_counter() - start
        self.settings = {'jax': jax.__version__,
                         'devices': str(jax.devices())}

    def step(self, rows):
        self.key, noise_key = self.jax.random.split(self.key)
        self.state, monitored = self.train_step(
            self.state, self.train_x[rows], noise_key)
        return [float(v) for v in monitored]


class NumpyMatmulWorkload(Workload):
    """Only the matrix products of a step, in float32, with the shapes and
    memory layouts Parmesan's graph has: the rate numpy's BLAS reaches on
    this workload."""

    def __init__(self, spec, data):
        super(NumpyMatmulWorkload, self).__init__(spec, data)
        import numpy as np
        rng = np.random.RandomState(0)
        self.calls = []
        for m, k, n, layout_a, layout_b, count in spec['products']:
            a = rng.randn(m, k).astype(np.float32)
            b = rng.randn(k, n).astype(np.float32)
            if layout_a == 'F':
                a = np.asfortranarray(a)
            if layout_b == 'F':
                b = np.asfortranarray(b)
            out = np.empty((m, n), np.float32)
            self.calls.append((a, b, out, count))
        self.products = spec['products']
        self.compile_seconds = 0.0
        self.settings = {'numpy': np.__version__}

    def run(self, count):
        import numpy as np
        start = time.perf_counter()
        for _ in range(count):
            for a, b, out, repeats in self.calls:
                for _ in range(repeats):
                    np.dot(a, b, out=out)
        return time.perf_counter() - start


def worker_main(spec):
    """Serve one row for one framework: build, then time on request."""
    protocol = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)  # library chatter goes to stderr, not into the protocol

    def send(**message):
        protocol.write(json.dumps(message) + '\n')

    start = time.perf_counter()
    framework = spec['framework']
    if framework == 'torch':
        import torch
        torch.set_num_threads(spec['threads'])
        workload_class = TorchWorkload
    elif framework == 'jax':
        import jax  # noqa: F401
        workload_class = JaxWorkload
    elif framework == 'numpy':
        workload_class = NumpyMatmulWorkload
    else:
        # parmesan first: its speed defaults apply at Theano's import
        import parmesan  # noqa: F401
        import theano  # noqa: F401  (the import time is reported)
        workload_class = TheanoWorkload
    import numpy  # noqa: F401
    import parmesan.experiments.evaluation  # noqa: F401
    import_seconds = time.perf_counter() - start
    data = load_images(spec)
    _reset_peak_memory()
    base = _proc_status('VmRSS')
    workload = workload_class(spec, data)
    modules = None
    if framework == 'theano':
        from parmesan.experiments.compiling import modules_built
        modules = modules_built()  # C modules this process compiled
    if spec.get('record_products'):
        workload.products = workload.record_products()
    send(event='built', import_seconds=import_seconds,
         compile_seconds=workload.compile_seconds, settings=workload.settings,
         data=workload.source, products=workload.products,
         flops=product_flops(workload.products or []),
         modules_built=modules)
    for line in sys.stdin:
        command = json.loads(line)
        if command['cmd'] == 'time':
            cpu = time.process_time()
            seconds = workload.run(command['n'])
            send(seconds=seconds, cpu_seconds=time.process_time() - cpu)
        elif command['cmd'] == 'memory':
            send(peak_mb=_proc_status('VmHWM') - base, base_mb=base)
        elif command['cmd'] == 'result':
            send(result=[float(v) for v in getattr(workload, 'last', [])])
        else:
            break


class Worker(object):
    """The driver's handle on a worker process."""

    def __init__(self, spec, env_flags='', compiledir=None, threads=2,
                 env=None, env_update=None):
        env = dict(os.environ if env is None else env)
        env.update(env_update or {})
        flags = [f for f in (env.get('THEANO_FLAGS', ''), env_flags) if f]
        if compiledir:
            flags.append('base_compiledir=' + compiledir)
        env['THEANO_FLAGS'] = ','.join(flags)
        for name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS',
                     'MKL_NUM_THREADS'):
            env[name] = str(threads)
        if threads == 1:  # XLA's CPU client otherwise uses every core
            env['XLA_FLAGS'] = ('--xla_cpu_multi_thread_eigen=false '
                                'intra_op_parallelism_threads=1')
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO] + [p for p in [env.get('PYTHONPATH')] if p])
        spec = dict(spec, threads=threads)
        self.log = tempfile.TemporaryFile(mode='w+')
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), '--worker',
             json.dumps(spec)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, env=env, text=True,
            bufsize=1)
        self.info = self.receive()

    def receive(self):
        line = self.process.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError('benchmark worker failed:\n' +
                               self.log.read()[-4000:])
        return json.loads(line)

    def ask(self, **command):
        self.process.stdin.write(json.dumps(command) + '\n')
        self.process.stdin.flush()
        return self.receive()

    def time(self, steps):
        """Wall-clock seconds of `steps`; their CPU seconds (all threads
        of the process) go to self.cpu_seconds."""
        answer = self.ask(cmd='time', n=steps)
        self.cpu_seconds = answer.get('cpu_seconds')
        return answer['seconds']

    def close(self):
        memory = self.ask(cmd='memory')
        try:
            self.process.stdin.write(json.dumps({'cmd': 'quit'}) + '\n')
            self.process.stdin.close()
        except OSError:
            pass
        self.process.wait(timeout=120)
        self.log.close()
        return memory


# --------------------------------------------------------------------------
# The driver.
# --------------------------------------------------------------------------

def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if not ordered:
        return float('nan')
    if len(ordered) % 2:
        return ordered[middle]
    return 0.5 * (ordered[middle - 1] + ordered[middle])


def module_available(name):
    try:
        import importlib.util
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def interleaved(workers, steps, pairs, warmup, cpu=None):
    """Time `workers` (a dict name -> Worker) alternately: `pairs` rounds,
    each worker once per round, the order rotating; return name -> list of
    wall-clock seconds (and fill `cpu`, if given, with the CPU seconds)."""
    names = list(workers)
    for name in names:
        workers[name].time(warmup)
    times = {name: [] for name in names}
    for round_ in range(pairs):
        rotation = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in rotation:
            times[name].append(workers[name].time(steps))
            if cpu is not None:
                cpu.setdefault(name, []).append(workers[name].cpu_seconds)
    return times


def cold_and_warm_compile(spec, threads, flags=''):
    """Compile twice in fresh processes on a new, empty compile cache."""
    directory = tempfile.mkdtemp(prefix='parmesan-bench-cache-')
    try:
        seconds = []
        for _ in range(2):
            worker = Worker(dict(spec, framework='theano'), flags, directory,
                            threads)
            seconds.append(worker.info['compile_seconds'])
            modules = worker.info.get('modules_built')
            worker.close()
        if modules:
            print('  the warm compile still built %d C modules' % modules,
                  flush=True)
        return seconds
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def per_epoch(spec, seconds, steps):
    if spec['kind'] == 'eval':
        return seconds / steps
    return seconds / steps * spec.get('epoch_examples', EPOCH) / \
        spec['batch_size']


def run_row(name, spec, steps, args, with_torch, with_jax=False):
    """Time one row: Parmesan, numpy doing only its matrix products, and
    for the VAE rows PyTorch and JAX, pair by pair."""
    result = OrderedDict(row=name, spec=spec, steps=steps)
    if args.cold_compile:
        cold, warm = cold_and_warm_compile(spec, args.threads)
        result['compile_cold_s'], result['compile_warm_s'] = cold, warm
    twins = spec['kind'] in TWIN_KINDS
    workers = OrderedDict()
    try:
        workers['parmesan'] = Worker(dict(spec, framework='theano',
                                          record_products=True),
                                     threads=args.threads)
        products = workers['parmesan'].info['products']
        if with_torch and twins:
            workers['pytorch'] = Worker(dict(spec, framework='torch'),
                                        threads=args.threads)
        if with_jax and twins:
            workers['jax'] = Worker(dict(spec, framework='jax'),
                                    threads=args.threads)
        if products:
            workers['numpy'] = Worker(dict(spec, framework='numpy',
                                           products=products),
                                      threads=args.threads)
        times = interleaved(workers, steps, args.pairs,
                            warmup=max(1, steps // 10)
                            if spec['kind'] != 'eval' else 1)
        for key, worker in workers.items():
            result[key] = OrderedDict(
                seconds=[per_epoch(spec, t, steps) for t in times[key]],
                compile_s=worker.info['compile_seconds'],
                import_s=worker.info['import_seconds'],
                settings=worker.info['settings'])
            result['data'] = worker.info['data']
        flops = workers['parmesan'].info.get('flops')
        if flops:
            for key in workers:
                result[key]['gflops'] = [flops * steps / t / 1e9
                                         for t in times[key]]
        for twin, label in (('pytorch', 'ratio'), ('jax', 'ratio_jax')):
            if twin in workers:
                result[label] = [a / b for a, b in zip(times['parmesan'],
                                                       times[twin])]
        if 'numpy' in workers:
            result['products'] = products
            for key in workers:
                if key != 'numpy':
                    result[key]['numpy_fraction'] = [
                        b / a for a, b in zip(times[key], times['numpy'])]
    finally:
        for key, worker in list(workers.items()):
            try:
                result.setdefault(key, OrderedDict())['memory'] = \
                    worker.close()
            except Exception:
                worker.process.kill()
    return result


def run_ablation(label, row, change, spec, steps, args):
    """Parmesan with its shipped defaults against one setting changed."""
    variant = dict(spec)
    if change.get('flags') == 'BLAS':
        change = dict(change, flags='blas.ldflags=' + scipy_openblas_ldflags())
    for key in ('bernoulli', 'max_rows'):
        if key in change:
            variant[key] = change[key]
    workers = OrderedDict()
    try:
        workers['default'] = Worker(dict(spec, framework='theano'),
                                    threads=args.threads)
        workers['variant'] = Worker(dict(variant, framework='theano'),
                                    change.get('flags', ''),
                                    threads=args.threads,
                                    env_update=change.get('env'))
        cpu = {}
        times = interleaved(workers, steps, args.pairs,
                            warmup=max(1, steps // 10)
                            if spec['kind'] != 'eval' else 1, cpu=cpu)
    finally:
        memory = {}
        for key, worker in workers.items():
            try:
                memory[key] = worker.close()['peak_mb']
            except Exception:
                worker.process.kill()
    ratios = [v / d for v, d in zip(times['variant'], times['default'])]
    return OrderedDict(
        label=label, row=row, change=change,
        default=[per_epoch(spec, t, steps) for t in times['default']],
        variant=[per_epoch(spec, t, steps) for t in times['variant']],
        slowdown=ratios, peak_mb=memory,
        cpu_slowdown=[v / d for v, d in zip(cpu['variant'], cpu['default'])],
        compile_s={k: w.info['compile_seconds'] for k, w in workers.items()},
        settings=workers['variant'].info['settings'])


def machine():
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as stream:
            for line in stream:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return cpu


def _fmt(value, digits=1):
    return '-' if value is None or value != value else \
        ('%.*f' % (digits, value))


def _span(values, digits=2):
    if not values:
        return '-'
    text = _fmt(median(values), digits)
    if len(values) > 1:
        text += ' (%s-%s)' % (_fmt(min(values), digits),
                              _fmt(max(values), digits))
    return text


def rst_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows)
              for i in range(len(header))]
    line = '  '.join('=' * w for w in widths)
    out = [line, '  '.join(str(h).ljust(w) for h, w in zip(header, widths)),
           line]
    out += ['  '.join(str(c).ljust(w) for c, w in zip(r, widths))
            for r in rows]
    out.append(line)
    return '\n'.join(out)


def _unit(spec):
    return 's/epoch' if spec['kind'] != 'eval' else 's/eval'


def report(results, ablations, meta):
    header = ['row', 'Parmesan', 'PyTorch', 'Parmesan / PyTorch', 'JAX',
              'Parmesan / JAX', '% of numpy matmul P / T / J',
              'compile cold / warm (s)', 'peak MB P / T / J']
    rows = []
    for r in results:
        unit = _unit(r['spec'])
        par, tor, jax = (r.get(k, {}) for k in ('parmesan', 'pytorch',
                                                 'jax'))
        compile_text = '%s / %s' % (_fmt(r.get('compile_cold_s')),
                                    _fmt(r.get('compile_warm_s'))) \
            if 'compile_cold_s' in r else \
            '- / %s' % _fmt(par.get('compile_s'))
        fractions = ' / '.join(
            _fmt(100 * median(w.get('numpy_fraction', [])), 0)
            for w in (par, tor, jax))
        rows.append([
            r['row'],
            '%s %s' % (_fmt(median(par.get('seconds', [])), 2), unit),
            '%s %s' % (_fmt(median(tor.get('seconds', [])), 2), unit)
            if tor.get('seconds') else '-',
            _span(r.get('ratio', [])),
            '%s %s' % (_fmt(median(jax.get('seconds', [])), 2), unit)
            if jax.get('seconds') else '-',
            _span(r.get('ratio_jax', [])),
            fractions,
            compile_text,
            ' / '.join(_fmt(w.get('memory', {}).get('peak_mb'), 0)
                       for w in (par, tor, jax)),
        ])
    text = [rst_table(header, rows), '']
    for r in results:
        if 'numpy' in r and r['numpy'].get('gflops'):
            spec = r['spec']
            what = '%d test images x %d samples, %d per call' % (
                spec['examples'], spec['iw'], spec['max_rows']) \
                if spec['kind'] == 'eval' else 'one step'
            text.append(
                '%s (%s): %.2f GFLOP of matrix products in %d shapes; '
                'GFLOP/s: Parmesan %s, PyTorch %s, JAX %s, numpy matmul '
                'alone %s.' % (
                    r['row'], what,
                    product_flops(r.get('products', [])) / 1e9,
                    len(r.get('products', [])),
                    _fmt(median(r['parmesan'].get('gflops', [])), 1),
                    _fmt(median(r.get('pytorch', {}).get('gflops', [])), 1),
                    _fmt(median(r.get('jax', {}).get('gflops', [])), 1),
                    _fmt(median(r['numpy'].get('gflops', [])), 1)))
    if ablations:
        text += ['', 'What each setting buys: the shipped defaults against '
                 'one setting changed (time changed / time default, median '
                 'of pairs; > 1 means the default is faster).', '']
        rows = [[a['label'], a['row'], _fmt(median(a['default']), 2),
                 _fmt(median(a['variant']), 2), _span(a['slowdown']),
                 _span(a.get('cpu_slowdown', [])),
                 '%s / %s' % (_fmt(a['peak_mb'].get('default'), 0),
                              _fmt(a['peak_mb'].get('variant'), 0))]
                for a in ablations]
        text.append(rst_table(['changed setting', 'row', 'default',
                               'changed', 'changed / default',
                               'same in CPU time',
                               'peak MB default / changed'], rows))
    settings = next((r['parmesan'].get('settings') for r in results
                     if r.get('parmesan', {}).get('settings')), None)
    text += ['', 'Taken %s on %s (%d cores), %d threads; %d pair(s) per '
             'row, medians (min-max of the pairwise ratios); load average '
             '%s at the start, %s at the end; data: %s.' % (
                 meta['date'], meta['cpu'], meta['cores'], meta['threads'],
                 meta['pairs'], meta['load_start'], meta['load_end'],
                 meta['data']),
             'Versions: %s.' % meta['versions']]
    if settings:
        text.append('Parmesan\'s Theano settings: %s.' % ', '.join(
            '%s=%s' % kv for kv in sorted(settings.items())))
    return '\n'.join(text)


def versions(with_torch, with_jax=False):
    code = ('import json, sys, numpy, theano, lasagne; v = dict('
            'python=sys.version.split()[0], numpy=numpy.__version__, '
            'theano=theano.__version__, lasagne=lasagne.__version__)\n'
            'try:\n import scipy; v["scipy"] = scipy.__version__\n'
            'except ImportError: pass\n')
    if with_torch:
        code += 'import torch; v["torch"] = torch.__version__\n'
    if with_jax:
        code += 'import jax; v["jax"] = jax.__version__\n'
    code += 'print(json.dumps(v))'
    output = subprocess.run([sys.executable, '-c', code], text=True,
                            capture_output=True, env=dict(
                                os.environ, PYTHONPATH=REPO)).stdout
    try:
        found = json.loads(output.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return 'unknown'
    return ', '.join('%s %s' % kv for kv in found.items())


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--quick', action='store_true',
                        help='few steps, one pair, %d test images: a smoke '
                             'test' % EVAL_EXAMPLES[1])
    parser.add_argument('--rows', default=None,
                        help='comma-separated subset of: ' + ', '.join(ROWS))
    parser.add_argument('--pairs', type=int, default=None,
                        help='timed pairs per row (default 5, quick 1)')
    parser.add_argument('--steps-scale', type=float, default=1.0,
                        help='multiply every row\'s timed steps')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--ablations', action='store_true',
                        help='also time each performance setting against '
                             'the shipped defaults')
    parser.add_argument('--cold-compile', default=None,
                        action=argparse.BooleanOptionalAction,
                        help='measure cold and warm compile on an empty '
                             'compile cache (default: on, off with --quick)')
    parser.add_argument('--ablation-filter', default=None,
                        help='only the ablations whose label contains this '
                             'text (e.g. PARMESAN)')
    parser.add_argument('--no-rows', action='store_true',
                        help='skip the Parmesan / PyTorch rows (with '
                             '--ablations: only the ablations)')
    parser.add_argument('--no-torch', action='store_true')
    parser.add_argument('--no-jax', action='store_true')
    parser.add_argument('--data-dir', default=None)
    parser.add_argument('--out', default=None,
                        help='write OUT.rst and OUT.json (default '
                             'benchmarks/results, quick: '
                             'benchmarks/results_quick)')
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data_dir is None and not os.environ.get('PARMESAN_DATA'):
        beside = os.path.join(REPO, '..', 'shared', 'data')
        if os.path.isdir(beside):
            args.data_dir = os.path.abspath(beside)
    if args.pairs is None:
        args.pairs = 1 if args.quick else 5
    if args.cold_compile is None:
        args.cold_compile = not args.quick
    if args.out is None:
        args.out = os.path.join(HERE, 'results_quick' if args.quick
                                else 'results')
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        return worker_main(json.loads(args.worker))
    names = list(ROWS) if args.rows is None else \
        [n.strip() for n in args.rows.split(',') if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        sys.exit('unknown rows: %s (choose from %s)'
                 % (', '.join(unknown), ', '.join(ROWS)))
    with_torch = not args.no_torch and module_available('torch')
    if not with_torch and not args.no_torch:
        print(TORCH_HINT, flush=True)
    with_jax = not args.no_jax and module_available('jax')
    if not with_jax and not args.no_jax:
        print(JAX_HINT, flush=True)
    meta = OrderedDict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        cpu=machine(), cores=os.cpu_count(), threads=args.threads,
        pairs=args.pairs, quick=args.quick,
        load_start='%.1f' % os.getloadavg()[0],
        versions=versions(with_torch, with_jax))
    results, ablations = [], []
    for name in ([] if args.no_rows else names):
        spec, full_steps, quick_steps = ROWS[name]
        spec = dict(spec, data_dir=args.data_dir)
        if spec['kind'] == 'eval':
            spec['examples'] = EVAL_EXAMPLES[1 if args.quick else 0]
        steps = quick_steps if args.quick else \
            max(1, int(round(full_steps * args.steps_scale)))
        print('timing %s (%d step(s) x %d pair(s))...'
              % (name, steps, args.pairs), flush=True)
        results.append(run_row(name, spec, steps, args, with_torch,
                               with_jax))
        print(report(results[-1:], [], dict(
            meta, load_end='%.1f' % os.getloadavg()[0],
            data=results[-1].get('data'))).split('\n\n')[0], flush=True)
    if args.ablations:
        for label, row, change in ABLATIONS:
            if row not in names or ('openmp' in change.get('flags', '')
                                    and args.threads < 2):
                continue
            if args.ablation_filter and args.ablation_filter not in label:
                continue
            spec, full_steps, quick_steps = ROWS[row]
            spec = dict(spec, data_dir=args.data_dir)
            if spec['kind'] == 'eval':
                spec['examples'] = EVAL_EXAMPLES[1 if args.quick else 0]
            steps = quick_steps if args.quick else \
                max(1, int(round(full_steps * args.steps_scale)))
            print('ablation %s: %s...' % (row, label), flush=True)
            ablations.append(run_ablation(label, row, change, spec, steps,
                                          args))
            print('  changed / default: %s' % _span(
                ablations[-1]['slowdown']), flush=True)
    meta['load_end'] = '%.1f' % os.getloadavg()[0]
    meta['data'] = ', '.join(sorted({r.get('data') or '?'
                                     for r in results}))
    text = report(results, ablations, meta)
    print('\n' + text)
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    with open(args.out + '.rst', 'w') as stream:
        stream.write(text + '\n')
    with open(args.out + '.json', 'w') as stream:
        json.dump(OrderedDict(meta=meta, rows=results, ablations=ablations),
                  stream, indent=1)
    print('written: %s.rst, %s.json' % (args.out, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
