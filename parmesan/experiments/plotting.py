"""PNG figures the trainers write: curves, image grids, per-latent bars."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ['plot_history', 'save_image_grid', 'plot_per_latent',
           'plot_seed_curves']


def plot_history(history, keys, path, title='', ylabel=''):
    """Plot logged numbers against the epoch; keys missing from a row (for
    instance evaluations made every few epochs) are skipped.

    Parameters
    ----------
    history : list of dicts with an 'epoch' key
    keys : list of str
    path : str, the PNG to write
    """
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for key in keys:
        points = [(row['epoch'], row[key]) for row in history if key in row]
        if points:
            epochs, values = zip(*points)
            axis.plot(epochs, values, marker='.' if len(points) < 30 else None,
                      label=key)
    axis.set_xlabel('epoch')
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def save_image_grid(images, path, columns=10, image_shape=(28, 28),
                    title=''):
    """Tile flattened images (N, H*W) with values in [0, 1] into one PNG."""
    images = np.asarray(images).reshape((-1,) + tuple(image_shape))
    rows = int(np.ceil(len(images) / float(columns)))
    height, width = image_shape
    canvas = np.ones((rows * (height + 1), columns * (width + 1)))
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        canvas[r * (height + 1):r * (height + 1) + height,
               c * (width + 1):c * (width + 1) + width] = image
    figure, axis = plt.subplots(figsize=(columns * 0.6, rows * 0.6 + 0.4))
    axis.imshow(canvas, cmap='gray', vmin=0, vmax=1, interpolation='nearest')
    axis.axis('off')
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_per_latent(values, path, ylabel, threshold=None, title=''):
    """Bar chart of one number per latent unit (KL, activity), sorted."""
    values = np.sort(np.asarray(values))[::-1]
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.bar(np.arange(len(values)), values, color='tab:blue')
    if threshold is not None:
        axis.axhline(threshold, color='tab:red', linestyle='--',
                     label='threshold %g' % threshold)
        axis.legend()
    axis.set_yscale('log' if values.min() > 0 else 'linear')
    axis.set_xlabel('latent unit (sorted)')
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_seed_curves(curves, path, ylabel='', title=''):
    """One curve per setting over seeds: the mean over the seeds that
    reached each epoch, with a band of +- one standard deviation where
    two or more seeds did (a single seed is drawn as a plain line).

    Parameters
    ----------
    curves : dict, setting label -> {seed: (epochs, values)}
    path : str, the PNG to write
    """
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, by_seed in curves.items():
        values_at = {}
        for epochs, values in by_seed.values():
            for epoch, value in zip(epochs, values):
                values_at.setdefault(epoch, []).append(value)
        if not values_at:
            continue
        epochs = sorted(values_at)
        mean = np.array([np.mean(values_at[e]) for e in epochs])
        line, = axis.plot(epochs, mean, marker='.' if len(epochs) < 30
                          else None,
                          label='%s (%d seed%s)' % (
                              label, len(by_seed),
                              '' if len(by_seed) == 1 else 's'))
        spread = [np.std(values_at[e], ddof=1) if len(values_at[e]) > 1
                  else np.nan for e in epochs]
        if not np.all(np.isnan(spread)):
            axis.fill_between(epochs, mean - spread, mean + spread,
                              color=line.get_color(), alpha=0.2)
    axis.set_xlabel('epoch')
    axis.set_ylabel(ylabel)
    axis.set_title(title + ('\nbands: +- 1 std over seeds'
                            if any(len(c) > 1 for c in curves.values())
                            else ''))
    axis.grid(alpha=0.3)
    if any(curves.values()):
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
