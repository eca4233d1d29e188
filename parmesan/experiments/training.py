"""The training loop every trainer shares: mini-batches, logs, atomic
checkpoints with exact resume, a NaN guard, the lock that gives an output
folder to one run, and a progress display.

A trainer compiles its Theano functions, then hands :func:`fit` a function
that runs one epoch and, optionally, one that evaluates. :func:`fit` owns
everything around them. Checkpoints hold, each under a stable name
(:func:`state_names`), the state that training continues from: the
parameters, batch-norm statistics, optimiser moments, the learning rate,
and the numpy random state, so ``--resume`` continues to the identical
state. The noise streams are not stored: they are reseeded from the run's
seed and the epoch before every epoch and every evaluation
(:func:`reseed_noise`), which also makes every evaluation reproducible,
from a saved run too.
"""
import atexit
import errno
import fcntl
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from collections import OrderedDict

import numpy as np
from theano.compile import SharedVariable
from theano.sandbox.rng_mrg import MRG_RandomStreams, mrg_uniform_base

__all__ = ['iterate_minibatches', 'semi_supervised_batches', 'shared_state',
           'is_noise_state', 'state_names', 'checkpointed_state',
           'reseed_noise', 'read_checkpoint_arrays', 'assign_by_name',
           'save_checkpoint', 'load_checkpoint', 'verify_checkpoint',
           'CheckpointError', 'CheckpointWriteError', 'NonFiniteError',
           'check_finite', 'atomic_write', 'remove_partial_writes',
           'FolderInUseError', 'FolderLock', 'TrainingLog', 'progress', 'Run',
           'fit']


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
    >>> rng = np.random.RandomState(0)
    >>> [rows.tolist() for rows in iterate_minibatches(5, 2, rng)]
    [[2, 0], [1, 3], [4]]
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
            # Clones of a shared variable (e.g. the copies that carry the
            # batch-norm collection updates) share its storage: one entry.
            seen.setdefault(id(variable.container), variable)
    return list(seen.values())


def _first_format_state(functions):
    """The variables, in order, that checkpoints of the first format
    stored: every shared variable, noise streams and clones included."""
    seen = OrderedDict()
    for function in functions:
        for variable in function.get_shared():
            seen.setdefault(id(variable), variable)
    return list(seen.values())


def is_noise_state(variable):
    """Whether `variable` is the state of a Theano MRG noise stream (one per
    random draw in a graph, e.g. of a sample layer)."""
    update = getattr(variable, 'default_update', None)
    owner = getattr(update, 'owner', None)
    return owner is not None and isinstance(owner.op, mrg_uniform_base)


def checkpointed_state(functions):
    """Split the shared variables of compiled `functions` (the training
    function first) into what a checkpoint holds and the noise streams,
    which are reseeded instead of stored (:func:`reseed_noise`).

    Returns
    -------
    (state, training_noise, evaluation_noise): lists of shared variables;
    the noise streams of the training function, and those only the
    evaluation functions draw from.
    """
    training = {id(variable) for variable in functions[0].get_shared()} \
        if functions else set()
    state, training_noise, evaluation_noise = [], [], []
    for variable in shared_state(functions):
        if not is_noise_state(variable):
            state.append(variable)
        elif id(variable) in training:
            training_noise.append(variable)
        else:
            evaluation_noise.append(variable)
    return state, training_noise, evaluation_noise


#: The uses of :func:`reseed_noise`, each with its own noise.
_NOISE_STAGES = ('evaluation', 'training')


def reseed_noise(streams, seed, epoch, stage='evaluation'):
    """Set every noise stream in `streams` to a state that depends only on
    `seed`, `epoch`, `stage` and its position in the list.

    The trainers reseed the training noise before every epoch and the
    evaluation noise before every evaluation, so neither is stored in a
    checkpoint (they are the bulk of a small model's state: 15360 MRG
    streams, 369 kB, per random draw in a graph), a resumed run draws the
    same noise as one that ran straight through, and an evaluation of the
    model after `epoch` draws the same noise whenever it is repeated (also
    from a saved run, :func:`parmesan.experiments.runs.load_run`).

    Parameters
    ----------
    streams : list of MRG state shared variables (:func:`is_noise_state`)
    seed, epoch : int
    stage : 'evaluation' or 'training'

    Example
    -------
    >>> reseed_noise(run.evaluation_noise, 1234, 7)     # doctest: +SKIP
    """
    purpose = _NOISE_STAGES.index(stage)
    for index, stream in enumerate(streams):
        count = stream.get_value(borrow=True).shape[0]
        start = np.random.RandomState(
            [int(seed), int(epoch), index, purpose]).randint(1, 2 ** 30)
        stream.set_value(MRG_RandomStreams(int(start)).get_substream_rstates(
            count, 'float32', inc_rstate=False))


