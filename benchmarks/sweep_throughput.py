"""Throughput of a sweep on this machine: runs in parallel on a local Dask
cluster (``--workers 2``, one core each) against the same runs one after
the other in one process (``--workers 1``, BLAS on every core).

Each run is Burda et al.'s IWAE (``--preset burda``) for a few epochs on a
slice of MNIST, compile and final evaluation included, as a sweep runs it.

    python benchmarks/sweep_throughput.py --runs 2 --epochs 3

Prints a table and writes it to benchmarks/sweep_throughput.md.
"""
import argparse
import os
import shutil
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def time_sweep(workers, runs, epochs, train_subset, folder):
    """Seconds for `runs` seeds of the workload with `workers` workers."""
    from parmesan.experiments import sweep
    start = time.perf_counter()
    sweep.main(['iw_vae', '--seeds', '1-%d' % runs, '--workers',
                str(workers), '-outfolder', folder, '--', '--preset',
                'burda', '-nepochs', str(epochs), '--train-subset',
                str(train_subset), '-eval_epoch', str(epochs),
                '--eval-subset', '100', '--eval-iw', '10', '--final-iw',
                '10'])
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=2)
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--train-subset', type=int, default=20000)
    parser.add_argument('--repeats', type=int, default=2,
                        help='alternate the two modes this many times')
    args = parser.parse_args(argv)
    seconds = {1: [], 2: []}
    scratch = tempfile.mkdtemp(prefix='sweep_throughput_')
    try:
        for repeat in range(args.repeats):
            for workers in (1, 2):
                folder = os.path.join(scratch, '%d_%d' % (workers, repeat))
                seconds[workers].append(time_sweep(
                    workers, args.runs, args.epochs, args.train_subset,
                    folder))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    best = {workers: min(values) for workers, values in seconds.items()}
    lines = [
        'Sweep throughput, %s, %d CPU cores: %d runs of Burda et al.\'s '
        'IWAE, %d epochs on %d images each, compile and evaluation '
        'included; best of %d.' % (
            time.strftime('%Y-%m-%d %H:%M'), os.cpu_count(), args.runs,
            args.epochs, args.train_subset, args.repeats), '',
        '| mode | seconds (each try) | runs per hour (best) |',
        '|---|---|---|']
    for workers, label in ((1, 'one after the other (--workers 1)'),
                           (2, 'in parallel (--workers 2)')):
        lines.append('| %s | %s | %.1f |' % (
            label, ', '.join('%.0f' % s for s in seconds[workers]),
            3600.0 * args.runs / best[workers]))
    lines += ['', 'parallel / sequential throughput: %.2f'
              % (best[1] / best[2])]
    text = '\n'.join(lines) + '\n'
    with open(os.path.join(HERE, 'sweep_throughput.md'), 'w') as stream:
        stream.write(text)
    print(text)
    return best


if __name__ == '__main__':
    main()
