"""Variational autoencoder (Kingma & Welling 2013) with the analytic KL.

Defaults are the original Parmesan example's: Larochelle's fixed binarised
MNIST, 784-200-200-100 softplus networks without batch norm, batch 100,
Adam at 3e-4 (Lasagne's epsilon 1e-8) with total-norm 5 and element-wise
1 gradient clipping, 1000 epochs, seed 1234, no learning-rate annealing.
Every flag of ``examples/iw_vae.py`` still overrides them (``-iw_samples``
must stay 1: the analytic KL is the single-sample ELBO). Writes log.txt,
log.jsonl, checkpoint.npz, results.json and PNG plots to -outfolder.

    python examples/vae_vanilla.py
    python examples/vae_vanilla.py -dataset sample -nepochs 100
"""
from parmesan.experiments.vae import run

#: The original vae_vanilla.py's hard-coded settings, as flag defaults.
VAE_VANILLA_DEFAULTS = dict(
    dataset='fixed', batch_size=100, nhidden=200, nlayers=2, nlatent=100,
    nonlin_enc='softplus', nonlin_dec='softplus', lr=3e-4, nepochs=1000,
    batch_norm=False, adam_epsilon=1e-8, max_norm=5.0, clip_value=1.0,
    # A factor of 1 switches annealing off whatever -nepochs is.
    anneal_lr_factor=1.0, anneal_lr_epoch=1000,
    seed=1234, outfolder='results/vae_vanilla')


def main(argv=None):
    """Train and evaluate; `argv` defaults to the command line.

    Returns
    -------
    dict: the results written to OUTFOLDER/results.json.

    Example
    -------
    >>> main(['-nepochs', '2', '--train-subset', '300', '-outfolder', 'tmp'])
    ... # doctest: +SKIP
    """
    return run(argv, description=__doc__.split('\n\n')[0],
               defaults=VAE_VANILLA_DEFAULTS, analytic_kl=True)


if __name__ == '__main__':
    main()
