"""The command line the trainers share: flag types, the nonlinearity table,
the flags of every run, their checks, and the start-up of a run.

Flag spelling: the flags of the original Parmesan examples and of vae_ssl
keep their exact spelling (``-iw_samples``, ``-outfolder``, ``-bs``, ...)
so old commands keep working; every other flag is double-dash kebab-case,
and a meaning has one spelling in every trainer (vae_ssl's own spellings
stay as aliases in the M2 trainer).
"""
import argparse
import json
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import lasagne

from .. import nonlinearities
from .training import Run

__all__ = ['NONLINEARITIES', 'str2bool', 'number_list', 'argument_parser',
           'add_run_flags', 'check_at_least', 'start_run', 'write_results']

#: Every ``-nonlin*`` / ``--nonlinearity`` choice, by name.
NONLINEARITIES = OrderedDict([
    ('rectify', lasagne.nonlinearities.rectify),
    ('leaky_rectify', lasagne.nonlinearities.leaky_rectify),
    ('very_leaky_rectify', lasagne.nonlinearities.very_leaky_rectify),
    ('tanh', lasagne.nonlinearities.tanh),
    ('softplus', nonlinearities.softplus),
])


def str2bool(text):
    """Parse 'true'/'false' (and 1/0, yes/no) strictly; 'False' is false.

    Example
    -------
    >>> str2bool('False'), str2bool('1')
    (False, True)
    """
    value = str(text).strip().lower()
    if value in ('true', '1', 'yes', 'y'):
        return True
    if value in ('false', '0', 'no', 'n'):
        return False
    raise argparse.ArgumentTypeError('expected true or false, got %r' % text)


def number_list(cast):
    """An argparse type for comma-separated numbers, e.g. ``1000,10,0.1``.

    Example
    -------
    >>> number_list(float)('1000,10,0.1')
    [1000.0, 10.0, 0.1]
    """
    def parse(text):
        try:
            return [cast(item) for item in str(text).split(',')]
        except ValueError:
            raise argparse.ArgumentTypeError(
                'expected comma-separated numbers, got %r' % text)
    return parse


def argument_parser(description, epilog=None):
    """An ArgumentParser that shows every flag's default in ``--help``
    and takes no abbreviated flags (``-nhid`` is an error, not -nhidden)."""
    return argparse.ArgumentParser(
        description=description, epilog=epilog, allow_abbrev=False,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_run_flags(parser, outfolder, seed=1234, checkpoint_every=10,
                  seed_aliases=(), seed_help='seeds the batch order, the binarisation, the '
                            'initial weights and the noise streams'):
    """The flags every trainer has: where results go, the seed, the data
    folder, resuming, the time budget, checkpoints and a training subset.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    outfolder : str or None
        Default of ``-outfolder`` (None: the trainer picks one).
    seed, checkpoint_every : int
        Defaults of ``--seed`` and ``--checkpoint-every``.
    seed_aliases : tuple of str
        Older spellings of ``--seed`` that stay accepted (vae_ssl's
        ``-seed``).
    seed_help : str

    Returns
    -------
    The parser's argument group of these flags.
    """
    group = parser.add_argument_group('run')
    add = group.add_argument
    add('-outfolder', default=outfolder,
        help='where log.txt, log.jsonl, checkpoint.npz, results.json and the '
             'plots go')
    add('--seed', *seed_aliases, type=int, default=seed, help=seed_help)
    add('--data-dir', default=None,
        help='folder with the data files (default: $PARMESAN_DATA, else '
             '~/.parmesan/data)')
    add('--resume', action='store_true',
        help='continue from OUTFOLDER/checkpoint.npz')
    add('--max-minutes', type=float, default=None,
        help='stop training after this wall time (at an epoch boundary, '
             'with a checkpoint), then evaluate')
    add('--checkpoint-every', type=int, default=checkpoint_every,
        help='epochs between checkpoints')
    add('--train-subset', type=int, default=None,
        help='train on the first N training images only (quick tests)')
    return group


def _flag_name(parser, dest):
    for action in parser._actions:
        if action.dest == dest:
            return action.option_strings[0]
    return dest


def check_at_least(parser, args, minimum, names):
    """Stop with a usage error naming the flag if any of `names` (argparse
    destinations) is below `minimum` (None values are skipped)."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < minimum:
            parser.error('%s must be at least %s, got %r'
                         % (_flag_name(parser, name), minimum, value))


def start_run(args, argv, extra_header=''):
    """Seed the random generators, make the output folder and describe the
    run: the start-up every trainer shares.

    numpy's RandomState(seed) drives the data pipeline (batches,
    binarisation) and Lasagne's generator, RandomState(seed + 1), the
    initial weights and the seeds of the noise streams.

    Parameters
    ----------
    args : argparse.Namespace
        With outfolder, seed, resume, checkpoint_every and max_minutes.
    argv : list of str
        The command line, for the log header.
    extra_header : str
        More lines for the header of ``log.txt``.

    Returns
    -------
    :class:`parmesan.experiments.training.Run`
    """
    rng = np.random.RandomState(args.seed)
    lasagne.random.set_rng(np.random.RandomState(args.seed + 1))
    os.makedirs(args.outfolder, exist_ok=True)
    header = 'command: %s\nsettings: %s' % (
        ' '.join([os.path.basename(sys.argv[0])] + list(argv)),
        json.dumps(vars(args), sort_keys=True))
    if extra_header:
        header += '\n' + extra_header
    deadline = None if args.max_minutes is None else \
        time.time() + 60 * args.max_minutes
    return Run(args.outfolder, rng, header, resume=args.resume,
               checkpoint_every=args.checkpoint_every, deadline=deadline)


def write_results(outfolder, results):
    """Write the results dict to OUTFOLDER/results.json."""
    with open(os.path.join(outfolder, 'results.json'), 'w') as stream:
        json.dump(results, stream, indent=2)
