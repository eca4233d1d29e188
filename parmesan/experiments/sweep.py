"""Sweeps: one trainer over a grid of settings x seeds, each run in its own
folder, resumable, then one summary over seeds.

    python -m parmesan.experiments sweep m2 --models ExactM2,MLP \\
        --seeds 1-10 -outfolder results/m2_10seeds
    python -m parmesan.experiments sweep iw_vae --set iw_samples=1,5,50 \\
        --seeds 1-3 --workers 2 -outfolder results/burda -- --preset burda

Run ``(setting, seed)`` lives in ``OUTFOLDER/<setting>/seed<N>``, where
``<setting>`` names the swept values (``iw_samples=5``, or ``default``).
Starting a sweep again finishes what is missing: a run whose results cover
its epochs is skipped, one with a checkpoint resumes from it, the others
start fresh. The summary (``summary.md``, ``summary.csv`` and
``curves.png`` in OUTFOLDER) gives each setting's mean, standard deviation
and standard error over seeds of the numbers its trainer reports, beside
the paper's where it has one.

Runs execute on Dask (``dask.distributed``): ``--workers N`` starts a
local cluster of N processes with the machine's cores divided between
them; ``--scheduler ADDRESS`` uses a running cluster instead (e.g. one
started with dask-jobqueue on Slurm). A worker that dies loses only the
epochs since its run's last checkpoint: Dask reschedules the run, which
resumes. With ``--workers 1`` (the default, see the README for why) the
runs go one after the other in this process, and Dask is not needed.
"""
import argparse
import contextlib
import csv
import itertools
import json
import math
import os
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np

from .cli import argument_parser, check_args
from .trainers import TRAINERS, get_trainer

__all__ = ['parse_seeds', 'sweep_argument_parser', 'plan_sweep',
           'run_status', 'run_one', 'execute', 'summarise', 'main']

#: Flags the sweep sets for every run itself.
RUNNER_FLAGS = ('outfolder', 'seed', 'resume', 'max_minutes')


def parse_seeds(text):
    """Seeds from ``1-10``, ``1,3,5`` or ``1-3,7``.

    Example
    -------
    >>> parse_seeds('1-3,7')
    [1, 2, 3, 7]
    """
    seeds = []
    try:
        for part in str(text).split(','):
            first, _, last = part.strip().partition('-')
            seeds.extend(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            'expected seeds such as 1-10 or 1,3,5, got %r' % text)
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            'expected distinct seeds such as 1-10 or 1,3,5, got %r' % text)
    return seeds


def _setting(text):
    name, equals, values = str(text).partition('=')
    values = [value for value in values.split(',') if value]
    if not equals or not name or not values:
        raise argparse.ArgumentTypeError(
            'expected NAME=VALUE[,VALUE...], e.g. iw_samples=1,5,50, got %r'
            % text)
    return name.lstrip('-'), values


