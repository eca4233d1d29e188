"""The training loop every trainer shares: mini-batches, logs, atomic
checkpoints with exact resume, a NaN guard and a progress display.

A trainer compiles its Theano functions, then hands :func:`fit` a function
that runs one epoch and, optionally, one that evaluates. :func:`fit` owns
everything around them. Checkpoints hold every shared variable the compiled
functions use (parameters, optimiser moments, the noise streams of the
sample layers, batch-norm statistics, the learning rate) and the numpy
random state, so ``--resume`` continues to the identical state.
"""
import json
import math
import os
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np

__all__ = ['iterate_minibatches', 'semi_supervised_batches', 'shared_state',
           'save_checkpoint', 'load_checkpoint', 'NonFiniteError',
           'check_finite', 'TrainingLog', 'progress', 'Run', 'fit']


def iterate_minibatches(num_examples, batch_size, rng=None, drop_last=False):
    """Yield index arrays that cover ``range(num_examples)`` in batches.

    Parameters
    ----------
    num_examples, batch_size : int
    rng : numpy RandomState, optional
        Shuffles the order when given.
    drop_last : bool
        Leave out a final, smaller batch.

    Example
    -------
    >>> for rows in iterate_minibatches(len(x), 100, rng):
    ...     train(x[rows])
    """
    if batch_size < 1:
        raise ValueError('batch_size must be at least 1, got %r' % batch_size)
    order = rng.permutation(num_examples) if rng is not None \
        else np.arange(num_examples)
    stop = num_examples - (num_examples % batch_size if drop_last else 0)
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def semi_supervised_batches(num_unlabelled, labelled_indices, batch_size,
                            rng, labelled_draw='cycle', drop_last=None):
    """One epoch of mixed batches: a pass over the unlabelled rows, each
    batch paired with labelled rows.

    Every row of the training set counts as unlabelled (the labelled ones
    too, as in the ladder and M2 papers). The whole pipeline state is
    `rng`'s (checkpointed for resume).

    Parameters
    ----------
    num_unlabelled : int
        Size of the training set.
    labelled_indices : array of int
        Rows whose labels may be used.
    batch_size : int
        Unlabelled rows per batch.
    rng : numpy RandomState
    labelled_draw : 'cycle' or 'with_replacement'
        'cycle' (the ladder's): min(batch_size, number of labels) labelled
        rows per batch, from successive random permutations of
        `labelled_indices`, restarted every epoch. 'with_replacement'
        (vae_ssl's M2): `batch_size` rows drawn uniformly with replacement.
    drop_last : bool, optional
        Leave out a final, smaller unlabelled batch. Default: for 'cycle',
        unless it is the only batch; for 'with_replacement', never.

    Returns
    -------
    generator of (unlabelled_rows, labelled_rows) index arrays into the
    training set.

    Example
    -------
    >>> rng = np.random.RandomState(0)
    >>> pairs = list(semi_supervised_batches(10, [0, 5], 4, rng))
    >>> [(len(u), sorted(l.tolist())) for u, l in pairs]
    [(4, [0, 5]), (4, [0, 5])]
    """
    labelled_indices = np.asarray(labelled_indices)
    if len(labelled_indices) == 0:
        raise ValueError('no labelled rows')
    if labelled_draw not in ('cycle', 'with_replacement'):
        raise ValueError("labelled_draw must be 'cycle' or "
                         "'with_replacement', got %r" % (labelled_draw,))
    cycle = labelled_draw == 'cycle'
    if drop_last is None:
        drop_last = cycle and num_unlabelled >= batch_size
    labelled_per_batch = min(batch_size, len(labelled_indices)) if cycle \
        else batch_size
    pending = np.empty(0, dtype=labelled_indices.dtype)
    for unlabelled in iterate_minibatches(num_unlabelled, batch_size, rng,
                                          drop_last=drop_last):
        if not cycle:
            yield unlabelled, labelled_indices[
                rng.randint(0, len(labelled_indices), batch_size)]
            continue
        while len(pending) < labelled_per_batch:
            pending = np.concatenate([pending,
                                      rng.permutation(labelled_indices)])
        labelled, pending = pending[:labelled_per_batch], \
            pending[labelled_per_batch:]
        yield unlabelled, labelled


def shared_state(functions):
    """Every shared variable the compiled `functions` use, in a fixed order.

    This is the whole trainable and non-trainable state of a model and its
    optimiser, including the noise streams of the sample layers.
    """
    seen = OrderedDict()
    for function in functions:
        for variable in function.get_shared():
            seen.setdefault(id(variable), variable)
    return list(seen.values())


