"""Binary-latent VAE trained with VIMCO (Mnih & Rezende 2016) on MNIST.

Defaults are the original Parmesan example's: 200 sigmoid Bernoulli latents
with a Bernoulli(0.5) prior, three 200-unit hidden layers in the encoder and
the decoder, K = 50 samples, batch 24, Adam at 1e-3 annealed by 0.99 per
epoch from epoch 500, MNIST re-binarised every epoch; the test set is
evaluated with the K-sample bound every epoch. Unlike the original, each
sample's baseline is the paper's (the geometric mean of the other weights),
the score term is averaged over the batch like the bound, and batch norm is
off (``-batch_norm true`` turns it on). Writes log.txt, log.jsonl,
checkpoint.npz, results.json and PNG plots to -outfolder.

    python examples/vimco.py
    python examples/vimco.py -iw_samples 5 --prior learned -nepochs 100
"""
from parmesan.experiments.vimco import run


def main(argv=None):
    """Train and evaluate; `argv` defaults to the command line.

    Returns
    -------
    dict: the results written to OUTFOLDER/results.json.

    Example
    -------
    >>> main(['-iw_samples', '5', '-nepochs', '2', '--train-subset', '300',
    ...       '-outfolder', 'tmp'])                     # doctest: +SKIP
    """
    return run(argv, description=__doc__.split('\n\n')[0])


if __name__ == '__main__':
    main()
