"""The shared training loop: batching, atomic checkpoints, the NaN guard,
and exact resume."""
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import theano

from parmesan.experiments import training
from parmesan.experiments.training import Run, semi_supervised_batches
from parmesan.experiments.vae import run
from conftest import floatx


def test_minibatches_cover_every_example_once():
    rng = np.random.RandomState(0)
    batches = list(training.iterate_minibatches(103, 10, rng))
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert sorted(np.concatenate(batches)) == list(range(103))
    assert not np.array_equal(np.concatenate(batches), np.arange(103))
    dropped = list(training.iterate_minibatches(103, 10, drop_last=True))
    assert len(dropped) == 10
    with pytest.raises(ValueError, match='batch_size'):
        list(training.iterate_minibatches(10, 0))


def counter_function():
    counter = theano.shared(floatx(0.0), 'counter')
    return counter, theano.function([], counter,
                                    updates=[(counter, counter + 1)])


def test_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    counter, increment = counter_function()
    rng = np.random.RandomState(3)
    path = str(tmp_path / 'checkpoint.npz')
    training.save_checkpoint(path, [counter], rng, 1, [{'epoch': 1}])

    def crash(*args, **kwargs):
        raise KeyboardInterrupt('killed while writing')
    monkeypatch.setattr(np, 'savez', crash)
    increment()
    with pytest.raises(KeyboardInterrupt):
        training.save_checkpoint(path, [counter], rng, 2, [])
    assert os.listdir(str(tmp_path)) == ['checkpoint.npz']
    monkeypatch.undo()
    rng.randn(5)
    epoch, history = training.load_checkpoint(path, [counter], rng)
    assert (epoch, history, float(counter.get_value())) == \
        (1, [{'epoch': 1}], 0.0)
    assert rng.randn() == np.random.RandomState(3).randn()


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    counter, increment = counter_function()
    learning_rate = theano.shared(floatx(0.0), 'lr')

    def train_epoch(epoch):
        increment()
        return {'loss': float('nan') if epoch == 3 else 1.0 / epoch,
                'kl': float('inf') if epoch == 3 else 2.0}
    with pytest.raises(training.NonFiniteError) as stop:
        training.fit(train_epoch, 5, Run(str(tmp_path),
                                         np.random.RandomState(0),
                                         checkpoint_every=1), [increment],
                     learning_rate=learning_rate,
                     schedule=lambda epoch: 0.004 / epoch)
    message = str(stop.value)
    checkpoint = str(tmp_path / 'checkpoint.npz')
    for part in ('in epoch 3: loss = nan, kl = inf', checkpoint,
                 '(after epoch 2)', '--resume', '-lr 0.002 (half of 0.004)'):
        assert part in message, part
    epoch, history = training.load_checkpoint(checkpoint, [counter],
                                              np.random.RandomState())
    assert epoch == 2 and float(counter.get_value()) == 2
    assert 'STOPPED: ' + message in (tmp_path / 'log.txt').read_text()


def test_nan_guard_names_the_batch_and_the_terms_within_an_epoch(tmp_path):
    names = ['train_bound', 'train_log_px_z', 'train_log_qz']

    def train_epoch(epoch):
        for batch, values in enumerate([[1.0, 2.0, 3.0],
                                        [np.nan, -np.inf, 3.0]]):
            training.check_finite(np.array(values), 'epoch %d, batch %d of 2'
                                  % (epoch, batch + 1), names)
        return {}
    with pytest.raises(training.NonFiniteError) as stop:
        training.fit(train_epoch, 2, Run(str(tmp_path),
                                         np.random.RandomState(0)), [])
    message = str(stop.value)
    assert 'epoch 1, batch 2 of 2: train_bound = nan, train_log_px_z = ' \
        '-inf.' in message
    assert 'train_log_qz' not in message
    assert 'No checkpoint of this run was written yet' in message


def test_checkpoint_of_another_model_is_refused(tmp_path):
    counter, _ = counter_function()
    path = str(tmp_path / 'c.npz')
    training.save_checkpoint(path, [counter], np.random.RandomState(), 1, [])
    wider = theano.shared(floatx(np.zeros(3)))
    with pytest.raises(ValueError, match='other settings'):
        training.load_checkpoint(path, [wider], np.random.RandomState())
    with pytest.raises(ValueError, match='other settings'):
        training.load_checkpoint(path, [counter, wider],
                                 np.random.RandomState())


