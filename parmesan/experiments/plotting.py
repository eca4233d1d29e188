"""PNG figures the trainers write: curves, image grids, per-latent bars.

Every figure says what it shows: titles name the quantity and the images
and samples it was computed on, epochs get integer ticks, the y-range of a
curve leaves out early epochs that would squash the rest
(:func:`robust_limits`), and image grids label their rows.

Each function writes its PNG and closes the figure; with ``close=False`` it
returns the figure instead (for tests, or to draw more on it).
"""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ['robust_limits', 'plot_history', 'plot_panels', 'save_image_grid',
           'plot_per_latent', 'plot_seed_curves']


def robust_limits(curves, margin=0.08):
    """y-limits that show the useful part of training curves.

    The limits span the values after the first epoch(s) (the first tenth of
    the epochs, at least one), with a margin. Earlier values inside that
    range widened by its own height keep the automatic limits (None); only
    early values far outside it, which would squash the rest, are left off
    the scale.

    Parameters
    ----------
    curves : list of (epochs, values)
    margin : float
        Of the late range, added above and below.

    Returns
    -------
    (low, high), or None for matplotlib's automatic limits.

    Example
    -------
    >>> robust_limits([([1, 2, 3, 4], [-540., -200., -190., -185.])])
    (-201.2, -183.8)
    >>> robust_limits([([1, 2, 3], [5., 4., 3.])]) is None
    True
    """
    points = [(epoch, value) for epochs, values in curves
              for epoch, value in zip(epochs, values)
              if value is not None and np.isfinite(value)]
    epochs = sorted({epoch for epoch, _ in points})
    if len(epochs) < 3:
        return None
    skip = max(1, len(epochs) // 10)
    first_late = epochs[skip]
    late = [value for epoch, value in points if epoch >= first_late]
    low, high = min(late), max(late)
    height = high - low or abs(high) * 0.05 or 1.0
    if all(low - height <= value <= high + height for _, value in points):
        return None
    return (round(low - margin * height, 10),
            round(high + margin * height, 10))


def _curve(history, key):
    points = [(row['epoch'], row[key]) for row in history
              if row.get(key) is not None]
    return tuple(zip(*points)) if points else ((), ())


def _draw_curves(axis, history, keys, ylabel, log_scale=False):
    curves = []
    for key in keys:
        epochs, values = _curve(history, key)
        if epochs:
            axis.plot(epochs, values, marker='.' if len(epochs) < 30
                      else None, label=key)
            curves.append((epochs, values))
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log_scale:
        axis.set_yscale('log')
    else:
        limits = robust_limits(curves)
        if limits is not None:
            axis.set_ylim(*limits)
            axis.annotate('first epoch(s) off the scale', (0.01, 0.01),
                          xycoords='axes fraction', fontsize=8,
                          color='0.4')
    if curves:
        axis.legend(fontsize=8)
    return curves


def plot_panels(history, panels, path, title='', close=True):
    """Logged numbers against the epoch, one panel per group of keys
    (sharing the epoch axis); keys missing from a row (e.g. evaluations
    made every few epochs) are skipped.

    Parameters
    ----------
    history : list of dicts with an 'epoch' key
    panels : list of (keys, ylabel) or (keys, ylabel, log_scale)
    path : str, the PNG to write
    title : str
        What is plotted, on which images, with how many samples.
    close : bool
        Close the figure (else return it).
    """
    figure, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False,
                                figsize=(7, 2.2 + 2.3 * len(panels)))
    for axis, panel in zip(axes[:, 0], panels):
        keys, ylabel = panel[:2]
        _draw_curves(axis, history, keys, ylabel,
                     log_scale=len(panel) > 2 and panel[2])
    axes[-1, 0].set_xlabel('epoch')
    axes[0, 0].set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    if not close:
        return figure
    plt.close(figure)


def plot_history(history, keys, path, title='', ylabel='', close=True):
    """Plot logged numbers against the epoch in one panel (see
    :func:`plot_panels`).

    Parameters
    ----------
    history : list of dicts with an 'epoch' key
    keys : list of str
    path : str, the PNG to write
    title, ylabel : str
    close : bool
    """
    return plot_panels(history, [(keys, ylabel)], path, title, close)