def _atomic_write(path, write):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def save_checkpoint(path, variables, rng, epoch, history):
    """Write a checkpoint atomically (a crash never leaves a partial file).

    Parameters
    ----------
    path : str
    variables : list of shared variables, from :func:`shared_state`
    rng : numpy RandomState of the data pipeline
    epoch : int, the last finished epoch
    history : list of dicts, the log rows so far
    """
    arrays = {'var_%04d' % i: v.get_value(borrow=False)
              for i, v in enumerate(variables)}
    meta = {'epoch': epoch, 'history': history,
            'names': [str(v.name) for v in variables],
            'rng': _rng_to_json(rng.get_state())}
    arrays['meta'] = np.array(json.dumps(meta))
    _atomic_write(path, lambda stream: np.savez(stream, **arrays))


def load_checkpoint(path, variables, rng):
    """Restore what :func:`save_checkpoint` wrote; return (epoch, history).

    Raises ValueError naming the checkpoint if it was written by a model of
    a different configuration.
    """
    with np.load(path) as stored:
        meta = json.loads(str(stored['meta']))
        if len(meta['names']) != len(variables):
            raise ValueError(
                'checkpoint %s holds %d variables but this model has %d: it '
                'was written with other settings' % (path, len(meta['names']),
                                                    len(variables)))
        values = [stored['var_%04d' % i] for i in range(len(variables))]
    for variable, value, name in zip(variables, values, meta['names']):
        current = variable.get_value(borrow=True)
        if np.shape(current) != value.shape:
            raise ValueError(
                'checkpoint %s: variable %s has shape %s, the model expects '
                '%s; it was written with other settings'
                % (path, name, value.shape, np.shape(current)))
        variable.set_value(value.astype(current.dtype))
    rng.set_state(_rng_from_json(meta['rng']))
    return meta['epoch'], meta['history']


def _rng_to_json(state):
    name, keys, position, has_gauss, cached = state
    return [name, keys.tolist(), int(position), int(has_gauss), float(cached)]


def _rng_from_json(state):
    name, keys, position, has_gauss, cached = state
    return (name, np.array(keys, dtype=np.uint32), position, has_gauss,
            cached)


class NonFiniteError(FloatingPointError):
    """A loss or bound became NaN or infinite."""


def check_finite(value, what):
    """Raise :class:`NonFiniteError` naming `what` if `value` is not finite."""
    if not np.all(np.isfinite(value)):
        raise NonFiniteError('%s is %s' % (what, value))
    return value


class TrainingLog(object):
    """One line per epoch on stdout and in ``log.txt``, and the same row as
    JSON in ``log.jsonl`` for programs.

    Parameters
    ----------
    folder : str
    header : str, optional
        Written at the top of ``log.txt`` (for instance the command line).
    append : bool
        Continue existing files (when resuming).
    """

    def __init__(self, folder, header=None, append=False):
        os.makedirs(folder, exist_ok=True)
        mode = 'a' if append else 'w'
        self.text = open(os.path.join(folder, 'log.txt'), mode)
        self.rows = open(os.path.join(folder, 'log.jsonl'), mode)
        if header and not append:
            self.text.write(header.rstrip('\n') + '\n')
            self.text.flush()

    def write(self, row):
        parts = []
        for key, value in row.items():
            if isinstance(value, float):
                parts.append('%s %.4g' % (key, value) if abs(value) < 1e-2
                             and value != 0 else '%s %.2f' % (key, value))
            else:
                parts.append('%s %s' % (key, value))
        line = '  '.join(parts)
        print(line, flush=True)
        self.text.write(line + '\n')
        self.text.flush()
        self.rows.write(json.dumps(row) + '\n')
        self.rows.flush()

    def message(self, line):
        print(line, flush=True)
        self.text.write(line + '\n')
        self.text.flush()

    def close(self):
        self.text.close()
        self.rows.close()


def progress(iterable, total, description='', stream=None, min_seconds=2.0):
    """Yield from `iterable`, showing a progress bar on a terminal.

    On a terminal the bar redraws in place; elsewhere (logs, CI) it prints
    nothing, so logs keep one line per epoch.
    """
    stream = stream or sys.stderr
    interactive = hasattr(stream, 'isatty') and stream.isatty()
    start = last = time.time()
    for count, item in enumerate(iterable, 1):
        yield item
        now = time.time()
        if interactive and (now - last > 0.2 or count == total) and \
                now - start > min_seconds:
            last = now
            filled = int(30 * count / max(total, 1))
            rate = count / (now - start)
            remaining = (total - count) / rate if rate > 0 else float('nan')
            stream.write('\r%s [%s%s] %d/%d  %.0f s left ' % (
                description, '#' * filled, '.' * (30 - filled), count, total,
                remaining))
            stream.flush()
    if interactive and time.time() - start > min_seconds:
        stream.write('\r' + ' ' * 70 + '\r')
        stream.flush()


