"""Run a trainer by name: ``python -m parmesan.experiments NAME [flags]``
(installed as the command ``parmesan-train NAME [flags]``), e.g.
``python -m parmesan.experiments iw_vae -iw_samples 5``; ``sweep`` runs one
over seeds and settings (``python -m parmesan.experiments sweep --help``,
installed as ``parmesan-sweep``); ``evaluate FOLDER`` evaluates a saved run
(``python -m parmesan.experiments evaluate --help``)."""
import os
import sys

from .trainers import TRAINERS


def _program_name():
    """How the user called us: ``parmesan-train`` or ``python -m ...``."""
    name = os.path.basename(sys.argv[0])
    return 'python -m parmesan.experiments' if name in ('__main__.py', '-c', '') \
        else name


def main(argv=None):
    """Run the trainer named by the first of `argv` (default: the command
    line) with the rest as its flags; return what it returns."""
    argv = sys.argv[1:] if argv is None else list(argv)
    names = list(TRAINERS) + ['sweep', 'evaluate']
    program = _program_name()
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in names:
        usage = ('usage: %s {%s} [flags]\n'
                 '       (NAME --help lists its flags)'
                 % (program, ','.join(names)))
        if argv and argv[0] not in ('-h', '--help'):
            sys.exit('%s\nerror: unknown trainer %r' % (usage, argv[0]))
        print(usage)
        return None
    # argparse's usage line and the run's log header name the program from
    # sys.argv[0]: make it the whole command, trainer included
    saved_program, sys.argv[0] = sys.argv[0], '%s %s' % (program, argv[0])
    try:
        if argv[0] == 'evaluate':
            from .runs import evaluate_main
            return evaluate_main(argv[1:], prog=sys.argv[0])
        if argv[0] == 'sweep':
            from .sweep import main as sweep_main
            return sweep_main(argv[1:])
        return TRAINERS[argv[0]].run(argv[1:])
    finally:
        sys.argv[0] = saved_program


if __name__ == '__main__':
    main()