def _noise_streams(owner):
    """The MRG_RandomStreams among `owner`'s attributes."""
    return [value for _, value in sorted(vars(owner).items())
            if isinstance(value, MRG_RandomStreams)]


def _model_names(model):
    """id(shared variable's storage) -> name for the parameters and noise streams of
    `model` (an :class:`~parmesan.experiments.model.ExperimentModel`)."""
    from lasagne.layers import Layer, get_all_layers
    layers = get_all_layers(list(model.output_layers))
    attribute = {}
    for key, value in sorted(vars(model).items()):
        if isinstance(value, Layer):
            attribute.setdefault(id(value), key)
    names = OrderedDict()
    for index, layer in enumerate(layers):
        path = attribute.get(id(layer)) or 'layer%02d_%s' % (
            index, type(layer).__name__)
        for position, param in enumerate(layer.params):
            short = (param.name or 'param%d' % position).split('.')[-1]
            names.setdefault(id(param.container), '%s/%s' % (path, short))
        for key, value in sorted(vars(layer).items()):
            if isinstance(value, SharedVariable):
                names.setdefault(id(value.container), '%s/%s' % (path, key))
        for number, srng in enumerate(_noise_streams(layer)):
            for draw, update in enumerate(srng.state_updates):
                names.setdefault(id(update[0].container), '%s/noise%s%d' % (
                    path, '' if number == 0 else number, draw))
    for number, srng in enumerate(_noise_streams(model)):
        for draw, update in enumerate(srng.state_updates):
            names.setdefault(id(update[0].container), 'model/noise%s%d' % (
                '' if number == 0 else number, draw))
    for key, value in sorted(vars(model).items()):
        if isinstance(value, SharedVariable):
            names.setdefault(id(value.container), key)
    return names


def state_names(variables, model=None):
    """A stable, unique name for each shared variable of a model's state,
    e.g. ``l_mu/W``, ``layer03_DenseLayer/b/adam_m``, ``l_z0/noise0``.

    Parameters of layers are named by the model's attribute for the layer
    (else ``layer<index>_<class>``) and the parameter's name; Adam's moments
    by their parameter (:func:`parmesan.updates.adam_with_clipping` tags
    them); noise streams by their layer and the order of their draws; any
    other variable by its own name (``lr``). The same settings give the
    same names in every process.

    Parameters
    ----------
    variables : list of shared variables
    model : ExperimentModel, optional
        Without it, the variables' own names are used.

    Returns
    -------
    list of str, one per variable.
    """
    known = _model_names(model) if model is not None else {}

    def name_of(variable, position):
        if id(variable.container) in known:
            return known[id(variable.container)]
        owner = getattr(variable.tag, 'optimizer_state', None)
        if owner is not None:
            param, role = owner
            return '%s/%s' % (name_of(param, position) if param is not None
                              else 'optimizer', role)
        return variable.name or 'var%04d' % position

    names, taken = [], set()
    for position, variable in enumerate(variables):
        name = base = name_of(variable, position)
        copy = 1
        while name in taken:
            copy += 1
            name = '%s#%d' % (base, copy)
        taken.add(name)
        names.append(name)
    return names


#: Temporary files of :func:`atomic_write`: ``.<target>.<random>.tmp``
#: (and ``tmp<random>.tmp``, as earlier versions named them).
_PARTIAL_WRITE = re.compile(r'^(\..+\.[a-z0-9_]{8}|tmp[a-z0-9_]{8})\.tmp$')


