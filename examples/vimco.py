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
from parmesan.experiments.trainers import TRAINERS

#: ``main(argv=None)`` trains, evaluates, writes the run folder and returns
#: the results dict; `argv` defaults to the command line.
main = TRAINERS['vimco'].run

if __name__ == '__main__':
    main()
