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
from parmesan.experiments.trainers import TRAINERS

#: ``main(argv=None)`` trains, evaluates, writes the run folder and returns
#: the results dict; `argv` defaults to the command line.
main = TRAINERS['iw_vae_normflow'].run

if __name__ == '__main__':
    main()
