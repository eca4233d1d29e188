"""Train M2 models over several seeds, each run in OUTFOLDER/model=<M>/
seed<N> and resumable; then write OUTFOLDER/summary.md, summary.csv and
curves.png (validation accuracy per epoch, mean +- std over seeds, one curve
per model). It is ``examples/sweep.py m2``; other flags go to every run (see
examples/m2.py --help).

    python examples/m2_multiseed.py --models ExactM2,GumbelSoftmaxM2,MLP \\
        --seeds 1-10 -outfolder results/m2_10seeds
    python examples/m2_multiseed.py --summary-only --models ExactM2 \\
        --seeds 1,2,3 -outfolder results/m2_10seeds
"""
import sys

from parmesan.experiments import sweep


def main(argv=None):
    """Run the sweep and summarise; `argv` defaults to the command line.

    Returns
    -------
    list of dicts: the rows of OUTFOLDER/summary.csv.
    """
    return sweep.main(['m2'] + list(sys.argv[1:] if argv is None else argv))


if __name__ == '__main__':
    main()