def atomic_write(path, write, mode='wb'):
    """Write a file so that a crash or a full disk never leaves a partial
    one at `path`: `write(stream)` fills a temporary file beside it, which
    then replaces `path` in one step.

    Parameters
    ----------
    path : str
    write : callable(stream)
    mode : 'wb' or 'w'

    Raises
    ------
    OSError
        Naming `path` (the temporary file is removed; whatever was at
        `path` before is untouched).

    Example
    -------
    >>> atomic_write('results.json', lambda f: f.write('{}'), 'w')
    ... # doctest: +SKIP
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=folder, prefix='.%s.' % os.path.basename(path), suffix='.tmp')
    try:
        with os.fdopen(handle, mode) as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file readable by its owner only; give it the
        # permissions of any other new file.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError):
            raise OSError(error.errno, 'could not write %s: %s' % (
                path, error.strerror or error)) from error
        raise


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_partial_writes(folder):
    """Remove the temporary files that writes interrupted by a kill left
    in `folder`; call it only while no other process writes there (with
    the folder's :class:`FolderLock` held).

    Returns
    -------
    list of (file name, size in bytes) removed.
    """
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if _PARTIAL_WRITE.match(name) and os.path.isfile(path):
            removed.append((name, os.path.getsize(path)))
            os.remove(path)
    return removed


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (truncated, corrupt, not one) or was
    written by a model of other settings."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a lost folder); the
    previous one is intact."""


def _checkpoint_epoch(path):
    try:
        with np.load(path) as stored:
            return json.loads(str(stored['meta']))['epoch']
    except Exception:
        return None


#: The layout of checkpoints written now: arrays stored under their names.
CHECKPOINT_FORMAT = 2


def save_checkpoint(path, variables, rng, epoch, history, names=None):
    """Write a checkpoint atomically (a crash never leaves a partial file).

    Parameters
    ----------
    path : str
    variables : list of shared variables, from :func:`checkpointed_state`
    rng : numpy RandomState of the data pipeline
    epoch : int, the last finished epoch
    history : list of dicts, the log rows so far
    names : list of str, optional
        One unique name per variable (:func:`state_names`); default: the
        variables' own names.

    Raises
    ------
    CheckpointWriteError
        Naming the path and the cause (e.g. a full disk) and saying which
        checkpoint is still in place.
    """
    names = state_names(variables) if names is None else list(names)
    if len(set(names)) != len(names) or len(names) != len(variables):
        raise ValueError('need one unique name per variable, got %r'
                         % (names,))
    arrays = OrderedDict((name, variable.get_value(borrow=False))
                         for name, variable in zip(names, variables))
    meta = {'format': CHECKPOINT_FORMAT, 'epoch': epoch, 'history': history,
            'names': names, 'rng': _rng_to_json(rng.get_state())}
    if 'meta' in arrays:
        raise ValueError("no variable may be called 'meta'")
    arrays['meta'] = np.array(json.dumps(meta))
    try:
        atomic_write(path, lambda stream: np.savez(stream, **arrays))
    except OSError as error:
        previous = _checkpoint_epoch(path)
        kept = 'the previous checkpoint there (after epoch %d) is intact' \
            % previous if previous is not None else 'no earlier checkpoint ' \
            'exists'
        cause = error.__cause__ or error
        raise CheckpointWriteError(
            error.errno, 'could not write the checkpoint of epoch %d to %s '
            '(%s); %s. Free some space and rerun with --resume.'
            % (epoch, path, getattr(cause, 'strerror', None) or cause,
               kept)) from error


def _read_checkpoint(path):
    """(meta, OrderedDict name -> array) of a checkpoint, every member read
    (so a corrupt or truncated file fails here, by its CRC or its size).
    Checkpoints of the first format (positional ``var_0000`` entries) are
    read under their positional names."""
    try:
        with np.load(path) as stored:
            meta = json.loads(str(stored['meta']))
            if meta.get('format', 1) == 1:
                keys = ['var_%04d' % i for i in range(len(meta['names']))]
                meta['names'] = keys
            arrays = OrderedDict((name, stored[name])
                                 for name in meta['names'])
    except FileNotFoundError:
        raise CheckpointError('no checkpoint at %s' % path)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError,
            TypeError) as error:
        raise CheckpointError(
            'the checkpoint %s cannot be read (%s: %s): it is truncated or '
            'corrupt. Restore a good copy, or move it away and start afresh '
            '(without --resume).' % (path, type(error).__name__, error))
    return meta, arrays


