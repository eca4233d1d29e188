"""The command line the trainers share: flag types, the nonlinearity table,
the flags of every run, their checks, and the start-up of a run.

Flag spelling: the flags of the original Parmesan examples and of vae_ssl
keep their exact spelling (``-iw_samples``, ``-outfolder``, ``-bs``, ...)
so old commands keep working; every other flag is double-dash kebab-case,
and a meaning has one spelling in every trainer (vae_ssl's own spellings
stay as aliases in the M2 trainer).

Checks: :data:`ALLOWED` says, once for every trainer, what each numeric
flag accepts; :func:`parse_args` applies it (and the checks of the output
folder and of the checkpoint to resume from) before anything is loaded or
compiled, so a bad value stops the run at once with a message naming the
flag, the value and what is allowed.

Run configuration: every run writes ``OUTFOLDER/config.json`` when it starts
(:func:`write_config`): its settings, trainer, seed, command line, the
versions of Python, numpy, Theano, Lasagne and Parmesan, and Theano's floatX
and device. ``--resume`` compares the new settings with it before anything
loads and refuses any that differ, naming each flag with its old and new
value, except those of :data:`RESUMABLE_SETTINGS` (the output and data
folders, the budget and the evaluation schedule), which a resumed run may
change. A run without config.json (written by an older Parmesan) resumes
with a warning.
"""
import argparse
import difflib
import json
import math
import os
import platform
import socket
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np
import lasagne

from .. import nonlinearities
from .training import (CheckpointError, FolderInUseError, FolderLock, Run,
                       atomic_write, remove_partial_writes, verify_checkpoint)

__all__ = ['NONLINEARITIES', 'str2bool', 'number_list', 'argument_parser',
           'add_run_flags', 'Allowed', 'ALLOWED', 'flag_name', 'given_flags',
           'check_args', 'check_outfolder', 'parse_args', 'start_run',
           'write_results', 'CONFIG_NAME', 'RESUMABLE_SETTINGS',
           'read_config', 'check_resume_settings', 'write_config',
           'versions']

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


class _ExactFlagParser(argparse.ArgumentParser):
    """An ArgumentParser that takes no abbreviated flags: Python 3.11's
    ``allow_abbrev=False`` still lets single-dash flags be abbreviated
    (``-nhid`` for ``-nhidden``), which let a preset silently override
    what the user typed. An unknown flag gets close matches suggested."""

    def _get_option_tuples(self, option_string):
        # Called only for a flag that matched no option exactly: the prefix
        # matches it would return are abbreviations.
        return []

    def parse_args(self, args=None, namespace=None):
        args, unknown = self.parse_known_args(args, namespace)
        if unknown:
            hints = []
            for token in unknown:
                name = token.split('=', 1)[0]
                if not name.startswith('-'):
                    continue
                options = sorted(self._option_string_actions)
                matches = [o for o in options if o.startswith(name)] or \
                    difflib.get_close_matches(name, options, 3)
                if matches:
                    hints.append('%s: did you mean %s?'
                                 % (name, ' or '.join(matches)))
            self.error('unrecognized arguments: %s%s' % (
                ' '.join(unknown),
                ' (flags cannot be abbreviated; %s)' % '; '.join(hints)
                if hints else ''))
        return args


def argument_parser(description, epilog=None):
    """An ArgumentParser that shows every flag's default in ``--help``
    and takes no abbreviated flags (``-nhid`` is an error, not -nhidden)."""
    return _ExactFlagParser(
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
        help='continue from OUTFOLDER/checkpoint.npz, with the settings of '
             'OUTFOLDER/config.json (only the folders, -nepochs, '
             '--max-minutes, --checkpoint-every and the evaluation flags '
             'may change)')
    add('--max-minutes', type=float, default=None,
        help='stop training after this wall time (at an epoch boundary, '
             'with a checkpoint), then evaluate')
    add('--checkpoint-every', type=int, default=checkpoint_every,
        help='epochs between checkpoints')
    add('--train-subset', type=int, default=None,
        help='train on the first N training images only (quick tests)')
    return group


