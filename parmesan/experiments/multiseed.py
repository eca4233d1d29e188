"""Several M2 models over several seeds, one run after another, each
resumable in its own folder, then one table and one plot: the runner of
``examples/m2_multiseed.py``.
"""
import argparse
import csv
import json
import os
import sys
import time
from collections import OrderedDict

import numpy as np

from .cli import (ALLOWED, argument_parser, check_args, check_outfolder,
                  flag_name, given_flags, parse_args)
from .m2 import (LIMITS, MODELS, VAE_SSL_VALID_ACCURACY, m2_argument_parser,
                 run)
from .plotting import plt

__all__ = ['multiseed_argument_parser', 'run_multiseed', 'summarise_seeds']


def multiseed_argument_parser():
    """Flags of the multi-seed runner; everything else goes to :func:`run`.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argument_parser(
        'Run several M2 models over several seeds (one after the other, '
        'each resumable in its own folder), then write one table and one '
        'plot of validation accuracy per epoch (mean +- std over seeds). '
        'Flags not listed here are passed to every run (see examples/m2.py '
        '--help).')
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
    ...                '-nepochs', '1', '-outfolder', '/tmp/ms'])
    ... # doctest: +SKIP
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
    allowed_seed = ALLOWED['seed'].narrowed(**LIMITS['seed'])
    for seed in seeds:
        if not allowed_seed.accepts(seed):
            parser.error('--seeds: each seed must be %s, got %r'
                         % (allowed_seed.describe(), seed))
    check_args(parser, args)
    # Every run's flags are checked now, not when its turn comes.
    trainer_parser = m2_argument_parser()
    set_by_runner = {'model', 'seed', 'outfolder', 'resume'} & given_flags(
        trainer_parser, passed)
    if set_by_runner:
        parser.error('%s: set by the runner' % ', '.join(
            flag_name(trainer_parser, dest) for dest in sorted(set_by_runner)))
    trainer_args = parse_args(trainer_parser, passed, LIMITS)
    check_outfolder(parser, args.outfolder)
    deadline = None if args.max_minutes is None else \
        time.time() + 60 * args.max_minutes
    if not args.summary_only:
        for model in models:
            for seed in seeds:
                folder = os.path.join(args.outfolder, model, 'seed%d' % seed)
                status = _run_status(folder, trainer_args.nepochs)
                if status == 'done':
                    print('%s seed %d: done already' % (model, seed))
                    continue
                run_argv = list(passed) + ['-model', model, '--seed',
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
