"""Importance-weighted autoencoder with normalizing flows (Rezende &
Mohamed 2015) after the Gaussian sample layer, on MNIST.

z_0 ~ q_0(z|x) passes through -nflows flow layers (``--flow planar``, the
original Parmesan example's, or ``radial`` or ``iaf``); each importance
weight is log p(x|z_K) + log p(z_K) - log q_0(z_0|x) + sum_k logdet_k.
The other defaults are ``examples/iw_vae.py``'s. Writes log.txt, log.jsonl,
checkpoint.npz, results.json and PNG plots to -outfolder.

    python examples/iw_vae_normflow.py -iw_samples 5 -nflows 5
    python examples/iw_vae_normflow.py --flow iaf -nflows 2
"""
from parmesan.experiments.vae import run


def main(argv=None):
    """Train and evaluate; `argv` defaults to the command line.

    Returns
    -------
    dict: the results written to OUTFOLDER/results.json.

    Example
    -------
    >>> main(['--flow', 'radial', '-nflows', '2', '-nepochs', '2',
    ...       '--train-subset', '300', '-outfolder', 'tmp'])
    ... # doctest: +SKIP
    """
    return run(argv, description=__doc__.split('\n\n')[0],
               defaults={'outfolder': 'results/iw_vae_normflow'}, flows=True)


if __name__ == '__main__':
    main()