class Allowed(object):
    """The values a numeric flag accepts: finite numbers (or integers) in a
    range.

    Parameters
    ----------
    low, high : number or None
        The bounds (None: unbounded).
    integer : bool
    open_low, open_high : bool
        Exclude the bound itself.
    why : str
        Appended to the description, e.g. '(the training images)'.

    Example
    -------
    >>> Allowed(low=0, open_low=True).describe()
    'a finite number > 0'
    >>> Allowed(1, 60000, integer=True).accepts(0)
    False
    """

    def __init__(self, low=None, high=None, integer=False, open_low=False,
                 open_high=False, why=''):
        self.low, self.high, self.integer = low, high, integer
        self.open_low, self.open_high, self.why = open_low, open_high, why

    def accepts(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not float(value).is_integer():
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or
                                     self.open_low and value == self.low):
            return False
        return self.high is None or not (
            value > self.high or self.open_high and value == self.high)

    def describe(self):
        kind = 'an integer' if self.integer else 'a finite number'
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.low == self.high:
            text = '%s equal to %s' % (kind, low)
        elif self.low is not None and self.high is not None:
            text = '%s in %s%s, %s%s' % (
                kind, '(' if self.open_low else '[', low, high,
                ')' if self.open_high else ']')
        elif self.low is not None:
            text = '%s %s %s' % (kind, '>' if self.open_low else '>=', low)
        elif self.high is not None:
            text = '%s %s %s' % (kind, '<' if self.open_high else '<=', high)
        else:
            text = kind
        return text + (' ' + self.why if self.why else '')

    def narrowed(self, **changes):
        """A copy with some attributes changed (a trainer's own limits)."""
        copy = Allowed(self.low, self.high, self.integer, self.open_low,
                       self.open_high, self.why)
        for name, value in changes.items():
            if not hasattr(copy, name):
                raise TypeError('Allowed has no attribute %r' % name)
            setattr(copy, name, value)
        return copy


def _number(value):
    """Integers in full (a seed bound of 4294967294, not 4.29e+09)."""
    if value is None:
        return None
    return '%d' % value if float(value).is_integer() else '%g' % value


def _counts(low, *dests):
    return {dest: Allowed(low, integer=True) for dest in dests}


def _numbers(*dests, **bounds):
    return {dest: Allowed(**bounds) for dest in dests}


#: What every numeric flag of every trainer accepts, by argparse
#: destination (one meaning, one spelling, one rule). A trainer narrows a
#: rule with ``limits`` (e.g. a subset within its data set); list-valued
#: flags (``-lambdas``, ``--layers``) apply the rule to each entry.
ALLOWED = dict(
    **_counts(1, 'eq_samples', 'iw_samples', 'batch_size', 'nepochs',
              'eval_epoch', 'nhidden', 'nlatent', 'nlayers', 'eval_iw',
              'final_iw', 'checkpoint_every', 'train_subset', 'eval_subset',
              'test_subset',
              'iaf_hidden', 'ds', 'ph', 'qh', 'ql', 'mstride', 'nlpc',
              'maxiters', 'layers', 'workers'),
    **_counts(0, 'nflows', 'pl', 'al', 'zl', 'anneal_lr_epoch',
              'decay_start_epoch'),
    **_numbers('lr', 'adam_epsilon', 'sharpening', 'anneal_sharpening',
               'anneal_cw', 'init_weight', low=0, open_low=True),
    **_numbers('max_norm', 'clip_value', 'logit_clip', 'gn', why='(0: off)',
               low=0),
    **_numbers('noise_std', 'z_noise', 'cw', 'rv', 'max_minutes', 'lambdas',
               low=0),
    anneal_lr_factor=Allowed(0, 1, open_low=True),
    idrop=Allowed(0, 1, open_high=True),
    # numpy seeds are below 2**32, and Lasagne's generator gets seed + 1.
    seed=Allowed(0, 2 ** 32 - 2, integer=True),
)


def flag_name(parser, dest):
    """Every spelling of the flag of `dest`, e.g. '-batch_size/-bs'."""
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            return '/'.join(action.option_strings)
    return dest