class Run(object):
    """What :func:`fit` needs of a run besides the model: its folder, the
    data pipeline's random state, and how to log, checkpoint and stop.

    Parameters
    ----------
    outfolder : str
        Where ``log.txt``, ``log.jsonl`` and ``checkpoint.npz`` go.
    rng : numpy RandomState
        The random state of the data pipeline, checkpointed too.
    header : str
        First lines of ``log.txt`` (the command line and settings).
    resume : bool
        Continue from ``outfolder/checkpoint.npz``.
    checkpoint_every : int
        Epochs between checkpoints (the last epoch always writes one).
    deadline : float, optional
        A ``time.time()`` after which training stops at the end of the
        running epoch, with a checkpoint.

    Example
    -------
    >>> run = Run('results/demo', np.random.RandomState(1), 'demo run')
    >>> run.checkpoint
    'results/demo/checkpoint.npz'
    """

    def __init__(self, outfolder, rng, header='', resume=False,
                 checkpoint_every=10, deadline=None):
        self.outfolder = outfolder
        self.rng = rng
        self.header = header
        self.resume = resume
        self.checkpoint_every = checkpoint_every
        self.deadline = deadline

    @property
    def checkpoint(self):
        return os.path.join(self.outfolder, 'checkpoint.npz')

    def out_of_time(self):
        return self.deadline is not None and time.time() > self.deadline

    def restore(self, variables):
        """Load the checkpoint when resuming; return (first epoch, history)."""
        if not self.resume:
            return 1, []
        if not os.path.exists(self.checkpoint):
            raise IOError('--resume: no checkpoint at %s' % self.checkpoint)
        done, history = load_checkpoint(self.checkpoint, variables, self.rng)
        return done + 1, history


def _check_row(row, epoch, checkpoint):
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise NonFiniteError(
                '%s became %s in epoch %d; stopping. The last good '
                'checkpoint is %s' % (key, value, epoch, checkpoint
                                      if os.path.exists(checkpoint)
                                      else '(none written yet)'))


def fit(train_epoch, num_epochs, run, functions, learning_rate=None,
        schedule=None, evaluate=None, eval_every=10, after_epoch=None):
    """Run a training loop with logging, checkpoints, resume and a NaN guard.

    Parameters
    ----------
    train_epoch : callable(epoch) -> dict
        Runs one epoch and returns the numbers to log (floats).
    num_epochs : int
        The last epoch to run (epochs count from 1).
    run : :class:`Run`
        The folder, random state, resume flag, checkpoint interval and
        deadline.
    functions : list of compiled Theano functions
        Their shared variables make up the checkpointed state.
    learning_rate : Theano shared scalar, optional
        Set from `schedule` at the start of every epoch.
    schedule : callable(epoch) -> float, optional
    evaluate : callable(epoch) -> dict, optional
        Called every `eval_every` epochs and after the last one.
    eval_every : int
    after_epoch : callable(history), optional
        Called after each logged epoch, for plots.

    Returns
    -------
    list of dicts: the history of logged rows.

    Raises
    ------
    NonFiniteError
        When a logged number becomes NaN or infinite; the last checkpoint
        written before stays in place.

    Example
    -------
    >>> history = fit(lambda epoch: {'loss': 1.0 / epoch}, 3,
    ...               Run(folder, rng), [train])       # doctest: +SKIP
    """
    variables = shared_state(functions)
    first_epoch, history = run.restore(variables)
    log = TrainingLog(run.outfolder, run.header, append=run.resume)
    if run.resume:
        log.message('resumed from %s after epoch %d' % (run.checkpoint,
                                                          first_epoch - 1))
    try:
        for epoch in range(first_epoch, num_epochs + 1):
            if schedule is not None:
                learning_rate.set_value(
                    np.asarray(schedule(epoch), learning_rate.dtype))
            start = time.time()
            row = OrderedDict(epoch=epoch)
            row.update(train_epoch(epoch))
            row['seconds'] = round(time.time() - start, 2)
            if learning_rate is not None:
                row['lr'] = float(learning_rate.get_value())
            if evaluate is not None and (epoch % eval_every == 0 or
                                         epoch == num_epochs):
                row.update(evaluate(epoch))
            _check_row(row, epoch, run.checkpoint)
            history.append(row)
            log.write(row)
            out_of_time = run.out_of_time()
            if epoch % run.checkpoint_every == 0 or epoch == num_epochs or \
                    out_of_time:
                save_checkpoint(run.checkpoint, variables, run.rng, epoch,
                                history)
            if after_epoch is not None:
                after_epoch(history)
            if out_of_time:
                log.message('time budget used up after epoch %d' % epoch)
                break
    except NonFiniteError as error:
        log.message('STOPPED: %s' % error)
        raise
    finally:
        log.close()
    return history
