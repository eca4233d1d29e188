"""Run a trainer by name: ``python -m parmesan.experiments NAME [flags]``,
e.g. ``python -m parmesan.experiments iw_vae -iw_samples 5``; ``sweep``
runs one over seeds and settings (``python -m parmesan.experiments sweep
--help``)."""
import sys

from .trainers import TRAINERS


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    names = list(TRAINERS) + ['sweep']
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in names:
        usage = ('usage: python -m parmesan.experiments {%s} [flags]\n'
                 '       (NAME --help lists its flags)' % ','.join(names))
        if argv and argv[0] not in ('-h', '--help'):
            sys.exit('%s\nerror: unknown trainer %r' % (usage, argv[0]))
        print(usage)
        return None
    if argv[0] == 'sweep':
        from .sweep import main as sweep_main
        return sweep_main(argv[1:])
    return TRAINERS[argv[0]].run(argv[1:])


if __name__ == '__main__':
    main()