def test_variables_are_stored_and_matched_by_name(tmp_path):
    path = str(tmp_path / 'named.npz')
    weights = theano.shared(floatx(np.arange(6.).reshape(2, 3)), 'W')
    step = theano.shared(floatx(3.0), 'step')
    training.save_checkpoint(path, [weights, step], np.random.RandomState(1),
                             2, [], names=['dense/W', 'adam/step'])
    with np.load(path) as stored:
        assert sorted(stored.files) == ['adam/step', 'dense/W', 'meta']
        np.testing.assert_array_equal(stored['dense/W'],
                                      np.arange(6.).reshape(2, 3))
    # Matched by name, whatever the order.
    other_w, other_step = theano.shared(floatx(np.zeros((2, 3)))), \
        theano.shared(floatx(0.0))
    epoch, _ = training.load_checkpoint(path, [other_step, other_w],
                                        np.random.RandomState(),
                                        names=['adam/step', 'dense/W'])
    assert epoch == 2 and float(other_step.get_value()) == 3.0
    np.testing.assert_array_equal(other_w.get_value(),
                                  np.arange(6.).reshape(2, 3))
    wide = theano.shared(floatx(np.zeros((2, 4))))
    extra = theano.shared(floatx(0.0))
    with pytest.raises(training.CheckpointError) as error:
        training.load_checkpoint(path, [wide, extra], np.random.RandomState(),
                                 names=['dense/W', 'dense/b'])
    message = str(error.value)
    assert 'missing from it: dense/b' in message
    assert 'not in this model: adam/step' in message
    assert 'shapes differ: dense/W (checkpoint (2, 3), model (2, 4))' in \
        message
    # Nothing was changed by the refused load.
    assert not wide.get_value().any()


def test_a_first_format_checkpoint_is_read_by_position(tmp_path):
    """Checkpoints of older versions: entries var_0000, ... in order."""
    path = str(tmp_path / 'old.npz')
    rng = np.random.RandomState(4)
    meta = {'epoch': 5, 'history': [{'epoch': 5}], 'names': ['None', 'b'],
            'rng': training._rng_to_json(rng.get_state())}
    np.savez(path, var_0000=np.ones(2), var_0001=np.full(3, 7.),
             meta=np.array(json.dumps(meta)))
    a, b = theano.shared(floatx(np.zeros(2))), \
        theano.shared(floatx(np.zeros(3)))
    named = theano.shared(floatx(np.zeros(3)), 'only_this')
    restored = np.random.RandomState(0)
    epoch, history = training.load_checkpoint(path, [named], restored,
                                              positional=[a, b])
    assert (epoch, history) == (5, [{'epoch': 5}])
    assert a.get_value().tolist() == [1, 1] and b.get_value()[0] == 7
    assert restored.randint(1000) == np.random.RandomState(4).randint(1000)


def test_noise_is_reseeded_from_seed_epoch_and_position():
    from theano.sandbox.rng_mrg import MRG_RandomStreams
    streams = MRG_RandomStreams(3)
    draw = theano.function([], streams.uniform((4,)))
    state = streams.state_updates[0][0]
    assert training.is_noise_state(state)
    assert not training.is_noise_state(theano.shared(floatx(0.0)))
    training.reseed_noise([state], seed=5, epoch=2)
    first = draw()
    training.reseed_noise([state], seed=5, epoch=2)
    np.testing.assert_array_equal(draw(), first)
    training.reseed_noise([state], seed=5, epoch=3)
    assert not np.array_equal(draw(), first)
    training.reseed_noise([state], seed=5, epoch=2, stage='training')
    assert not np.array_equal(draw(), first)
    assert np.all((first > 0) & (first < 1))


TINY = ['--train-subset', '200', '-nhidden', '16', '-nlatent', '4',
        '-batch_size', '50', '-iw_samples', '2', '-eval_epoch', '100',
        '--eval-iw', '3', '--eval-subset', '50', '--final-iw', '3',
        '--checkpoint-every', '1', '--seed', '5']


def checkpoint_arrays(folder):
    with np.load(os.path.join(folder, 'checkpoint.npz')) as stored:
        return {key: stored[key] for key in stored.files if key != 'meta'}


