"""Ladder network (Rasmus et al. 2015) on permutation-invariant MNIST with
100 labels; the paper reports 1.06 % test error (0.84 % with 1000 labels,
0.57 % with all).

Defaults are the paper's: 784-1000-500-250-250-250-10 with batch
normalisation and ReLU, Gaussian noise of std 0.3, the Gaussian
combinator, denoising weights 1000,10,0.1,...,0.1, Adam at 0.002 for 100
epochs then decaying linearly to 0 by epoch 150, batches of 100 labelled +
100 unlabelled images. Writes log.txt, log.jsonl, checkpoint.npz,
results.json, errors.png and costs.png to -outfolder.

    python examples/mnist_ladder.py --data-dir /path/to/mnist
    python examples/mnist_ladder.py --labels 1000 --noise-std 0.2 \\
        -lambdas 2000,20,0.1,0.1,0.1,0.1,0.1
"""
from parmesan.experiments.trainers import TRAINERS

#: ``main(argv=None)`` trains, evaluates, writes the run folder and returns
#: the results dict; `argv` defaults to the command line.
main = TRAINERS['mnist_ladder'].run

if __name__ == '__main__':
    main()
