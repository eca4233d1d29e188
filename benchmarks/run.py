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
  slice of the test set, plus numpy doing only the same matrix products, the
  reference of the ``% of numpy matmul`` column.

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

PyTorch is optional (``pip install torch==2.13.0``); without it the PyTorch
columns are left empty. The table goes to stdout and to ``--out`` (.rst and
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

EPOCH = 60000
IWAE = dict(hidden=[500, 500], latent=100, nonlinearity='softplus',
            batch_size=100, adam_epsilon=1e-4, max_norm=5.0, clip_value=1.0)
BURDA = dict(hidden=[200, 200], latent=50, nonlinearity='tanh',
             batch_size=20, adam_epsilon=1e-4, max_norm=None,
             clip_value=None)

#: name -> (model and workload, steps per timing in full mode, quick mode)
ROWS = OrderedDict([
    ('iwae-k1', (dict(IWAE, kind='train', iw=1), 150, 4)),
    ('iwae-k5', (dict(IWAE, kind='train', iw=5), 60, 2)),
    ('iwae-k50', (dict(IWAE, kind='train', iw=50), 10, 1)),
    ('burda-k1', (dict(BURDA, kind='train', iw=1), 600, 10)),
    ('burda-k5', (dict(BURDA, kind='train', iw=5), 300, 5)),
    ('eval-L5000', (dict(IWAE, kind='eval', iw=5000, max_rows=25000), 1, 1)),
])
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


#: (name, row, what changes against the shipped defaults)
ABLATIONS = [
    ('float64 instead of float32', 'iwae-k1', {'flags': 'floatX=float64'}),
    ('no vectorised math (gcc.cxxflags empty)', 'iwae-k1',
     {'flags': 'gcc.cxxflags='}),
    ('Bernoulli from probabilities (clip + crossentropy)', 'iwae-k1',
     {'bernoulli': 'probabilities'}),
    ('allow_gc=True', 'iwae-k1', {'flags': 'allow_gc=True'}),
    ('BLAS linked to scipy\'s OpenBLAS', 'iwae-k1', {'flags': 'BLAS'}),
    ('linker=c|py', 'iwae-k1', {'flags': 'linker=c|py'}),
    ('no elemwise fusion', 'iwae-k1',
     {'flags': 'optimizer_excluding=fusion'}),
    ('openmp=True (elemwise on 2 threads)', 'iwae-k1',
     {'flags': 'openmp=True,openmp_elemwise_minsize=20000'}),
    ('all of Parmesan 0.2.0\'s old settings', 'iwae-k1',
     {'flags': 'floatX=float64,gcc.cxxflags=,allow_gc=True,blas.ldflags=',
      'bernoulli': 'probabilities'}),
    ('float64 instead of float32', 'burda-k1', {'flags': 'floatX=float64'}),
    ('no vectorised math (gcc.cxxflags empty)', 'burda-k1',
     {'flags': 'gcc.cxxflags='}),
    ('allow_gc=True', 'burda-k1', {'flags': 'allow_gc=True'}),
    ('BLAS linked to scipy\'s OpenBLAS', 'burda-k1', {'flags': 'BLAS'}),
    ('float64 instead of float32', 'eval-L5000', {'flags': 'floatX=float64'}),
    ('no vectorised math (gcc.cxxflags empty)', 'eval-L5000',
     {'flags': 'gcc.cxxflags='}),
    ('Bernoulli from probabilities (clip + crossentropy)', 'eval-L5000',
     {'bernoulli': 'probabilities'}),
    ('allow_gc=True', 'eval-L5000', {'flags': 'allow_gc=True'}),
    ('BLAS linked to scipy\'s OpenBLAS', 'eval-L5000', {'flags': 'BLAS'}),
    ('5,000 samples per call (max_rows)', 'eval-L5000', {'max_rows': 5000}),
    ('100,000 samples per call (max_rows)', 'eval-L5000',
     {'max_rows': 100000}),
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
        self.flops = None

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

    def run(self, count):
        """Run `count` training steps (or evaluations); return the
        seconds."""
        from parmesan.experiments.evaluation import importance_sampled_log_likelihood
        start = time.perf_counter()
        if self.spec['kind'] == 'train':
            for rows in self.batches(count):
                self.step(rows)
        else:
            for _ in range(count):
                self.last = importance_sampled_log_likelihood(
                    self.log_weights, self.test_x, self.spec['iw'],
                    self.spec['max_rows'], show_progress=False)
        return time.perf_counter() - start


def _eval_flops(spec, examples, max_rows):
    """Multiply-adds x 2 of the evaluation's matrix products."""
    widths = [784] + list(spec['hidden'])
    encoder = sum(a * b for a, b in zip(widths, widths[1:])) + \
        2 * widths[-1] * spec['latent']
    back = [spec['latent']] + list(reversed(spec['hidden'])) + [784]
    decoder = sum(a * b for a, b in zip(back, back[1:]))
    samples = spec['iw']
    chunk = min(samples, max_rows)
    calls_per_example = -(-samples // chunk)
    return 2.0 * (examples * calls_per_example * encoder +
                  examples * samples * decoder)


class TheanoWorkload(Workload):
    def __init__(self, spec, data):
        super(TheanoWorkload, self).__init__(spec, data)
        import numpy as np
        import lasagne
        import theano
        import theano.tensor as T
        from parmesan.experiments import vae as models
        from parmesan.distributions import log_bernoulli
        from parmesan.updates import adam_with_clipping
        if spec.get('bernoulli') == 'probabilities':
            # Parmesan <= 0.2.0: clip(sigmoid) and binary_crossentropy.
            models.log_bernoulli_logits = \
                lambda x, logits, eps: log_bernoulli(
                    x, T.nnet.sigmoid(logits), eps=eps)
        lasagne.random.set_rng(np.random.RandomState(1))
        nonlinearity = {'softplus': T.nnet.softplus, 'tanh': T.tanh,
                        'rectify': lasagne.nonlinearities.rectify}[
            spec['nonlinearity']]
        model = models.VariationalAutoencoder(
            784, spec['hidden'], spec['latent'], nonlinearity, nonlinearity)
        start = time.perf_counter()
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
            self.train = theano.function(
                [model.x], monitored, updates=updates,
                givens=[(model.eq, np.int32(1)),
                        (model.iw, np.int32(spec['iw']))])
        else:
            self.log_weights = model.compile_evaluation()['log_weights']
        self.compile_seconds = time.perf_counter() - start
        compiled = self.train if spec['kind'] == 'train' else \
            self.log_weights
        nodes = compiled.maker.fgraph.toposort()
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
            'bernoulli': spec.get('bernoulli', 'logits')}

    def step(self, rows):
        self.train(self.train_x[rows])


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


class NumpyMatmulWorkload(Workload):
    """Only the matrix products of the evaluation, in float32, called with
    the same chunks: the rate numpy's BLAS reaches on this workload."""

    def __init__(self, spec, data):
        super(NumpyMatmulWorkload, self).__init__(spec, data)
        import numpy as np
        rng = np.random.RandomState(0)
        widths = [784] + list(spec['hidden'])
        back = [spec['latent']] + list(reversed(spec['hidden'])) + [784]
        self.encoder = [rng.randn(a, b).astype(np.float32) * 0.01
                        for a, b in zip(widths, widths[1:])]
        self.heads = [rng.randn(widths[-1], spec['latent']).astype(
            np.float32) * 0.01 for _ in range(2)]
        self.decoder = [rng.randn(a, b).astype(np.float32) * 0.01
                        for a, b in zip(back, back[1:])]
        self.compile_seconds = 0.0
        self.settings = {'numpy': np.__version__}

    def log_weights(self, x, iw):
        import numpy as np
        h = x
        for w in self.encoder:
            h = h.dot(w)
        means = [h.dot(w) for w in self.heads]
        z = np.repeat(means[0], iw, axis=0)
        for w in self.decoder:
            z = z.dot(w)
        return np.zeros(len(x) * iw, np.float32)


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
    if spec['kind'] == 'eval':
        workload.flops = _eval_flops(spec, len(workload.test_x),
                                     spec['max_rows'])
    send(event='built', import_seconds=import_seconds,
         compile_seconds=workload.compile_seconds, settings=workload.settings,
         data=workload.source, flops=workload.flops)
    for line in sys.stdin:
        command = json.loads(line)
        if command['cmd'] == 'time':
            send(seconds=workload.run(command['n']))
        elif command['cmd'] == 'memory':
            send(peak_mb=_proc_status('VmHWM') - base, base_mb=base)
        elif command['cmd'] == 'result':
            send(result=[float(v) for v in getattr(workload, 'last', [])])
        else:
            break


class Worker(object):
    """The driver's handle on a worker process."""

    def __init__(self, spec, env_flags='', compiledir=None, threads=2,
                 env=None):
        env = dict(os.environ if env is None else env)
        flags = [f for f in (env.get('THEANO_FLAGS', ''), env_flags) if f]
        if compiledir:
            flags.append('base_compiledir=' + compiledir)
        env['THEANO_FLAGS'] = ','.join(flags)
        for name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS',
                     'MKL_NUM_THREADS'):
            env[name] = str(threads)
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
        return self.ask(cmd='time', n=steps)['seconds']

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


def torch_available():
    try:
        import importlib.util
        return importlib.util.find_spec('torch') is not None
    except (ImportError, ValueError):
        return False


def interleaved(workers, steps, pairs, warmup):
    """Time `workers` (a dict name -> Worker) alternately: `pairs` rounds,
    each worker once per round, the order rotating; return name -> list."""
    names = list(workers)
    for name in names:
        workers[name].time(warmup)
    times = {name: [] for name in names}
    for round_ in range(pairs):
        rotation = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in rotation:
            times[name].append(workers[name].time(steps))
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
            worker.close()
        return seconds
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def per_epoch(spec, seconds, steps):
    if spec['kind'] == 'train':
        return seconds / steps * EPOCH / spec['batch_size']
    return seconds / steps


def run_row(name, spec, steps, args, with_torch):
    """Time one row: Parmesan and PyTorch (and numpy's matmul for the
    evaluation), pair by pair."""
    result = OrderedDict(row=name, spec=spec, steps=steps)
    if args.cold_compile:
        cold, warm = cold_and_warm_compile(spec, args.threads)
        result['compile_cold_s'], result['compile_warm_s'] = cold, warm
    workers = OrderedDict()
    try:
        workers['parmesan'] = Worker(dict(spec, framework='theano'),
                                     threads=args.threads)
        if with_torch:
            workers['pytorch'] = Worker(dict(spec, framework='torch'),
                                        threads=args.threads)
        if spec['kind'] == 'eval':
            workers['numpy'] = Worker(dict(spec, framework='numpy'),
                                      threads=args.threads)
        times = interleaved(workers, steps, args.pairs,
                            warmup=max(1, steps // 10)
                            if spec['kind'] == 'train' else 1)
        for key, worker in workers.items():
            result[key] = OrderedDict(
                seconds=[per_epoch(spec, t, steps) for t in times[key]],
                compile_s=worker.info['compile_seconds'],
                import_s=worker.info['import_seconds'],
                settings=worker.info['settings'])
            result['data'] = worker.info['data']
            if worker.info.get('flops'):
                result[key]['gflops'] = [worker.info['flops'] * steps / t / 1e9
                                         for t in times[key]]
        if with_torch:
            result['ratio'] = [a / b for a, b in zip(times['parmesan'],
                                                     times['pytorch'])]
        if 'numpy' in workers:
            result['numpy_fraction'] = [b / a for a, b in zip(
                times['parmesan'], times['numpy'])]
            if with_torch:
                result['numpy_fraction_pytorch'] = [b / a for a, b in zip(
                    times['pytorch'], times['numpy'])]
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
                                    threads=args.threads)
        times = interleaved(workers, steps, args.pairs,
                            warmup=max(1, steps // 10)
                            if spec['kind'] == 'train' else 1)
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


def report(results, ablations, meta):
    header = ['row', 'Parmesan', 'PyTorch', 'Parmesan / PyTorch',
              'compile cold / warm (s)', 'peak MB P / T']
    rows = []
    for r in results:
        unit = 's/epoch' if r['spec']['kind'] == 'train' else 's/eval'
        par, tor = r.get('parmesan', {}), r.get('pytorch', {})
        compile_text = '%s / %s' % (_fmt(r.get('compile_cold_s')),
                                    _fmt(r.get('compile_warm_s'))) \
            if 'compile_cold_s' in r else \
            '- / %s' % _fmt(par.get('compile_s'))
        rows.append([
            r['row'],
            '%s %s' % (_fmt(median(par.get('seconds', [])), 2), unit),
            '%s %s' % (_fmt(median(tor.get('seconds', [])), 2), unit)
            if tor.get('seconds') else '-',
            _span(r.get('ratio', [])),
            compile_text,
            '%s / %s' % (_fmt(par.get('memory', {}).get('peak_mb'), 0),
                         _fmt(tor.get('memory', {}).get('peak_mb'), 0)),
        ])
    text = [rst_table(header, rows), '']
    for r in results:
        if 'numpy_fraction' in r:
            spec = r['spec']
            text.append(
                '%s: %d test images x %d samples, %d per call; matmul rate '
                'GFLOP/s: Parmesan %s, PyTorch %s, numpy matmul alone %s; '
                'Parmesan at %s %% of numpy matmul (PyTorch %s %%).' % (
                    r['row'], spec['examples'], spec['iw'],
                    spec['max_rows'],
                    _fmt(median(r['parmesan'].get('gflops', [])), 1),
                    _fmt(median(r.get('pytorch', {}).get('gflops', [])), 1),
                    _fmt(median(r['numpy'].get('gflops', [])), 1),
                    _fmt(100 * median(r['numpy_fraction']), 0),
                    _fmt(100 * median(r.get('numpy_fraction_pytorch', [])),
                         0)))
    if ablations:
        text += ['', 'What each setting buys: the shipped defaults against '
                 'one setting changed (time changed / time default, median '
                 'of pairs; > 1 means the default is faster).', '']
        rows = [[a['label'], a['row'], _fmt(median(a['default']), 2),
                 _fmt(median(a['variant']), 2), _span(a['slowdown']),
                 '%s / %s' % (_fmt(a['peak_mb'].get('default'), 0),
                              _fmt(a['peak_mb'].get('variant'), 0))]
                for a in ablations]
        text.append(rst_table(['changed setting', 'row', 'default',
                               'changed', 'changed / default',
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


def versions(with_torch):
    code = ('import json, sys, numpy, theano, lasagne; v = dict('
            'python=sys.version.split()[0], numpy=numpy.__version__, '
            'theano=theano.__version__, lasagne=lasagne.__version__)\n'
            'try:\n import scipy; v["scipy"] = scipy.__version__\n'
            'except ImportError: pass\n')
    if with_torch:
        code += 'import torch; v["torch"] = torch.__version__\n'
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
    parser.add_argument('--no-rows', action='store_true',
                        help='skip the Parmesan / PyTorch rows (with '
                             '--ablations: only the ablations)')
    parser.add_argument('--no-torch', action='store_true')
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
    with_torch = not args.no_torch and torch_available()
    if not with_torch and not args.no_torch:
        print(TORCH_HINT, flush=True)
    meta = OrderedDict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        cpu=machine(), cores=os.cpu_count(), threads=args.threads,
        pairs=args.pairs, quick=args.quick,
        load_start='%.1f' % os.getloadavg()[0],
        versions=versions(with_torch))
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
        results.append(run_row(name, spec, steps, args, with_torch))
        print(report(results[-1:], [], dict(
            meta, load_end='%.1f' % os.getloadavg()[0],
            data=results[-1].get('data'))).split('\n\n')[0], flush=True)
    if args.ablations:
        for label, row, change in ABLATIONS:
            if row not in names or ('openmp' in change.get('flags', '')
                                    and args.threads < 2):
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
