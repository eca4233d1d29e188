"""Time Parmesan on Theano's GPU backend against its CPU backend and PyTorch.

Rows (the models and workloads of ``run.py``): ``iwae-k1``, ``iwae-k5``,
``iwae-k50`` (seconds per 60,000-example epoch of iw_vae's
784-500-500-100-500-500-784 model, batch 100, Adam with clipping) and
``eval-L5000`` (L_5000 over the first 50 test images). Each row starts three
worker processes and times them alternately, pair by pair, as ``run.py``
does: Parmesan with ``THEANO_FLAGS=device=<--device>`` (float32), Parmesan
on the CPU backend (``device=cpu``, all cores), and PyTorch on the same GPU
(eager, ``cuda``). A GPU worker that did not get its graph onto the GPU
backend stops the run instead of timing the CPU under a GPU label.

On a GPU machine with no package registry (Python 3.12, numpy 2, CUDA 13,
PyTorch), one call does all of it, with the bundle that ``gpu_bundle.py
build`` prepared on a machine with registries::

    python benchmarks/gpu.py --bundle build/gpu_bundle

which installs the bundle for that Python first (``gpu_bundle.py
install``: offline, needs gcc and Python.h, as Theano does). Where Parmesan's
stack is installed (a venv with pygpu, see README "GPU"), no bundle is
needed; this is also how the script is exercised without NVIDIA GPU, on
OpenCL (PoCL, about 90x slower than the CPU backend)::

    python benchmarks/gpu.py --device opencl0:0 --quick --rows iwae-k1 \\
        --no-torch

The table goes to stdout and to ``--out`` (.rst and .json).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpu_bundle  # noqa: E402
import run  # noqa: E402

GPU_ROWS = ['iwae-k1', 'iwae-k5', 'iwae-k50', 'eval-L5000']
WORKERS = ('parmesan-gpu', 'parmesan-cpu', 'pytorch-gpu')


def torch_cuda():
    """torch's version and GPU name where torch sees a CUDA device, else
    None (asked in a subprocess: the driver never imports torch)."""
    code = ('import json, torch\nprint(json.dumps([torch.__version__, '
            'torch.cuda.get_device_name(0)] if torch.cuda.is_available() '
            'else None))')
    try:
        result = subprocess.run([sys.executable, '-c', code], text=True,
                                capture_output=True, timeout=300)
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError, subprocess.TimeoutExpired):
        return None


def start_workers(spec, args, theano_env, with_torch):
    workers = OrderedDict()
    workers['parmesan-gpu'] = run.Worker(
        dict(spec, framework='theano'),
        'device=%s,floatX=float32,force_device=True' % args.device,
        threads=args.threads, env=theano_env)
    settings = workers['parmesan-gpu'].info['settings']
    if not settings.get('backend_nodes'):
        for worker in workers.values():
            worker.close()
        sys.exit('Theano did not put the model on %s (device %s, %d of %d '
                 'nodes on the GPU backend): see its log above' % (
                     args.device, settings.get('device'),
                     settings.get('backend_nodes', 0),
                     settings.get('nodes', 0)))
    if not args.no_cpu:
        workers['parmesan-cpu'] = run.Worker(
            dict(spec, framework='theano'), 'device=cpu,floatX=float32',
            threads=args.threads, env=theano_env)
    if with_torch:
        workers['pytorch-gpu'] = run.Worker(
            dict(spec, framework='torch', device='cuda'),
            threads=args.threads)
    return workers


def time_row(name, spec, steps, args, theano_env, with_torch):
    result = OrderedDict(row=name, spec=spec, steps=steps)
    workers = start_workers(spec, args, theano_env, with_torch)
    try:
        times = run.interleaved(workers, steps, args.pairs,
                                warmup=max(1, steps // 10)
                                if spec['kind'] == 'train' else 1)
        for key, worker in workers.items():
            result[key] = OrderedDict(
                seconds=[run.per_epoch(spec, t, steps) for t in times[key]],
                compile_s=worker.info['compile_seconds'],
                settings=worker.info['settings'])
            if spec['kind'] == 'eval':
                result[key]['L'] = worker.ask(cmd='result')['result']
        result['data'] = workers['parmesan-gpu'].info['data']
        for other, label in (('parmesan-cpu', 'cpu_over_gpu'),
                             ('pytorch-gpu', 'gpu_over_pytorch')):
            if other in times:
                pairs = zip(times[other], times['parmesan-gpu']) \
                    if label == 'cpu_over_gpu' else \
                    zip(times['parmesan-gpu'], times[other])
                result[label] = [a / b for a, b in pairs]
    finally:
        for key, worker in workers.items():
            try:
                result.setdefault(key, OrderedDict())['memory'] = \
                    worker.close()
            except Exception:
                worker.process.kill()
    return result


def report(results, meta):
    header = ['row', 'Parmesan GPU', 'Parmesan CPU', 'PyTorch GPU',
              'Parmesan GPU / PyTorch GPU', 'CPU / GPU',
              'compile GPU / CPU (s)']
    rows = []
    for r in results:
        unit = 's/epoch' if r['spec']['kind'] == 'train' else 's/eval'

        def cell(key):
            seconds = r.get(key, {}).get('seconds')
            return '%s %s' % (run._fmt(run.median(seconds), 2), unit) \
                if seconds else '-'
        rows.append([r['row'], cell('parmesan-gpu'), cell('parmesan-cpu'),
                     cell('pytorch-gpu'),
                     run._span(r.get('gpu_over_pytorch', [])),
                     run._span(r.get('cpu_over_gpu', [])),
                     '%s / %s' % (
                         run._fmt(r['parmesan-gpu'].get('compile_s')),
                         run._fmt(r.get('parmesan-cpu', {}).get(
                             'compile_s')))])
    text = [run.rst_table(header, rows), '']
    for r in results:
        if r['spec']['kind'] == 'eval':
            text.append('%s: mean L_%d of the untrained model: %s.' % (
                r['row'], r['spec']['iw'], ', '.join(
                    '%s %s' % (key, run._fmt(
                        sum(r[key]['L']) / len(r[key]['L']), 3))
                    for key in WORKERS if r.get(key, {}).get('L'))))
    gpu = next((r['parmesan-gpu']['settings'] for r in results), {})
    text += ['', 'Taken %s on %s (%d cores), GPU: %s; Theano device %s '
             '(%s of %s nodes of the last row on the GPU backend); %d '
             'pair(s) per row, medians (min-max of the pairwise ratios); '
             'data: %s.' % (meta['date'], meta['cpu'], meta['cores'],
                            meta['gpu'], gpu.get('device'),
                            gpu.get('backend_nodes'), gpu.get('nodes'),
                            meta['pairs'], meta['data']),
             'Versions: %s.' % meta['versions']]
    return '\n'.join(text)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--bundle', default=None,
                        help='a bundle from gpu_bundle.py build: installed '
                             'for this Python if needed, then used by the '
                             'Theano workers')
    parser.add_argument('--device', default='cuda0',
                        help='Theano\'s GPU device (default cuda0; '
                             'opencl0:0 for OpenCL)')
    parser.add_argument('--rows', default=','.join(GPU_ROWS),
                        help='comma-separated subset of: ' + ', '.join(
                            run.ROWS))
    parser.add_argument('--quick', action='store_true',
                        help='few steps, one pair, %d test images'
                             % run.EVAL_EXAMPLES[1])
    parser.add_argument('--pairs', type=int, default=None,
                        help='timed pairs per row (default 3, quick 1)')
    parser.add_argument('--steps-scale', type=float, default=1.0)
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--no-torch', action='store_true')
    parser.add_argument('--no-cpu', action='store_true',
                        help='skip the CPU backend\'s worker')
    parser.add_argument('--data-dir', default=None)
    parser.add_argument('--out', default=None,
                        help='write OUT.rst and OUT.json (default '
                             'benchmarks/results_gpu, quick: '
                             'benchmarks/results_gpu_quick)')
    args = parser.parse_args(argv)
    if args.data_dir is None and not os.environ.get('PARMESAN_DATA'):
        beside = os.path.join(run.REPO, '..', 'shared', 'data')
        if os.path.isdir(beside):
            args.data_dir = os.path.abspath(beside)
    if args.pairs is None:
        args.pairs = 1 if args.quick else 3
    if args.out is None:
        args.out = os.path.join(HERE, 'results_gpu_quick' if args.quick
                                else 'results_gpu')
    return args


def theano_environment(bundle):
    """The Theano workers' environment: this one, or the bundle's."""
    if bundle is None:
        return dict(os.environ)
    here = '%d.%d' % sys.version_info[:2]
    settings = os.path.join(bundle, 'env.json')
    built_for = None
    if os.path.exists(settings):
        with open(os.path.join(bundle, 'manifest.json')) as stream:
            built_for = json.load(stream)['python']
    if built_for != here or not os.path.isdir(os.path.join(bundle, 'site',
                                                           'pygpu')):
        gpu_bundle.install(bundle)
    return gpu_bundle.environment(bundle)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    names = [n.strip() for n in args.rows.split(',') if n.strip()]
    unknown = [n for n in names if n not in run.ROWS]
    if unknown:
        sys.exit('unknown rows: %s (choose from %s)'
                 % (', '.join(unknown), ', '.join(run.ROWS)))
    theano_env = theano_environment(args.bundle)
    found = None if args.no_torch else torch_cuda()
    with_torch = found is not None
    if not with_torch and not args.no_torch:
        print('PyTorch with a CUDA device is not available: the PyTorch '
              'column stays empty', flush=True)
    meta = OrderedDict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        cpu=run.machine(), cores=os.cpu_count(), threads=args.threads,
        pairs=args.pairs, quick=args.quick, device=args.device,
        gpu=found[1] if found else args.device,
        versions=', '.join(filter(None, [
            'torch %s' % found[0] if found else None,
            subprocess.run(
                [sys.executable, '-c', 'import sys, numpy, theano, pygpu; '
                 'print("python %s, numpy %s, theano %s, pygpu %s" % ('
                 'sys.version.split()[0], numpy.__version__, '
                 'theano.__version__, pygpu.__version__))'],
                env=dict(theano_env, PYTHONPATH=os.pathsep.join(filter(
                    None, [theano_env.get('PYTHONPATH'), run.REPO]))),
                text=True, capture_output=True).stdout.strip()])))
    results = []
    for name in names:
        spec, full_steps, quick_steps = run.ROWS[name]
        spec = dict(spec, data_dir=args.data_dir)
        if spec['kind'] == 'eval':
            spec['examples'] = run.EVAL_EXAMPLES[1 if args.quick else 0]
        steps = quick_steps if args.quick else \
            max(1, int(round(full_steps * args.steps_scale)))
        print('timing %s (%d step(s) x %d pair(s))...'
              % (name, steps, args.pairs), flush=True)
        results.append(time_row(name, spec, steps, args, theano_env,
                                with_torch))
    meta['data'] = ', '.join(sorted({r.get('data') or '?'
                                     for r in results}))
    text = report(results, meta)
    print('\n' + text)
    with open(args.out + '.rst', 'w') as stream:
        stream.write(text + '\n')
    with open(args.out + '.json', 'w') as stream:
        json.dump(OrderedDict(meta=meta, rows=results), stream, indent=1)
    print('written: %s.rst, %s.json' % (args.out, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
