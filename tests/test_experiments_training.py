"""The shared training loop: batching, atomic checkpoints, the NaN guard,
and exact resume."""
import os

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

    def train_epoch(epoch):
        increment()
        return {'loss': float('nan') if epoch == 3 else 1.0 / epoch}
    with pytest.raises(training.NonFiniteError,
                       match='loss became nan in epoch 3'):
        training.fit(train_epoch, 5, Run(str(tmp_path),
                                         np.random.RandomState(0),
                                         checkpoint_every=1), [increment])
    epoch, history = training.load_checkpoint(
        str(tmp_path / 'checkpoint.npz'), [counter], np.random.RandomState())
    assert epoch == 2 and float(counter.get_value()) == 2
    assert 'STOPPED: loss became nan' in (tmp_path / 'log.txt').read_text()


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
