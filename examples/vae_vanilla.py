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
from parmesan.experiments.trainers import TRAINERS

#: ``main(argv=None)`` trains, evaluates, writes the run folder and returns
#: the results dict; `argv` defaults to the command line.
main = TRAINERS['vae_vanilla'].run

if __name__ == '__main__':
    main()