def test_resume_continues_to_the_identical_state(tmp_path, shared_data_dir):
    # Batch norm on: the checkpoint must carry the normalisation statistics,
    # Adam's moments, the sample layer's noise stream and the data order.
    common = TINY + ['--data-dir', shared_data_dir, '-batch_norm', 'true']
    straight, stopped = str(tmp_path / 'straight'), str(tmp_path / 'stop')
    run(common + ['-nepochs', '2', '-outfolder', straight])
    # A zero time budget stops after the first epoch, as an interruption.
    run(common + ['-nepochs', '2', '-outfolder', stopped,
                  '--max-minutes', '0'])
    assert len(open(os.path.join(stopped, 'log.jsonl')).readlines()) == 1
    run(common + ['-nepochs', '2', '-outfolder', stopped, '--resume'])
    expected, resumed = checkpoint_arrays(straight), checkpoint_arrays(stopped)
    assert expected.keys() == resumed.keys() and len(expected) > 20
    for key in expected:
        np.testing.assert_array_equal(resumed[key], expected[key])
    assert 'resumed from' in open(os.path.join(stopped, 'log.txt')).read()


def test_labelled_rows_come_only_from_the_labelled_set():
    labelled = np.array([3, 8, 11, 19, 25, 31, 40])
    batches = list(semi_supervised_batches(50, labelled, 5,
                                           np.random.RandomState(0)))
    assert len(batches) == 10
    for unlabelled_rows, labelled_rows in batches:
        assert len(labelled_rows) == 5 and len(unlabelled_rows) == 5
        assert set(labelled_rows) <= set(labelled)
    # The unlabelled rows are a permutation of the whole training set.
    every_unlabelled = np.concatenate([u for u, _ in batches])
    np.testing.assert_array_equal(np.sort(every_unlabelled), np.arange(50))
    # Labelled rows cycle through permutations: over 7 batches of 5 (35
    # rows) every labelled row appears exactly 5 times.
    counts = np.bincount(np.concatenate([l for _, l in batches[:7]]),
                         minlength=50)
    np.testing.assert_array_equal(counts[labelled], 5)


def test_with_as_many_labels_as_the_batch_every_batch_holds_all_of_them():
    labelled = np.arange(0, 200, 2)
    for _, labelled_rows in semi_supervised_batches(
            1000, labelled, 100, np.random.RandomState(1)):
        np.testing.assert_array_equal(np.sort(labelled_rows), labelled)


def test_batches_are_reproducible_from_the_seed():
    def epoch(seed):
        return [np.concatenate(pair) for pair in semi_supervised_batches(
            30, np.arange(10), 4, np.random.RandomState(seed))]
    for a, b in zip(epoch(5), epoch(5)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(epoch(5), epoch(6)))


def test_batches_pair_a_permutation_with_labelled_draws_with_replacement():
    rng = np.random.RandomState(0)
    batches = list(semi_supervised_batches(
        1000, np.arange(100), 100, rng, labelled_draw='with_replacement'))
    assert len(batches) == 10
    np.testing.assert_array_equal(
        np.sort(np.concatenate([u for u, _ in batches])), np.arange(1000))
    labelled = np.concatenate([l for _, l in batches])
    assert labelled.min() >= 0 and labelled.max() < 100
    # With replacement: a batch of 100 draws from 100 repeats some.
    assert all(len(np.unique(l)) < 100 for _, l in batches)
    again = list(semi_supervised_batches(
        1000, np.arange(100), 100, np.random.RandomState(0),
        labelled_draw='with_replacement'))
    for (u1, l1), (u2, l2) in zip(batches, again):
        np.testing.assert_array_equal(u1, u2)
        np.testing.assert_array_equal(l1, l2)


# -- damaged checkpoints, a full disk --------------------------------------

def written_checkpoint(tmp_path):
    counter, _ = counter_function()
    path = str(tmp_path / 'checkpoint.npz')
    training.save_checkpoint(path, [counter], np.random.RandomState(0), 4,
                             [{'epoch': 4}])
    return path, counter


