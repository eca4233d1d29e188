"""Train M2 models over several seeds, one run after the other, each in
OUTFOLDER/<model>/seed<N> and resumable; then write OUTFOLDER/summary.md,
summary.csv and valid_accuracy.png (validation accuracy per epoch, mean +-
std over seeds, one curve per model). Other flags go to every run (see
examples/m2.py --help).

    python examples/m2_multiseed.py --models ExactM2,GumbelSoftmaxM2,MLP \\
        --seeds 1,2,3,4,5,6,7,8,9,10 -outfolder results/m2_10seeds
    python examples/m2_multiseed.py --summary-only --models ExactM2 \\
        --seeds 1,2,3 -outfolder results/m2_10seeds
"""
from parmesan.experiments.multiseed import run_multiseed


def main(argv=None):
    """Run the sweep and summarise; `argv` defaults to the command line.

    Returns
    -------
    list of dicts: the rows of OUTFOLDER/summary.csv.
    """
    return run_multiseed(argv)


if __name__ == '__main__':
    main()