def read_checkpoint_arrays(path):
    """The arrays of a checkpoint by name, and its metadata (epoch,
    history, ...).

    Returns
    -------
    (OrderedDict name -> numpy array, dict)

    Raises
    ------
    CheckpointError
        Naming the path when it is missing, truncated or corrupt.
    """
    meta, arrays = _read_checkpoint(path)
    return arrays, meta


def verify_checkpoint(path):
    """Read a whole checkpoint without using it; return its epoch.

    Raises
    ------
    CheckpointError
        Naming the path when it is missing, truncated or corrupt.
    """
    meta, _ = _read_checkpoint(path)
    return meta['epoch']


def _listing(names, most=8):
    names = sorted(names)
    shown = ', '.join(names[:most])
    return shown + (', ... (%d in all)' % len(names) if len(names) > most
                    else '')


def assign_by_name(path, arrays, variables, names, allow_unexpected=False):
    """Set each variable from the checkpoint array of its name.

    Parameters
    ----------
    path : str, for messages
    arrays : dict name -> array (:func:`read_checkpoint_arrays`)
    variables, names : lists of shared variables and their names
    allow_unexpected : bool
        Accept checkpoint entries no variable asks for (loading a part of
        the state, e.g. the parameters for evaluation).

    Raises
    ------
    CheckpointError
        Listing the missing and unexpected names and the shape mismatches,
        before any variable is changed.
    """
    wanted = dict(zip(names, variables))
    missing = [name for name in names if name not in arrays]
    unexpected = [] if allow_unexpected else \
        [name for name in arrays if name not in wanted]
    mismatched = ['%s (checkpoint %s, model %s)' % (
        name, tuple(arrays[name].shape),
        tuple(np.shape(variable.get_value(borrow=True))))
        for name, variable in zip(names, variables) if name in arrays and
        np.shape(variable.get_value(borrow=True)) != arrays[name].shape]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append('missing from it: %s' % _listing(missing))
        if unexpected:
            problems.append('not in this model: %s' % _listing(unexpected))
        if mismatched:
            problems.append('shapes differ: %s' % _listing(mismatched))
        raise CheckpointError(
            'checkpoint %s does not fit this model (%s): it was written with '
            'other settings' % (path, '; '.join(problems)))
    for name, variable in zip(names, variables):
        variable.set_value(arrays[name].astype(
            variable.get_value(borrow=True).dtype))


def load_checkpoint(path, variables, rng, names=None, positional=None):
    """Restore what :func:`save_checkpoint` wrote; return (epoch, history).

    Parameters
    ----------
    path : str
    variables : list of shared variables
    rng : numpy RandomState, set to the stored data-pipeline state
    names : list of str, optional
        The variables' names (:func:`state_names`); default: their own
        names.
    positional : list of shared variables, optional
        What a checkpoint of the first format (written by an older
        Parmesan, entries by position) is matched with, position by
        position; default: `variables`.

    Raises
    ------
    CheckpointError
        Naming the checkpoint if it cannot be read, or listing the
        missing, unexpected and mis-shaped variables if it was written by a
        model of a different configuration.
    """
    meta, arrays = _read_checkpoint(path)
    if meta.get('format', 1) == 1:
        variables = variables if positional is None else positional
        if len(arrays) != len(variables):
            raise CheckpointError(
                'checkpoint %s holds %d variables but this model has %d: it '
                'was written with other settings' % (path, len(arrays),
                                                    len(variables)))
        names = list(arrays)
    elif names is None:
        names = state_names(variables)
    assign_by_name(path, arrays, variables, names)
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
    """A loss, bound or evaluated number became NaN or infinite."""