def sweep_argument_parser():
    """The sweep's own flags; the others go to every run.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argument_parser(
        'Run one trainer over a grid of settings x seeds (each run in '
        'OUTFOLDER/<setting>/seed<N>, resumable), then summarise over '
        'seeds. Flags not listed here go to every run (see the '
        "trainer's --help).")
    add = parser.add_argument
    add('trainer', choices=tuple(TRAINERS), help='the trainer to sweep')
    add('--seeds', type=parse_seeds, default=parse_seeds('1'),
        help='seeds, e.g. 1-10 or 1,3,5')
    add('--set', dest='settings', type=_setting, action='append',
        default=[], metavar='NAME=V1,V2',
        help='sweep a flag of the trainer over these values (by its name, '
             'e.g. iw_samples=1,5,50); repeat for a grid')
    add('--models', default=None,
        help='shorthand of --set model=... (the M2 trainer\'s -model)')
    add('-outfolder', default=None,
        help='the sweep folder (default: results/sweep_<trainer>)')
    add('--workers', type=int, default=1,
        help='runs in parallel on a local Dask cluster, the cores divided '
             'between them (1: one after the other, in this process)')
    add('--scheduler', default=None,
        help='address of a running Dask scheduler to run on instead '
             '(e.g. tcp://10.0.0.1:8786)')
    add('--max-minutes', type=float, default=None,
        help='wall-time budget of the whole sweep; every run stops at it '
             'with a checkpoint, and a later sweep resumes them')
    add('--summary-only', action='store_true',
        help='only summarise the runs on disk')
    return parser


class SweepPlan(object):
    """A checked sweep: the runs' folders and command lines.

    Attributes
    ----------
    trainer : :class:`parmesan.experiments.trainers.Trainer`
    outfolder : str
    settings : list of OrderedDicts, flag name -> value (as typed), one per
        point of the grid
    seeds : list of int
    flags : list of str, the flags every run gets
    """

    def __init__(self, trainer, outfolder, settings, seeds, flags, options):
        self.trainer, self.outfolder, self.settings = \
            trainer, outfolder, settings
        self.seeds, self.flags, self.options = seeds, flags, options

    @staticmethod
    def label(setting):
        """The folder name of a setting: ``iw_samples=5``, or 'default'."""
        return ','.join('%s=%s' % item for item in setting.items()) or \
            'default'

    def folder(self, setting, seed):
        return os.path.join(self.outfolder, self.label(setting),
                            'seed%d' % seed)

    def argv(self, setting, seed):
        """The run's flags, without -outfolder, --resume and the budget."""
        swept = []
        for name, value in setting.items():
            swept += [self.options[name], value]
        return self.flags + swept + ['--seed', str(seed)]

    def runs(self):
        """(setting, seed) of every run, setting by setting."""
        return list(itertools.product(self.settings, self.seeds))


def _option_strings(parser):
    """Flag spelling by every name a user may give: the destination and
    each spelling without its dashes (``iw_samples``, ``eval-iw``)."""
    names = {}
    for action in parser._actions:
        if not action.option_strings:
            continue
        names[action.dest] = action.option_strings[0]
        for option in action.option_strings:
            names[option.lstrip('-')] = action.option_strings[0]
    return names


def plan_sweep(args, flags, error):
    """Check the sweep's flags and every run's command line before anything
    runs; `error(message)` reports a problem and does not return.

    Returns
    -------
    :class:`SweepPlan`
    """
    trainer = get_trainer(args.trainer)
    parser = trainer.argument_parser()
    spellings = _option_strings(parser)
    swept = list(args.settings)
    if args.models:
        swept.append(('model', args.models.split(',')))
    grid = OrderedDict()
    for name, values in swept:
        if name not in spellings:
            error('--set %s: %s has no such flag' % (name, trainer.name))
        dest = next(action.dest for action in parser._actions
                    if action.option_strings and
                    action.option_strings[0] == spellings[name])
        if dest in RUNNER_FLAGS:
            error('--set %s: the sweep sets %s itself' % (name,
                                                          spellings[name]))
        if dest in grid:
            error('--set %s: swept twice' % name)
        grid[dest] = values
    options = {dest: spellings[dest] for dest in grid}
    for token in flags:
        if token.startswith('-') and \
                _dest_of(parser, token.split('=')[0]) in \
                RUNNER_FLAGS + tuple(grid):
            error('%s is set by the sweep; leave it out of the run flags'
                  % token)
    settings = [OrderedDict(zip(grid, values))
                for values in itertools.product(*grid.values())]
    outfolder = args.outfolder or os.path.join('results',
                                               'sweep_' + trainer.name)
    plan = SweepPlan(trainer, outfolder, settings, args.seeds, list(flags),
                     options)
    # Each run's flags are checked by its trainer now; a throwaway folder
    # keeps the check from making run folders for a sweep that is refused.
    with tempfile.TemporaryDirectory() as scratch:
        for setting, seed in plan.runs():
            _check_run(trainer, plan, setting, seed, scratch, error)
    return plan


def _check_run(trainer, plan, setting, seed, scratch, error):
    argv = plan.argv(setting, seed)
    try:
        trainer.parse_args(argv + ['-outfolder', scratch])
    except SystemExit:
        error('the run %s seed %d would not start: its flags %s are '
              'refused by %s (message above)'
              % (plan.label(setting), seed, ' '.join(argv), trainer.name))


