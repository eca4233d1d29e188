"""Semi-supervised M2 on MNIST with 100 labels (Kingma et al. 2014), with the
label y marginalised exactly or relaxed (Gumbel-softmax, Jang et al. 2016;
logistic normal; straight-through versions), or a supervised MLP baseline.

Defaults are vae_ssl's setup (50k/10k/10k, dynamic binarisation, 10 labels
per class, batches of 100 unlabelled + 100 labelled, z of 50, maxout with
batch norm in q, classifier weight 128 annealed in over 50000 iterations,
Adam 5e-4, 300 epochs, sharpening 3), with its bugs fixed. Writes log.txt,
log.jsonl, checkpoint.npz, results.json and PNG plots to -outfolder.

    python examples/m2.py -model ExactM2 --seed 1
    python examples/m2.py -model GumbelSoftmaxM2 -outfolder results/gs --resume
"""
from parmesan.experiments.trainers import TRAINERS

#: ``main(argv=None)`` trains, evaluates, writes the run folder and returns
#: the results dict; `argv` defaults to the command line.
main = TRAINERS['m2'].run

if __name__ == '__main__':
    main()
