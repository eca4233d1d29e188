"""The shared training loop: batching, schedules, clipped Adam against
numpy, atomic checkpoints, the NaN guard, and exact resume."""
import os

import numpy as np
import pytest
import theano
import theano.tensor as T

from parmesan import training
from parmesan.vae_training import run
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


def test_burda_schedule_matches_the_paper():
    schedule, epochs = training.burda_schedule(1e-3)
    assert epochs == sum(3 ** i for i in range(8)) == 3280
    assert schedule(1) == 1e-3
    stage_of_epoch = np.repeat(np.arange(8), [3 ** i for i in range(8)])
    for epoch in (2, 4, 5, 13, 14, 40, 41, 3280):
        assert np.isclose(schedule(epoch),
                          1e-3 * 10 ** (-stage_of_epoch[epoch - 1] / 7.))


def test_step_annealing_starts_at_the_given_epoch():
    schedule = training.step_annealing_schedule(1.0, 0.5, 3)
    assert [schedule(e) for e in (1, 3, 4, 6)] == [1.0, 1.0, 0.5, 0.125]


def test_clipped_adam_matches_numpy():
    rng = np.random.RandomState(0)
    targets = rng.randn(2, 3) * 50
    params = [theano.shared(floatx(np.zeros(3))) for _ in range(2)]
    loss = sum(T.sum((p - t) ** 2) for p, t in zip(params, floatx(targets)))
    step = theano.function([], loss, updates=training.adam_with_clipping(
        loss, params, 0.1, epsilon=1e-4, max_norm=5.0, clip_value=1.0))
    values = [np.zeros(3), np.zeros(3)]
    moments = [[np.zeros(3), np.zeros(3)] for _ in range(2)]
    for t in range(1, 4):
        step()
        grads = [2 * (v - tg) for v, tg in zip(values, targets)]
        norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
        grads = [np.clip(g * min(1.0, 5.0 / (norm + 1e-7)), -1, 1)
                 for g in grads]
        for i, g in enumerate(grads):
            m, v = moments[i]
            m[:] = 0.9 * m + 0.1 * g
            v[:] = 0.999 * v + 0.001 * g ** 2
            rate = 0.1 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            values[i] = values[i] - rate * m / (np.sqrt(v) + 1e-4)
    for param, expected in zip(params, values):
        np.testing.assert_allclose(param.get_value(), expected, rtol=1e-4)


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
        training.fit(train_epoch, 5, str(tmp_path), [increment],
                     np.random.RandomState(0), checkpoint_every=1)
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


TINY = ['-train_subset', '200', '-nhidden', '16', '-nlatent', '4',
        '-batch_size', '50', '-iw_samples', '2', '-eval_epoch', '100',
        '-eval_iw', '3', '-eval_subset', '50', '-final_iw', '3',
        '-checkpoint_every', '1', '--seed', '5']


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
