"""parmesan.updates: clipped Adam against numpy, and the learning-rate
schedules against their papers' formulas."""
import numpy as np
import pytest
import theano
import theano.tensor as T

from parmesan import updates
from parmesan.updates import (burda_schedule, floored_decay_schedule,
                              linear_decay_schedule, linear_warmup,
                              step_annealing_schedule)
from conftest import floatx


def test_burda_schedule_matches_the_paper():
    schedule, epochs = burda_schedule(1e-3)
    assert epochs == sum(3 ** i for i in range(8)) == 3280
    assert schedule(1) == 1e-3
    stage_of_epoch = np.repeat(np.arange(8), [3 ** i for i in range(8)])
    for epoch in (2, 4, 5, 13, 14, 40, 41, 3280):
        assert np.isclose(schedule(epoch),
                          1e-3 * 10 ** (-stage_of_epoch[epoch - 1] / 7.))


def test_step_annealing_starts_at_the_given_epoch():
    schedule = step_annealing_schedule(1.0, 0.5, 3)
    assert [schedule(e) for e in (1, 3, 4, 6)] == [1.0, 1.0, 0.5, 0.125]


def test_clipped_adam_matches_numpy():
    rng = np.random.RandomState(0)
    targets = rng.randn(2, 3) * 50
    params = [theano.shared(floatx(np.zeros(3))) for _ in range(2)]
    loss = sum(T.sum((p - t) ** 2) for p, t in zip(params, floatx(targets)))
    step = theano.function([], loss, updates=updates.adam_with_clipping(
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


def test_linear_warmup_matches_vae_ssl_formula():
    assert linear_warmup(1, 50000) == pytest.approx(0.01002)
    assert linear_warmup(25000, 50000) == pytest.approx(0.51)
    assert linear_warmup(49500, 50000) == 1.0
    assert linear_warmup(1, 1) == 1.0
    t = T.scalar()
    f = theano.function([t], linear_warmup(t, 100.0))
    np.testing.assert_allclose([f(1), f(50), f(500)], [0.02, 0.51, 1.0])


def test_learning_rate_decays_by_1_0005_per_epoch_down_to_1e_4():
    schedule = floored_decay_schedule(5e-4)
    assert schedule(1) == 5e-4
    assert schedule(2) == pytest.approx(5e-4 / 1.0005)
    assert schedule(301) == pytest.approx(5e-4 / 1.0005 ** 300)
    floor = floored_decay_schedule(1.0004e-4)
    assert floor(2) == pytest.approx(1.0004e-4 / 1.0005 ** 0)
    assert floor(100) == floor(2)


def test_learning_rate_is_constant_then_decays_linearly():
    schedule = linear_decay_schedule(0.002, 100, 150)
    assert schedule(1) == schedule(100) == 0.002
    expected = [0.002 * (151 - e) / 51. for e in range(101, 151)]
    np.testing.assert_allclose([schedule(e) for e in range(101, 151)],
                               expected)
    assert np.all(np.diff(expected) < 0) and expected[-1] > 0