def check_finite(values, where, names=None):
    """Return `values` if every one is finite, else raise
    :class:`NonFiniteError` naming the culprits.

    Parameters
    ----------
    values : number or array of numbers
    where : str
        Where they were computed, e.g. ``'epoch 3, batch 17 of 40'``.
    names : sequence of str, optional
        One name per value (e.g. the training function's outputs).

    Example
    -------
    >>> check_finite([1.0, float('nan')], 'epoch 3', ['loss', 'kl'])
    Traceback (most recent call last):
    ...
    parmesan.experiments.training.NonFiniteError: epoch 3: kl = nan
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if np.all(finite):
        return values
    if names is None or len(names) != values.size:
        names = ['value %d' % i for i in range(values.size)] \
            if values.ndim else ['the value']
    culprits = ', '.join('%s = %s' % (name, value) for name, value, ok in
                         zip(names, values.ravel(), finite.ravel()) if not ok)
    raise NonFiniteError('%s: %s' % (where, culprits))


_ROW = re.compile(r'^epoch (\d+)  ')


class TrainingLog(object):
    """One line per epoch on stdout and in ``log.txt``, and the same row as
    JSON in ``log.jsonl`` for programs.

    Parameters
    ----------
    folder : str
    header : str, optional
        Written at the top of ``log.txt`` (for instance the command line);
        when resuming, after the resume message.
    append : bool
        Continue existing files (when resuming).
    history : list of dicts, optional
        With `append`: the rows of the checkpoint resumed from. The logs
        are cut back to them first, so rows of epochs that ran after that
        checkpoint, before an interruption, do not appear twice.
    """

    def __init__(self, folder, header=None, append=False, history=None):
        os.makedirs(folder, exist_ok=True)
        self.text_path = os.path.join(folder, 'log.txt')
        self.rows_path = os.path.join(folder, 'log.jsonl')
        self.dropped = self._cut_back(history or []) if append else []
        mode = 'a' if append else 'w'
        self.text = open(self.text_path, mode)
        self.rows = open(self.rows_path, mode)
        if header and not append:
            self.text.write(header.rstrip('\n') + '\n')
            self.text.flush()
        self.header = header

    def _cut_back(self, history):
        """Rewrite the logs to hold exactly `history`; return the epochs of
        the rows dropped from ``log.txt``."""
        last = history[-1]['epoch'] if history else 0
        atomic_write(self.rows_path, lambda stream: stream.writelines(
            json.dumps(row) + '\n' for row in history), 'w')
        if not os.path.exists(self.text_path):
            return []
        with open(self.text_path) as stream:
            lines = stream.readlines()
        if lines and not lines[-1].endswith('\n'):
            lines.pop()  # cut short by the interruption
        kept, dropped = [], []
        for line in lines:
            match = _ROW.match(line)
            if dropped or (match and int(match.group(1)) > last):
                if match:
                    dropped.append(int(match.group(1)))
                continue
            kept.append(line)
        atomic_write(self.text_path, lambda stream: stream.writelines(kept),
                     'w')
        return dropped

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
        for stream in (self.text, self.rows):
            try:
                stream.close()
            except OSError:
                # Every line is flushed when written, so only a line whose
                # flush already failed (a full disk) can be pending: that
                # failure was raised then; do not mask it now.
                pass


class FolderInUseError(RuntimeError):
    """Another run that is still alive holds the output folder."""


class FolderLock(object):
    """Gives an output folder to one run at a time.

    The lock is an exclusive ``flock`` on ``FOLDER/run.lock``, which holds
    the holder's pid, host, start time and command. The kernel drops the
    flock when its process ends, however it ends, so a lock left by a
    killed run is stale by construction: the next run takes it over (and
    hears whose it was).

    Parameters
    ----------
    folder : str

    Example
    -------
    >>> import tempfile
    >>> lock = FolderLock(tempfile.mkdtemp())
    >>> lock.acquire({'command': 'demo'})        # None: nobody held it
    >>> lock.release()
    """

    NAME = 'run.lock'

    def __init__(self, folder):
        self.folder = folder
        self.path = os.path.join(folder, self.NAME)
        self._handle = None

    def acquire(self, holder):
        """Take the lock, writing `holder` (a JSON-able dict) into it.

        Returns
        -------
        The holder description a killed run left behind (its lock was
        stale), or None.

        Raises
        ------
        FolderInUseError
            Naming the live holder.
        """
        os.makedirs(self.folder, exist_ok=True)
        while True:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                previous = _read_holder(handle)
                os.close(handle)
                if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    raise
                raise FolderInUseError(
                    'the output folder %s is in use by another run (%s). '
                    'Wait for it to finish, stop it, or choose another '
                    '-outfolder.' % (self.folder, self.describe(previous)))
            # Its holder may have released and removed the file between our
            # open and our flock: then this lock is on an orphan; retry.
            try:
                same = os.path.samestat(os.stat(self.path),
                                        os.fstat(handle))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(handle)
        stale = _read_holder(handle)
        os.ftruncate(handle, 0)
        os.pwrite(handle, json.dumps(holder).encode('utf-8'), 0)
        os.fsync(handle)
        self._handle = handle
        atexit.register(self.release)
        return stale

    @staticmethod
    def describe(holder):
        """A holder's description as a phrase for messages."""
        if not isinstance(holder, dict):
            return repr(holder)
        return 'pid %s on %s, started %s: %s' % (
            holder.get('pid'), holder.get('host'), holder.get('started'),
            holder.get('command'))

    def release(self):
        """Remove the lock file and drop the lock (idempotent)."""
        if self._handle is None:
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        os.close(self._handle)
        self._handle = None
        atexit.unregister(self.release)


