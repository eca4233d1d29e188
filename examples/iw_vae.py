"""Importance-weighted autoencoder (Burda et al. 2015) on MNIST.

Defaults are the original Parmesan example's (784-500-500-100 with batch
norm, ReLU, batch 100); ``--preset burda`` is Burda et al.'s setup exactly.
Writes log.txt, log.jsonl, checkpoint.npz, results.json and PNG plots to
-outfolder.

    python examples/iw_vae.py -iw_samples 5 -outfolder results/iwae_k5
    python examples/iw_vae.py --preset burda -iw_samples 5
"""
from parmesan.experiments.trainers import TRAINERS

#: ``main(argv=None)`` trains, evaluates, writes the run folder and returns
#: the results dict; `argv` defaults to the command line.
main = TRAINERS['iw_vae'].run

if __name__ == '__main__':
    main()
