"""What a trainer shows while Theano compiles.

A cold compile cache makes Theano's first ``theano.function`` of a model
take minutes, silently. :func:`compiling` wraps that call: it says what is
being compiled, how long it has taken and how many C modules Theano has
built so far, and at the end how long the whole took.
"""
import sys
import threading
import time
from contextlib import contextmanager

__all__ = ['modules_built', 'compiling']


def modules_built():
    """The number of C modules Theano has compiled in this process (not
    those it found in its compile cache)."""
    from theano.gof.cc import get_module_cache
    return get_module_cache().stats[2]


def _seconds(value):
    return '%.0f s' % value if value >= 10 else '%.1f s' % value


@contextmanager
def compiling(what, stream=None, interval=None):
    """Report on `stream` while the body compiles `what`.

    On a terminal one line is redrawn every second; elsewhere (a log, CI)
    a line is written every `interval` seconds (default 30), so a log shows
    that the run is alive without filling up. The closing line gives the
    total time and the C modules built (0: everything came from the
    cache).

    Parameters
    ----------
    what : str
        E.g. 'the training function'.
    stream : file-like, optional (default: sys.stdout)
    interval : float, optional
        Seconds between two reports.

    Example
    -------
    >>> import io
    >>> import theano, theano.tensor as T
    >>> x, log = T.vector('x'), io.StringIO()
    >>> with compiling('a function that doubles', stream=log):
    ...     double = theano.function([x], 2 * x)
    >>> print(log.getvalue())   # doctest: +ELLIPSIS
    compiling a function that doubles...
    compiled a function that doubles in ... s (... C modules built)
    >>> double([1., 2.]).tolist()
    [2.0, 4.0]
    """
    stream = stream or sys.stdout
    interactive = hasattr(stream, 'isatty') and stream.isatty()
    if interval is None:
        interval = 1.0 if interactive else 30.0
    built_before = modules_built()
    start = time.time()
    done = threading.Event()

    def report():
        while not done.wait(interval):
            status = 'compiling %s... %s, %d C modules built' % (
                what, _seconds(time.time() - start),
                modules_built() - built_before)
            stream.write(('\r' + status) if interactive else status + '\n')
            stream.flush()

    stream.write('compiling %s...%s' % (what, '' if interactive else '\n'))
    stream.flush()
    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        yield
    finally:
        done.set()
        reporter.join()
        stream.write('%scompiled %s in %s (%d C modules built)\n' % (
            '\r' + ' ' * 79 + '\r' if interactive else '', what,
            _seconds(time.time() - start), modules_built() - built_before))
        stream.flush()