def _dest_of(parser, option):
    for action in parser._actions:
        if option in action.option_strings:
            return action.dest
    return None


def run_status(folder):
    """'done' (results cover the run's epochs), 'resume' (a checkpoint) or
    'fresh'."""
    results = _read_json(os.path.join(folder, 'results.json'))
    if results is not None and results.get('epochs', 0) >= \
            results.get('settings', {}).get('nepochs', math.inf):
        return 'done'
    if os.path.exists(os.path.join(folder, 'checkpoint.npz')):
        return 'resume'
    return 'fresh'


def _read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as stream:
        return json.load(stream)


def run_one(trainer_name, argv, folder, deadline=None):
    """Run (or resume, or skip) one run of a sweep; on a Dask worker, or in
    this process.

    Parameters
    ----------
    trainer_name : str
    argv : list of str
        The run's flags, without -outfolder, --resume and the budget.
    folder : str
    deadline : float, optional
        time.time() at which the run stops (with a checkpoint).

    Returns
    -------
    dict with the folder, what was done ('done already', 'resumed',
    'started', 'no time left') and the epochs the run has reached.
    """
    status = run_status(folder)
    if status == 'done':
        action = 'done already'
    elif deadline is not None and deadline - time.time() <= 0:
        action = 'no time left'
    else:
        argv = list(argv) + ['-outfolder', folder]
        if status == 'resume':
            argv.append('--resume')
        if deadline is not None:
            argv += ['--max-minutes',
                     '%.3f' % ((deadline - time.time()) / 60.0)]
        TRAINERS[trainer_name].run(argv)
        action = 'resumed' if status == 'resume' else 'started'
    results = _read_json(os.path.join(folder, 'results.json')) or {}
    return {'folder': folder, 'action': action,
            'epochs': results.get('epochs', 0),
            'complete': run_status(folder) == 'done'}


@contextlib.contextmanager
def local_cluster(workers):
    """A Dask cluster of `workers` processes on this machine, each with
    its share of the cores for BLAS; closed on leaving the context.

    Dask's nannies put their workers' settings (``OMP_NUM_THREADS=1``,
    ``PYTHONHASHSEED``, ...) into this process's environment and leave them
    there; every later child process would inherit them, so the environment
    is restored when the cluster is closed.
    """
    from distributed import LocalCluster
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    workers_environment = {name: threads for name in (
        'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')}
    environment = dict(os.environ)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                           processes=True, dashboard_address=None,
                           env=workers_environment)
    try:
        yield cluster
    finally:
        cluster.close()
        os.environ.clear()
        os.environ.update(environment)


def execute(plan, workers=1, scheduler=None, deadline=None, report=print):
    """Run every run of `plan` that is not done; `report` gets one line per
    finished run.

    Returns
    -------
    list of dicts, :func:`run_one`'s, plus 'error' for runs that failed.
    """
    jobs = [(plan.folder(setting, seed), plan.argv(setting, seed))
            for setting, seed in plan.runs()]
    outcomes = []

    def finished(outcome):
        outcomes.append(outcome)
        report('[%d/%d] %s: %s (epoch %s)%s' % (
            len(outcomes), len(jobs), outcome['folder'], outcome['action'],
            outcome.get('epochs'),
            '' if 'error' not in outcome else ' FAILED: %s' %
            outcome['error']))

    if workers == 1 and scheduler is None:
        for folder, argv in jobs:
            report('=== %s' % folder)
            finished(_guarded(run_one, plan.trainer.name, argv, folder,
                              deadline))
        return outcomes
    if scheduler is None:
        with local_cluster(workers) as cluster:
            return execute(plan, scheduler=cluster.scheduler_address,
                           deadline=deadline, report=report)
    from distributed import Client, as_completed
    with Client(scheduler) as client:
        futures = {client.submit(run_one, plan.trainer.name, argv, folder,
                                 deadline, key='run-%s' % folder,
                                 pure=False): folder
                   for folder, argv in jobs}
        for future in as_completed(futures):
            try:
                finished(future.result())
            except Exception as error:  # noqa: B902 (reported, not hidden)
                finished({'folder': futures[future], 'action': 'failed',
                          'error': '%s: %s' % (type(error).__name__, error)})
    return outcomes