def given_flags(parser, argv):
    """The destinations of the flags given in `argv`, whatever their
    spelling (``-bs`` as well as ``-batch_size``, ``-nhidden=16``).

    Example
    -------
    >>> given_flags(parser, ['-nhidden=16', '-lr', '0.1'])  # doctest: +SKIP
    {'nhidden', 'lr'}
    """
    # argparse sets a default only where the namespace lacks the attribute,
    # so every attribute still holding the marker was not given.
    marker = object()
    destinations = {action.dest for action in parser._actions
                    if action.dest != argparse.SUPPRESS}
    namespace = argparse.Namespace(**{dest: marker for dest in destinations})
    parsed = parser.parse_args(argv, namespace)
    return {dest for dest in destinations
            if getattr(parsed, dest, marker) is not marker}


def check_args(parser, args, limits=None):
    """Stop with a usage error naming the flag, the value and what is
    allowed if any numeric flag is outside :data:`ALLOWED` (narrowed by
    `limits`). None values (flags left unset) are skipped.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    args : argparse.Namespace
    limits : dict, optional
        Destination -> dict of :meth:`Allowed.narrowed` changes, or an
        :class:`Allowed`: the trainer's own bounds, e.g.
        ``{'train_subset': dict(high=60000, why='(the training images)')}``.
    """
    limits = limits or {}
    unknown = set(limits) - set(ALLOWED)
    if unknown:
        raise ValueError('no rule to narrow for %s' % sorted(unknown))
    for dest in sorted(ALLOWED):
        value = getattr(args, dest, None)
        if value is None:
            continue
        allowed = limits.get(dest, {})
        if not isinstance(allowed, Allowed):
            allowed = ALLOWED[dest].narrowed(**allowed)
        if isinstance(value, (list, tuple)):
            for item in value:
                if not allowed.accepts(item):
                    parser.error('every entry of %s must be %s, got %r in %s'
                                 % (flag_name(parser, dest),
                                    allowed.describe(), item, value))
        elif not allowed.accepts(value):
            parser.error('%s must be %s, got %r' % (
                flag_name(parser, dest), allowed.describe(), value))


