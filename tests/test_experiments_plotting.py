"""The trainers' figures say what they show: informative y-ranges, integer
epoch ticks, labelled image rows, one seed drawn as that seed."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from parmesan.experiments.plotting import (plot_history, plot_panels,
                                           plot_seed_curves, robust_limits,
                                           save_image_grid)


def history_with_a_first_epoch_outlier(epochs=12, seed=0):
    rng = np.random.RandomState(seed)
    rows = [{'epoch': 1, 'train_bound': -540.0}]
    for epoch in range(2, epochs + 1):
        rows.append({'epoch': epoch,
                     'train_bound': -100 - 20.0 / epoch + rng.rand()})
        if epoch % 3 == 0:
            rows[-1]['test_L5'] = rows[-1]['train_bound'] - 2
    return rows


def test_the_y_range_shows_the_late_epochs_without_the_first():
    rows = history_with_a_first_epoch_outlier()
    late = [row[key] for row in rows[1:] for key in ('train_bound',
                                                     'test_L5')
            if key in row]
    low, high = robust_limits([
        ([r['epoch'] for r in rows if key in r],
         [r[key] for r in rows if key in r])
        for key in ('train_bound', 'test_L5')])
    assert low <= min(late) and max(late) <= high
    assert not low <= -540.0 <= high
    # The margin is small next to the late range: the outlier does not
    # leave the curves a sliver of the plot.
    assert high - low < 1.3 * (max(late) - min(late))


def test_curves_without_outliers_keep_the_automatic_range():
    assert robust_limits([([1, 2, 3, 4], [-95., -94., -93.5, -93.])]) is None
    assert robust_limits([([1, 2], [-540., -100.])]) is None


def test_history_plot_has_integer_epochs_the_range_and_the_title(tmp_path):
    rows = history_with_a_first_epoch_outlier(epochs=7)
    title = 'iw_vae: test L_5 on the first 500 test images'
    figure = plot_history(rows, ['train_bound', 'test_L5'],
                          str(tmp_path / 'c.png'), title=title,
                          ylabel='nats', close=False)
    axis = figure.axes[0]
    try:
        assert axis.get_title() == title
        ticks = [t for t in axis.get_xticks()
                 if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        low, high = axis.get_ylim()
        assert low > -540 and high >= max(r['train_bound'] for r in rows)
        assert [line.get_label() for line in axis.get_lines()] == \
            ['train_bound', 'test_L5']
    finally:
        plt.close(figure)
    assert (tmp_path / 'c.png').stat().st_size > 0


def test_a_total_cost_gets_its_own_panel_and_per_layer_costs_a_log_axis(
        tmp_path):
    rows = [{'epoch': e, 'train_cost': 105.0 / e, 'train_denoise0': 1.0 / e,
             'train_denoise1': 0.01 / e} for e in range(1, 5)]
    figure = plot_panels(rows, [(['train_cost'], 'total cost'),
                                (['train_denoise0', 'train_denoise1'],
                                 'cost', True)],
                         str(tmp_path / 'costs.png'), 'ladder', close=False)
    try:
        top, bottom = figure.axes
        assert [l.get_label() for l in top.get_lines()] == ['train_cost']
        assert bottom.get_yscale() == 'log' and top.get_yscale() == 'linear'
        assert bottom.get_xlabel() == 'epoch'
    finally:
        plt.close(figure)


def test_image_rows_are_labelled(tmp_path):
    images = np.random.RandomState(1).rand(20, 784)
    labels = ['data', 'reconstruction']
    figure = save_image_grid(images, str(tmp_path / 'r.png'),
                             row_labels=labels, close=False)
    try:
        axis = figure.axes[0]
        assert [t.get_text() for t in axis.get_yticklabels()] == labels
        # One label per row of 28 pixels and a separating line.
        np.testing.assert_allclose(axis.get_yticks(), [14, 43])
    finally:
        plt.close(figure)
    with pytest.raises(ValueError, match='3 row labels for 2 rows'):
        save_image_grid(images, str(tmp_path / 'x.png'),
                        row_labels=labels + ['extra'])


def test_one_seed_is_drawn_as_that_seed_not_as_a_mean(tmp_path):
    curves = {'MLP': {3: ([1, 2, 3], [0.5, 0.6, 0.7])}}
    figure = plot_seed_curves(curves, str(tmp_path / 's.png'),
                              title='m2: valid_acc per epoch, seed 3',
                              close=False)
    try:
        axis = figure.axes[0]
        line, = axis.get_lines()
        assert line.get_label() == 'MLP (seed 3)'
        np.testing.assert_array_equal(line.get_ydata(), [0.5, 0.6, 0.7])
        assert 'std' not in axis.get_title() and not axis.collections
    finally:
        plt.close(figure)
    two = {'MLP': {1: ([1, 2], [0.5, 0.6]), 2: ([1, 2], [0.7, 0.8])}}
    figure = plot_seed_curves(two, str(tmp_path / 't.png'), close=False)
    try:
        axis = figure.axes[0]
        assert axis.get_lines()[0].get_label() == 'MLP (mean of 2 seeds)'
        np.testing.assert_allclose(axis.get_lines()[0].get_ydata(),
                                   [0.6, 0.7])
        assert '+- 1 std over seeds' in axis.get_title()
    finally:
        plt.close(figure)