def _guarded(function, *args):
    try:
        return function(*args)
    except Exception as error:  # noqa: B902 (reported, not hidden)
        return {'folder': args[2], 'action': 'failed',
                'error': '%s: %s' % (type(error).__name__, error)}


def _history(folder):
    """The run's logged epochs, each once (the last row of an epoch)."""
    path = os.path.join(folder, 'log.jsonl')
    rows = OrderedDict()
    if os.path.exists(path):
        with open(path) as stream:
            for line in stream:
                if line.strip():
                    row = json.loads(line)
                    rows[row['epoch']] = row
    return [rows[epoch] for epoch in sorted(rows)]


def _statistics(values):
    values = np.asarray(values, dtype=float)
    std = float(values.std(ddof=1)) if len(values) > 1 else float('nan')
    return OrderedDict([('n', len(values)), ('mean', float(values.mean())),
                        ('std', std),
                        ('stderr', std / math.sqrt(len(values)))])


def summarise(plan):
    """Write OUTFOLDER/summary.csv, summary.md and curves.png from the runs
    on disk.

    Returns
    -------
    list of OrderedDicts, one per (setting, metric): setting, metric, n
    (seeds with results), mean, std and stderr over seeds, the epochs the
    runs reached, and the paper's number where there is one.
    """
    trainer = plan.trainer
    rows, curves = [], OrderedDict()
    for setting in plan.settings:
        finished, unfinished = [], []
        for seed in plan.seeds:
            folder = plan.folder(setting, seed)
            results = _read_json(os.path.join(folder, 'results.json'))
            if results is not None:
                finished.append(results)
            elif _history(folder):
                unfinished.append(_latest_evaluation(plan, setting, seed))
        reference = trainer.reference(_run_settings(plan, setting,
                                                    plan.seeds[0]))
        for metric in trainer.metrics:
            rows += _metric_rows(plan, setting, metric, finished, reference,
                                 'finished')
        # Runs still going: their latest periodic evaluation, flagged.
        for metric in sorted({key for values in unfinished
                              for key in values if key != 'epochs'}):
            rows += _metric_rows(plan, setting, metric, unfinished,
                                 reference, 'in progress')
        curves[plan.label(setting)] = _curves(plan, setting)
    os.makedirs(plan.outfolder, exist_ok=True)
    fields = ['setting', 'metric', 'status', 'n', 'mean', 'std', 'stderr',
              'epochs_min', 'epochs_max', 'reference', 'reference_label']
    with open(os.path.join(plan.outfolder, 'summary.csv'), 'w',
              newline='') as stream:
        writer = csv.DictWriter(stream, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(plan, rows)
    with open(os.path.join(plan.outfolder, 'summary.md'), 'w') as stream:
        stream.write(table)
    from .plotting import plot_seed_curves
    key = trainer.curve_key(_run_settings(plan, plan.settings[0],
                                          plan.seeds[0]))
    plot_seed_curves(curves, os.path.join(plan.outfolder, 'curves.png'),
                     ylabel=key, title='%s: %s per epoch, %s' % (
                         trainer.name, key,
                         'seed %s' % plan.seeds[0] if len(plan.seeds) == 1
                         else 'mean over seeds %s' % _seed_text(plan.seeds)))
    return rows


def _metric_rows(plan, setting, metric, results, reference, status):
    """One summary row for `metric` over the runs' `results` (dicts with
    the metric and 'epochs'), or none when no run has it."""
    results = [r for r in results if isinstance(r.get(metric),
                                                 (int, float))]
    if not results:
        return []
    epochs = [r.get('epochs', 0) for r in results]
    row = OrderedDict([('setting', plan.label(setting)), ('metric', metric),
                       ('status', status)])
    row.update(_statistics([r[metric] for r in results]))
    row['epochs_min'], row['epochs_max'] = min(epochs), max(epochs)
    # The paper's number sits beside the headline metric, and beside the
    # latest evaluation of runs still in progress.
    row['reference'] = reference[1] if reference and (
        status != 'finished' or metric == plan.trainer.metrics[0]) else None
    row['reference_label'] = reference[0] if row['reference'] is not None \
        else None
    return [row]


def _latest_evaluation(plan, setting, seed):
    """An unfinished run's last logged value of its trainer's curve (a
    periodic evaluation, e.g. test_L100), with the epoch it was taken at as
    'epochs'."""
    key = plan.trainer.curve_key(_run_settings(plan, setting, seed))
    evaluated = [row for row in _history(plan.folder(setting, seed))
                 if key in row]
    if not evaluated:
        return {}
    return {key: evaluated[-1][key], 'epochs': evaluated[-1]['epoch']}


def _run_settings(plan, setting, seed):
    """A run's settings: from its results, else from its command line."""
    results = _read_json(os.path.join(plan.folder(setting, seed),
                                      'results.json'))
    if results:
        return results['settings']
    parser = plan.trainer.argument_parser()
    return vars(parser.parse_args(plan.argv(setting, seed)))


def _curves(plan, setting):
    """{seed: (epochs, values)} of the trainer's curve for one setting."""
    curves = OrderedDict()
    for seed in plan.seeds:
        folder = plan.folder(setting, seed)
        key = plan.trainer.curve_key(_run_settings(plan, setting, seed))
        points = [(row['epoch'], row[key]) for row in _history(folder)
                  if key in row]
        if points:
            curves[seed] = tuple(zip(*points))
    return curves


def _seed_text(seeds):
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return '%d-%d' % (seeds[0], seeds[-1])
    return ','.join(str(seed) for seed in seeds)


def markdown_table(plan, rows):
    """The summary as a markdown table: per setting and metric, mean +-
    standard error over the seeds with results (std beside it)."""
    lines = ['%s sweep, seeds %s: mean +- standard error over the seeds '
             '(n), sample std beside it; for runs still in progress, their '
             'latest periodic evaluation and the epoch it was taken at.'
             % (plan.trainer.name, _seed_text(plan.seeds)), '',
             '| setting | metric | runs | mean +- s.e. | std | n | epochs | '
             'paper |', '|---|---|---|---|---|---|---|---|']
    for row in rows:
        epochs = str(row['epochs_min']) if row['epochs_min'] == \
            row['epochs_max'] else '%d-%d' % (row['epochs_min'],
                                               row['epochs_max'])
        spread = '-' if math.isnan(row['std']) else '%.4g' % row['std']
        error = '' if math.isnan(row['stderr']) else \
            ' +- %.4g' % row['stderr']
        paper = '-' if row['reference'] is None else '%s (%s)' % (
            row['reference'], row['reference_label'])
        lines.append('| %s | %s | %s | %.4f%s | %s | %d | %s | %s |' % (
            row['setting'], row['metric'], row['status'], row['mean'],
            error, spread, row['n'], epochs, paper))
    return '\n'.join(lines) + '\n'


def main(argv=None):
    """Plan, run and summarise a sweep; `argv` defaults to the command line.

    Returns
    -------
    list of dicts, the summary rows (see :func:`summarise`). Exits with
    status 1 when a run failed.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = sweep_argument_parser()
    args, flags = parser.parse_known_args(argv)
    if flags and flags[0] == '--':
        flags = flags[1:]
    check_args(parser, args, {'max_minutes': dict(open_low=True)})
    plan = plan_sweep(args, flags, parser.error)
    failed = []
    if not args.summary_only:
        deadline = None if args.max_minutes is None else \
            time.time() + 60 * args.max_minutes
        print('%d runs of %s in %s (%s)' % (
            len(plan.runs()), plan.trainer.name, plan.outfolder,
            'one after the other' if args.workers == 1 and
            not args.scheduler else 'on Dask'), flush=True)
        outcomes = execute(plan, args.workers, args.scheduler, deadline,
                           report=lambda line: print(line, flush=True))
        failed = [o for o in outcomes if o['action'] == 'failed']
    rows = summarise(plan)
    print(markdown_table(plan, rows), flush=True)
    if failed:
        sys.exit('%d of %d runs failed: %s' % (
            len(failed), len(plan.runs()),
            '; '.join('%s (%s)' % (o['folder'], o['error'])
                      for o in failed)))
    return rows


if __name__ == '__main__':
    main()