def save_image_grid(images, path, columns=10, image_shape=(28, 28),
                    title='', row_labels=None, close=True):
    """Tile flattened images (N, H*W) with values in [0, 1] into one PNG.

    Parameters
    ----------
    images : array (N, H*W)
    path : str
    columns : int
    image_shape : (H, W)
    title : str
    row_labels : list of str, optional
        One label per row, written left of it (e.g. 'data' and
        'reconstruction', or the class).
    close : bool
    """
    images = np.asarray(images).reshape((-1,) + tuple(image_shape))
    rows = int(np.ceil(len(images) / float(columns)))
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError('%d row labels for %d rows' % (len(row_labels),
                                                       rows))
    height, width = image_shape
    canvas = np.ones((rows * (height + 1), columns * (width + 1)))
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        canvas[r * (height + 1):r * (height + 1) + height,
               c * (width + 1):c * (width + 1) + width] = image
    label_width = 0 if row_labels is None else \
        0.09 * max(len(label) for label in row_labels)
    figure, axis = plt.subplots(figsize=(columns * 0.6 + label_width,
                                         rows * 0.6 + 0.5))
    axis.imshow(canvas, cmap='gray', vmin=0, vmax=1, interpolation='nearest')
    axis.set_xticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)
    if row_labels is None:
        axis.set_yticks([])
    else:
        axis.set_yticks([r * (height + 1) + height / 2.
                         for r in range(rows)])
        axis.set_yticklabels(row_labels, fontsize=8)
        axis.tick_params(axis='y', length=0)
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    if not close:
        return figure
    plt.close(figure)


def plot_per_latent(values, path, ylabel, threshold=None, title='',
                    close=True):
    """Bar chart of one number per latent unit (KL, activity), sorted."""
    values = np.sort(np.asarray(values))[::-1]
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.bar(np.arange(len(values)), values, color='tab:blue')
    if threshold is not None:
        axis.axhline(threshold, color='tab:red', linestyle='--',
                     label='threshold %g' % threshold)
        axis.legend()
    axis.set_yscale('log' if values.min() > 0 else 'linear')
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel('latent unit (sorted)')
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    if not close:
        return figure
    plt.close(figure)


def plot_seed_curves(curves, path, ylabel='', title='', close=True):
    """One curve per setting over seeds: the mean over the seeds that
    reached each epoch, with a band of +- one standard deviation where
    two or more seeds did. A setting run with a single seed is drawn as
    that seed's line, labelled with the seed.

    Parameters
    ----------
    curves : dict, setting label -> {seed: (epochs, values)}
    path : str, the PNG to write
    ylabel, title : str
    close : bool
    """
    figure, axis = plt.subplots(figsize=(7, 4.5))
    drawn = []
    for label, by_seed in curves.items():
        values_at = {}
        for epochs, values in by_seed.values():
            for epoch, value in zip(epochs, values):
                values_at.setdefault(epoch, []).append(value)
        if not values_at:
            continue
        epochs = sorted(values_at)
        mean = np.array([np.mean(values_at[e]) for e in epochs])
        if len(by_seed) == 1:
            legend = '%s (seed %s)' % (label, list(by_seed)[0])
        else:
            legend = '%s (mean of %d seeds)' % (label, len(by_seed))
        line, = axis.plot(epochs, mean, marker='.' if len(epochs) < 30
                          else None, label=legend)
        drawn.append((epochs, mean))
        spread = [np.std(values_at[e], ddof=1) if len(values_at[e]) > 1
                  else np.nan for e in epochs]
        if not np.all(np.isnan(spread)):
            axis.fill_between(epochs, mean - spread, mean + spread,
                              color=line.get_color(), alpha=0.2)
    axis.set_xlabel('epoch')
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel(ylabel)
    limits = robust_limits(drawn)
    if limits is not None:
        axis.set_ylim(*limits)
    axis.set_title(title + ('\nbands: +- 1 std over seeds'
                            if any(len(c) > 1 for c in curves.values())
                            else ''), fontsize=10)
    axis.grid(alpha=0.3)
    if any(curves.values()):
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    if not close:
        return figure
    plt.close(figure)
