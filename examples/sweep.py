"""Run any trainer over seeds and settings, locally or on a Dask cluster,
then summarise over seeds (mean, standard deviation, standard error).

    python examples/sweep.py m2 --models ExactM2,GumbelSoftmaxM2 \\
        --seeds 1-10 -outfolder results/m2_10seeds
    python examples/sweep.py iw_vae --set iw_samples=1,5 --seeds 1-3 \\
        --workers 2 -outfolder results/burda -- --preset burda
    python examples/sweep.py mnist_ladder --seeds 1-5 \\
        --scheduler tcp://scheduler:8786

See ``python examples/sweep.py --help`` and the README's "Sweeps".
"""
from parmesan.experiments.sweep import main

if __name__ == '__main__':
    main()