def _read_holder(handle):
    text = os.pread(handle, 1 << 16, 0).decode('utf-8', 'replace').strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


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

    Used as a context manager it releases its folder's lock at the end.

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
    lock : :class:`FolderLock`, optional
        The folder's lock, held; released by :meth:`close`.
    notes : list of str, optional
        Lines for the log about the start (a stale lock taken over,
        leftovers removed).
    seed : int
        The run's seed, from which the evaluation noise is reseeded
        (:meth:`reseed_evaluation`).

    Example
    -------
    >>> with Run('results/demo', np.random.RandomState(1), 'demo') as run:
    ...     print(run.checkpoint, run.out_of_time())
    results/demo/checkpoint.npz False
    """

    def __init__(self, outfolder, rng, header='', resume=False,
                 checkpoint_every=10, deadline=None, lock=None, notes=(),
                 seed=0):
        if checkpoint_every < 1:
            raise ValueError('checkpoint_every must be at least 1, got %r'
                             % (checkpoint_every,))
        self.outfolder = outfolder
        self.rng = rng
        self.header = header
        self.resume = resume
        self.checkpoint_every = checkpoint_every
        self.deadline = deadline
        self.lock = lock
        self.notes = list(notes)
        self.seed = seed
        #: The noise streams of the training function and those only
        #: evaluation draws from (set by :func:`fit`).
        self.training_noise, self.evaluation_noise = [], []

    @property
    def checkpoint(self):
        return os.path.join(self.outfolder, 'checkpoint.npz')

    def out_of_time(self):
        return self.deadline is not None and time.time() > self.deadline

    def restore(self, variables, names=None, positional=None):
        """Load the checkpoint when resuming; return (first epoch, history).
        (`positional`: see :func:`load_checkpoint`.)"""
        if not self.resume:
            return 1, []
        done, history = load_checkpoint(self.checkpoint, variables, self.rng,
                                        names, positional)
        return done + 1, history

    def reseed_evaluation(self, epoch):
        """Reseed the evaluation noise for an evaluation of the model after
        `epoch` (:func:`reseed_noise`); call it before every evaluation."""
        reseed_noise(self.evaluation_noise, self.seed, epoch)

    def reseed_training(self, epoch):
        """Reseed the training noise for `epoch` (:func:`reseed_noise`)."""
        reseed_noise(self.training_noise, self.seed, epoch, 'training')

    def close(self):
        """Release the folder's lock."""
        if self.lock is not None:
            self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()


def _stop_advice(run, saved_epoch, learning_rate, schedule):
    """What the NaN guard says after stopping: the checkpoint it kept and
    how to continue from it."""
    if learning_rate is None:
        smaller = 'a smaller -lr'
    else:
        base = schedule(1) if schedule is not None else \
            float(learning_rate.get_value())
        smaller = 'a smaller -lr, e.g. -lr %g (half of %g)' % (base / 2, base)
    if saved_epoch is None:
        return ('No checkpoint of this run was written yet; rerun without '
                '--resume with %s.' % smaller)
    return ('The last good checkpoint, %s (after epoch %d), was kept. To '
            'continue from it, rerun the same command with --resume and %s.'
            % (run.checkpoint, saved_epoch, smaller))


