"""Where the time of a benchmark row goes: Theano's profiler on the row's
compiled function (``benchmarks/run.py``'s workloads).

For each row it builds Parmesan's workload with ``profile=True``, runs a
few warm-up steps and then the timed steps, and writes Theano's profile
summary (time by op class, by op and by node) to ``OUT/ROW.txt``; the
terminal gets the share of each op class and the heaviest ops.

Usage::

    python benchmarks/profile_rows.py --rows iwae-k1,eval-L5000,ladder,exact-m2
    python benchmarks/profile_rows.py --rows ladder --steps 20 --out /tmp/prof
"""
import argparse
import io
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (benchmarks/run.py: the workloads)


def profile_row(name, steps, data_dir, out):
    import theano
    spec, _, _ = run.ROWS[name]
    spec = dict(spec, data_dir=data_dir)
    if spec['kind'] == 'eval':
        spec['examples'] = run.EVAL_EXAMPLES[0]
    theano.config.profile = True
    try:
        workload = run.TheanoWorkload(spec, run.load_images(spec))
    finally:
        theano.config.profile = False
    workload.run(max(1, steps // 10))
    seconds = workload.run(steps)
    stats = workload.function.profile
    path = os.path.join(out, name + '.txt')
    with open(path, 'w') as stream:
        stats.summary(file=stream, n_ops_to_print=40, n_apply_to_print=40)
    print('%s: %.3f s per step (%s per epoch), Theano compile %.1f s; '
          'profile in %s' % (
              name, seconds / steps,
              '%.1f s' % run.per_epoch(spec, seconds, steps)
              if spec['kind'] != 'eval' else '-', workload.compile_seconds,
              path))
    summary = io.StringIO()
    stats.summary_class(file=summary, N=8)
    stats.summary_ops(file=summary, N=12)
    print(summary.getvalue())
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rows', default='iwae-k1,eval-L5000,ladder,'
                                          'exact-m2',
                        help='comma-separated rows of run.py: ' +
                             ', '.join(run.ROWS))
    parser.add_argument('--steps', type=int, default=None,
                        help='timed steps per row (default: the row\'s '
                             'quick-mode steps x 5)')
    parser.add_argument('--data-dir', default=os.environ.get(
        'PARMESAN_DATA'))
    parser.add_argument('--out', default=os.path.join(HERE, 'profiles'))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name in [n.strip() for n in args.rows.split(',') if n.strip()]:
        if name not in run.ROWS:
            parser.error('unknown row %r' % name)
        steps = args.steps or 5 * run.ROWS[name][2]
        start = time.time()
        profile_row(name, steps, args.data_dir, args.out)
        print('(%.0f s)' % (time.time() - start), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