def check_outfolder(parser, folder):
    """Stop with a usage error if `folder` cannot take a run's files: it
    is a file, or it cannot be created or written. Creates it."""
    problem = None
    if os.path.exists(folder) and not os.path.isdir(folder):
        problem = 'exists and is not a folder'
    else:
        try:
            os.makedirs(folder, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            problem = 'is not writable (%s)' % (error.strerror or error)
    if problem:
        parser.error('-outfolder %s %s' % (folder, problem))


#: The file in the output folder that describes the run.
CONFIG_NAME = 'config.json'

#: The settings (argparse destinations) a resumed run may change: where the
#: run and its data are, how long it trains, how often it checkpoints, and
#: how (often) it is evaluated. Every other setting must equal the
#: run's config.json. (A longer -nepochs also stretches the schedules that
#: depend on it, e.g. the ladder's learning-rate decay.)
RESUMABLE_SETTINGS = frozenset([
    'resume', 'outfolder', 'data_dir', 'nepochs', 'max_minutes',
    'checkpoint_every', 'eval_epoch', 'eval_iw', 'eval_subset', 'final_iw',
    'test_subset'])


def _jsonable(settings):
    """`settings` (a dict) as JSON gives them back (tuples as lists)."""
    return json.loads(json.dumps(settings, default=str))


def read_config(folder):
    """The config.json of the run in `folder` (a dict), or None if it has
    none."""
    path = os.path.join(folder, CONFIG_NAME)
    if not os.path.exists(path):
        return None
    with open(path) as stream:
        return json.load(stream)


def check_resume_settings(parser, args):
    """With ``--resume``: stop with a usage error (exit status 2) naming
    every flag whose value differs from the run's config.json, with its old
    and new value, unless it is one of :data:`RESUMABLE_SETTINGS`. A run
    without config.json resumes with a warning."""
    try:
        stored = read_config(args.outfolder)
    except ValueError as error:
        parser.exit(2, '%s: error: --resume: %s cannot be read (%s)\n' % (
            parser.prog, os.path.join(args.outfolder, CONFIG_NAME), error))
    if stored is None:
        sys.stderr.write(
            'warning: --resume: %s has no %s (a run of an older Parmesan), so '
            'its settings cannot be checked against these; resuming with '
            'these.\n' % (args.outfolder, CONFIG_NAME))
        return
    missing = object()
    old, new = stored.get('settings', {}), _jsonable(vars(args))
    differ = ['%s was %s, now %s' % (
        flag_name(parser, dest),
        'unset' if old.get(dest, missing) is missing else
        json.dumps(old[dest]),
        'unset' if new.get(dest, missing) is missing else
        json.dumps(new[dest]))
        for dest in sorted(set(old) | set(new))
        if dest not in RESUMABLE_SETTINGS and
        old.get(dest, missing) != new.get(dest, missing)]
    if differ:
        parser.exit(2, '%s: error: --resume: the settings differ from those '
                    'of the run in %s (%s): %s. Resume with the run\'s '
                    'settings (only %s may change), or start a new run in '
                    'another -outfolder.\n' % (
                        parser.prog, args.outfolder, CONFIG_NAME,
                        '; '.join(differ), ', '.join(
                            flag_name(parser, dest) for dest in
                            sorted(RESUMABLE_SETTINGS)
                            if any(a.dest == dest for a in parser._actions)
                            and dest != 'resume')))


def versions():
    """The versions of what a run depends on, and Theano's floatX and
    device."""
    import theano
    from .. import __version__
    return OrderedDict([
        ('python', platform.python_version()),
        ('numpy', np.__version__), ('theano', theano.__version__),
        ('lasagne', lasagne.__version__), ('parmesan', __version__),
        ('floatX', theano.config.floatX),
        ('device', str(theano.config.device))])


def write_config(args, argv, trainer=None, command=None):
    """Write OUTFOLDER/config.json atomically: the settings, trainer, seed,
    command line and versions of a run starting now; when resuming, keep
    the run's first start and add this one to its ``resumes``, with the
    settings it changed.

    Returns
    -------
    dict, what was written.
    """
    command = command or ' '.join([os.path.basename(sys.argv[0])] +
                                  list(argv))
    settings = _jsonable(vars(args))
    started = time.strftime('%Y-%m-%d %H:%M:%S')
    previous = read_config(args.outfolder) if args.resume else None
    if previous is not None:
        config = previous
        changed = OrderedDict(
            (dest, [config['settings'].get(dest), value])
            for dest, value in sorted(settings.items())
            if config['settings'].get(dest) != value and dest != 'resume')
        config.setdefault('resumes', []).append(OrderedDict([
            ('started', started), ('command', command), ('argv', list(argv)),
            ('changed', changed), ('versions', versions())]))
        config['settings'] = settings
    else:
        config = OrderedDict([
            ('trainer', trainer), ('seed', getattr(args, 'seed', None)),
            ('command', command), ('argv', list(argv)), ('started', started),
            ('settings', settings), ('versions', versions()),
            ('resumes', [])])
    text = json.dumps(config, indent=2)
    atomic_write(os.path.join(args.outfolder, CONFIG_NAME),
                 lambda stream: stream.write(text), 'w')
    return config


def parse_args(parser, argv, limits=None, preset=None, outfolder=None,
               check=None):
    """Parse `argv` and check every setting before anything is loaded or
    compiled: the numeric flags (:func:`check_args`), the output folder
    (writable, or creatable) and, with ``--resume``, the checkpoint.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Built with :func:`argument_parser` and :func:`add_run_flags`.
    argv : list of str
    limits : dict or callable(args) -> dict, optional
        The trainer's narrowed rules, see :func:`check_args`.
    check : callable(parser, args), optional
        The trainer's own constraints between flags; it reports with
        ``parser.error``.
    preset : callable(args, given), optional
        Fills in a preset's values; `given` is the set of destinations the
        command line set (:func:`given_flags`), which a preset must keep.
        Its return value is returned too.
    outfolder : callable(args) -> str, optional
        The output folder when ``-outfolder`` was not given.

    Returns
    -------
    args, or (args, what `preset` returned) when a preset is given.

    Example
    -------
    >>> args = parse_args(vae_argument_parser('IWAE'), ['-lr', '-0.01'])
    ... # doctest: +SKIP
    usage: ...
    error: -lr must be a finite number > 0, got -0.01
    """
    args = parser.parse_args(argv)
    extra = None
    if preset is not None:
        extra = preset(args, given_flags(parser, argv))
    check_args(parser, args, limits(args) if callable(limits) else limits)
    if check is not None:
        check(parser, args)
    if getattr(args, 'outfolder', None) is None and outfolder is not None:
        args.outfolder = outfolder(args)
    if getattr(args, 'data_dir', None) and os.path.exists(args.data_dir) \
            and not os.path.isdir(args.data_dir):
        parser.error('--data-dir %s is not a folder' % args.data_dir)
    if getattr(args, 'outfolder', None) is not None:
        check_outfolder(parser, args.outfolder)
        if getattr(args, 'resume', False):
            try:
                verify_checkpoint(os.path.join(args.outfolder,
                                               'checkpoint.npz'))
            except CheckpointError as error:
                parser.exit(2, '%s: error: --resume: %s\n'
                            % (parser.prog, error))
            check_resume_settings(parser, args)
    return args if preset is None else (args, extra)


def start_run(args, argv, extra_header='', trainer=None):
    """Take the output folder, seed the random generators and describe the
    run: the start-up every trainer shares.

    The folder's :class:`~parmesan.experiments.training.FolderLock` is
    taken first: if another live run holds it, this one stops at once
    (exit status 2) with a message naming that run; a lock a killed run
    left is taken over. Then the temporary files of writes that a kill
    interrupted are removed.

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
    trainer : str, optional
        The trainer's name (:data:`parmesan.experiments.trainers.TRAINERS`),
        recorded in OUTFOLDER/config.json (:func:`write_config`), which is
        written once the folder is taken.

    Returns
    -------
    :class:`parmesan.experiments.training.Run`, holding the folder's lock
    until its ``close()`` (use it in a ``with`` statement).
    """
    command = ' '.join([os.path.basename(sys.argv[0])] + list(argv))
    lock = FolderLock(args.outfolder)
    try:
        stale = lock.acquire({
            'pid': os.getpid(), 'host': socket.gethostname(),
            'started': time.strftime('%Y-%m-%d %H:%M:%S'),
            'command': command})
    except FolderInUseError as error:
        sys.stderr.write('%s: error: %s\n' % (os.path.basename(sys.argv[0]),
                                              error))
        raise SystemExit(2)
    notes = []
    if stale is not None:
        notes.append('took over the lock of a run that ended without '
                     'releasing it (killed?): %s' % FolderLock.describe(stale))
    removed = remove_partial_writes(args.outfolder)
    if removed:
        notes.append('removed %d temporary file(s) of interrupted writes '
                     '(%s; %d bytes)' % (
                         len(removed), ', '.join(name for name, _ in removed),
                         sum(size for _, size in removed)))
    write_config(args, argv, trainer, command)
    rng = np.random.RandomState(args.seed)
    lasagne.random.set_rng(np.random.RandomState(args.seed + 1))
    header = 'command: %s\nsettings: %s' % (
        command, json.dumps(vars(args), sort_keys=True))
    if extra_header:
        header += '\n' + extra_header
    deadline = None if args.max_minutes is None else \
        time.time() + 60 * args.max_minutes
    return Run(args.outfolder, rng, header, resume=args.resume,
               checkpoint_every=args.checkpoint_every, deadline=deadline,
               lock=lock, notes=notes, seed=args.seed)


def write_results(outfolder, results):
    """Write the results dict to OUTFOLDER/results.json, atomically."""
    text = json.dumps(results, indent=2)
    atomic_write(os.path.join(outfolder, 'results.json'),
                 lambda stream: stream.write(text), 'w')