@pytest.mark.parametrize('damage', ['truncated', 'flipped', 'empty'])
def test_a_damaged_checkpoint_is_named_with_what_to_do(tmp_path, damage):
    path, counter = written_checkpoint(tmp_path)
    assert training.verify_checkpoint(path) == 4
    data = bytearray(open(path, 'rb').read())
    if damage == 'truncated':
        data = data[:len(data) // 2]
    elif damage == 'flipped':
        # A byte of the stored array (zip stores it uncompressed): only its
        # CRC can tell.
        value = counter.get_value().tobytes()
        data[data.index(value)] ^= 0xFF
    else:
        data = b''
    open(path, 'wb').write(bytes(data))
    for read in (lambda: training.verify_checkpoint(path),
                 lambda: training.load_checkpoint(path, [counter],
                                                  np.random.RandomState())):
        with pytest.raises(training.CheckpointError) as error:
            read()
        message = str(error.value)
        assert path in message and 'truncated or corrupt' in message
        assert 'without --resume' in message


def test_a_full_disk_names_the_checkpoint_and_keeps_the_previous_one(
        tmp_path, monkeypatch):
    path, counter = written_checkpoint(tmp_path)
    real_savez = np.savez

    def disk_fills_up(stream, **arrays):
        real_savez(stream, **arrays)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(np, 'savez', disk_fills_up)
    counter.set_value(floatx(7.0))
    with pytest.raises(training.CheckpointWriteError) as error:
        training.save_checkpoint(path, [counter], np.random.RandomState(0),
                                 5, [])
    assert error.value.errno == errno.ENOSPC
    message = str(error.value)
    for part in ('epoch 5', path, 'No space left on device',
                 'after epoch 4) is intact', '--resume'):
        assert part in message, part
    assert os.listdir(str(tmp_path)) == ['checkpoint.npz']
    assert training.load_checkpoint(path, [counter],
                                    np.random.RandomState())[0] == 4
    assert float(counter.get_value()) == 0.0


# -- one run per folder ---------------------------------------------------

HOLD_LOCK = '''
import sys, time
from parmesan.experiments.training import FolderLock
FolderLock(sys.argv[1]).acquire({'pid': %d, 'command': 'holder'})
print('held', flush=True)
time.sleep(600)
'''


def test_the_folder_lock_is_exclusive_and_a_killed_holder_is_stale(tmp_path):
    folder = str(tmp_path / 'run')
    holder = subprocess.Popen(
        [sys.executable, '-c', HOLD_LOCK % 12345, folder],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(training.FolderInUseError) as error:
            training.FolderLock(folder).acquire({'pid': os.getpid()})
        assert 'in use by another run (pid 12345' in str(error.value)
        assert 'holder' in str(error.value) and folder in str(error.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The kernel dropped the killed holder's flock; its note is left.
    lock = training.FolderLock(folder)
    stale = lock.acquire({'pid': os.getpid()})
    assert stale == {'pid': 12345, 'command': 'holder'}
    with pytest.raises(training.FolderInUseError, match='pid %d'
                       % os.getpid()):
        training.FolderLock(folder).acquire({'pid': 1})
    lock.release()
    assert not os.path.exists(os.path.join(folder, 'run.lock'))
    assert training.FolderLock(folder).acquire({'pid': 2}) is None


def test_partial_writes_are_recognised_and_nothing_else(tmp_path):
    for name in ('.checkpoint.npz.k2j4_x9a.tmp', 'tmpab12cd34.tmp',
                 'notes.tmp', 'checkpoint.npz', '.checkpoint.npz.tmp'):
        (tmp_path / name).write_bytes(b'x' * 10)
    removed = training.remove_partial_writes(str(tmp_path))
    assert removed == [('.checkpoint.npz.k2j4_x9a.tmp', 10),
                       ('tmpab12cd34.tmp', 10)]
    assert sorted(os.listdir(str(tmp_path))) == [
        '.checkpoint.npz.tmp', 'checkpoint.npz', 'notes.tmp']
    # What atomic_write leaves when killed is of the recognised kind.
    handle, name = tempfile.mkstemp(dir=str(tmp_path),
                                    prefix='.results.json.', suffix='.tmp')
    os.close(handle)
    assert training.remove_partial_writes(str(tmp_path)) == \
        [(os.path.basename(name), 0)]


# -- logs after resumes ---------------------------------------------------

def epoch_rows(folder):
    with open(os.path.join(folder, 'log.jsonl')) as stream:
        rows = [json.loads(line) for line in stream]
    text_rows = [int(line.split()[1]) for line in
                 open(os.path.join(folder, 'log.txt'))
                 if line.startswith('epoch ')]
    return [row['epoch'] for row in rows], text_rows


def test_resumed_logs_hold_each_epoch_once_and_stay_valid_json(tmp_path):
    folder = str(tmp_path)
    counter, increment = counter_function()

    def train_epoch(epoch):
        if epoch == stop_at[0]:
            raise KeyboardInterrupt('killed')
        increment()
        return {'loss': 1.0 / epoch}
    # Two interruptions: after epoch 3 (checkpoint after 2), then after
    # epoch 5 (checkpoint after 4), each leaving a line cut short.
    for resume, stop in ((False, 4), (True, 6)):
        stop_at = [stop]
        with pytest.raises(KeyboardInterrupt):
            training.fit(train_epoch, 7, Run(folder, np.random.RandomState(0),
                                             'header', resume=resume,
                                             checkpoint_every=2),
                         [increment])
        for name in ('log.jsonl', 'log.txt'):
            with open(os.path.join(folder, name), 'a') as stream:
                stream.write('{"epoch": %d, "lo' % stop)
    stop_at = [None]
    history = training.fit(train_epoch, 7, Run(
        folder, np.random.RandomState(0), 'header', resume=True,
        checkpoint_every=2), [increment])
    assert [row['epoch'] for row in history] == list(range(1, 8))
    assert epoch_rows(folder) == (list(range(1, 8)), list(range(1, 8)))
    text = open(os.path.join(folder, 'log.txt')).read()
    assert 'dropped the log rows of epochs 5, run after that checkpoint' \
        in text
    # The counter shows every epoch trained from its checkpoint's state:
    # 7 epochs, not the 10 run in all.
    assert float(counter.get_value()) == 7


# -- a real training process killed while it writes its checkpoint ---------

#: Runs the IWAE trainer; its HANG_AT-th checkpoint write stops half-way
#: (half the bytes in the temporary file), signals MARKER and waits to be
#: killed.
HANG_IN_WRITE = '''
import io, os, sys, time
import numpy as np
real_savez, writes = np.savez, []

def savez_then_hang(stream, **arrays):
    writes.append(1)
    if len(writes) != int(os.environ['HANG_AT']):
        return real_savez(stream, **arrays)
    whole = io.BytesIO()
    real_savez(whole, **arrays)
    stream.write(whole.getvalue()[:len(whole.getvalue()) // 2])
    stream.flush()
    open(os.environ['MARKER'], 'w').close()
    time.sleep(600)
np.savez = savez_then_hang
from parmesan.experiments.vae import run
run(sys.argv[1:])
'''


@pytest.mark.slow
def test_a_kill_during_the_checkpoint_write_resumes_bit_for_bit(
        tmp_path, shared_data_dir, capsys):
    common = TINY + ['--data-dir', shared_data_dir, '-batch_norm', 'true',
                     '-nepochs', '3']
    straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
    marker = str(tmp_path / 'hanging')
    # Killed while writing the checkpoint of epoch 2: the one of epoch 1
    # is the last complete one, epoch 2's log row is already written.
    errors = open(str(tmp_path / 'stderr.txt'), 'w+')
    process = subprocess.Popen(
        [sys.executable, '-c', HANG_IN_WRITE] + common +
        ['-outfolder', killed],
        env=dict(os.environ, HANG_AT='2', MARKER=marker),
        stdout=subprocess.DEVNULL, stderr=errors)
    try:
        expected = run(common + ['-outfolder', straight])
        deadline = time.time() + 600
        while not os.path.exists(marker):
            assert process.poll() is None, open(errors.name).read()
            assert time.time() < deadline, 'the run never reached epoch 2'
            time.sleep(0.2)
        partial = [name for name in os.listdir(killed)
                   if name.endswith('.tmp')]
        assert len(partial) == 1 and partial[0].startswith('.checkpoint')
        capsys.readouterr()
        # While it lives, the folder is its own.
        with pytest.raises(SystemExit):
            run(common + ['-outfolder', killed, '--resume'])
        assert 'in use by another run (pid %d' % process.pid in \
            capsys.readouterr().err
    finally:
        process.kill()
        process.wait()
    assert training.verify_checkpoint(os.path.join(killed,
                                                   'checkpoint.npz')) == 1
    resumed = run(common + ['-outfolder', killed, '--resume'])
    reference, after_kill = checkpoint_arrays(straight), \
        checkpoint_arrays(killed)
    assert reference.keys() == after_kill.keys() and len(reference) > 20
    for key in reference:
        np.testing.assert_array_equal(after_kill[key], reference[key])
    assert resumed['test_LL'] == expected['test_LL']
    assert not [name for name in os.listdir(killed) if name.endswith('.tmp')]
    assert epoch_rows(killed) == ([1, 2, 3], [1, 2, 3])
    log = open(os.path.join(killed, 'log.txt')).read()
    for note in ('took over the lock of a run that ended without releasing '
                 'it (killed?): pid %d' % process.pid,
                 'removed 1 temporary file(s) of interrupted writes',
                 'dropped the log rows of epochs 2'):
        assert note in log, note
