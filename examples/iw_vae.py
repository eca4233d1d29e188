"""Importance-weighted autoencoder (Burda et al. 2015) on MNIST.

Defaults are the original Parmesan example's (784-500-500-100 with batch
norm, ReLU, batch 100); ``--preset burda`` is Burda et al.'s setup exactly.
Writes log.txt, log.jsonl, checkpoint.npz, results.json and PNG plots to
-outfolder.

    python examples/iw_vae.py -iw_samples 5 -outfolder results/iwae_k5
    python examples/iw_vae.py --preset burda -iw_samples 5
"""
from parmesan.experiments.vae import run


def main(argv=None):
    """Train and evaluate; `argv` defaults to the command line.

    Returns
    -------
    dict: the results written to OUTFOLDER/results.json.
    """
    return run(argv, description=__doc__.split('\n\n')[0])


if __name__ == '__main__':
    main()