def fit(train_epoch, num_epochs, run, functions, learning_rate=None,
        schedule=None, evaluate=None, eval_every=10, after_epoch=None,
        model=None):
    """Run a training loop with logging, checkpoints, resume and a NaN guard.

    Parameters
    ----------
    train_epoch : callable(epoch) -> dict
        Runs one epoch and returns the numbers to log (floats); may raise
        :class:`NonFiniteError` (see :func:`check_finite`) within it.
    num_epochs : int
        The last epoch to run (epochs count from 1).
    run : :class:`Run`
        The folder, random state, resume flag, checkpoint interval and
        deadline.
    functions : list of compiled Theano functions
        The training function first, then the evaluation functions; their
        shared variables make up the checkpointed state, less the noise
        streams (:func:`checkpointed_state`), which are reseeded from the
        run's seed before every epoch and every evaluation
        (:func:`reseed_noise`).
    learning_rate : Theano shared scalar, optional
        Set from `schedule` at the start of every epoch.
    schedule : callable(epoch) -> float, optional
    evaluate : callable(epoch) -> dict, optional
        Called every `eval_every` epochs and after the last one.
    eval_every : int
    after_epoch : callable(history), optional
        Called after each logged epoch, for plots.
    model : ExperimentModel, optional
        Names the checkpointed variables (:func:`state_names`).

    Returns
    -------
    list of dicts: the history of logged rows.

    Raises
    ------
    NonFiniteError
        When a number of the epoch becomes NaN or infinite: the message
        names them, the epoch, the checkpoint kept (the last one written
        before) and how to resume with a smaller learning rate.
    CheckpointWriteError
        When a checkpoint cannot be written (the previous one stays).

    Example
    -------
    >>> history = fit(lambda epoch: {'loss': 1.0 / epoch}, 3,
    ...               Run(folder, rng), [train])       # doctest: +SKIP
    """
    variables, run.training_noise, run.evaluation_noise = \
        checkpointed_state(functions)
    names = state_names(variables, model)
    first_epoch, history = run.restore(variables, names,
                                       _first_format_state(functions))
    saved_epoch = first_epoch - 1 if run.resume else None
    log = TrainingLog(run.outfolder, run.header, append=run.resume,
                      history=history)
    for note in run.notes:
        log.message(note)
    if run.resume:
        log.message('resumed from %s after epoch %d' % (run.checkpoint,
                                                          first_epoch - 1))
        if log.dropped:
            log.message('dropped the log rows of epochs %s, run after that '
                        'checkpoint' % ', '.join(map(str, log.dropped)))
        if run.header:
            log.message(run.header)
    try:
        for epoch in range(first_epoch, num_epochs + 1):
            if schedule is not None:
                learning_rate.set_value(
                    np.asarray(schedule(epoch), learning_rate.dtype))
            start = time.time()
            run.reseed_training(epoch)
            row = OrderedDict(epoch=epoch)
            row.update(train_epoch(epoch))
            row['seconds'] = round(time.time() - start, 2)
            if learning_rate is not None:
                row['lr'] = float(learning_rate.get_value())
            if evaluate is not None and (epoch % eval_every == 0 or
                                         epoch == num_epochs):
                run.reseed_evaluation(epoch)
                row.update(evaluate(epoch))
            floats = [(key, value) for key, value in row.items()
                      if isinstance(value, float)]
            check_finite([value for _, value in floats], 'epoch %d' % epoch,
                         [key for key, _ in floats])
            history.append(row)
            log.write(row)
            out_of_time = run.out_of_time()
            if epoch % run.checkpoint_every == 0 or epoch == num_epochs or \
                    out_of_time:
                save_checkpoint(run.checkpoint, variables, run.rng, epoch,
                                history, names)
                saved_epoch = epoch
            if after_epoch is not None:
                after_epoch(history)
            if out_of_time:
                log.message('time budget used up after epoch %d' % epoch)
                break
    except NonFiniteError as error:
        advice = _stop_advice(run, saved_epoch, learning_rate, schedule)
        message = 'NaN guard: non-finite values in %s. Training stopped. ' \
            '%s' % (error, advice)
        log.message('STOPPED: ' + message)
        raise NonFiniteError(message) from None
    except CheckpointWriteError as error:
        try:
            log.message('STOPPED: %s' % error)
        except OSError:
            pass  # the log is on the same full disk; the error says it all
        raise
    finally:
        log.close()
    return history
