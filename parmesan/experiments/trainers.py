"""Every trainer by name: how to run it, its flags, and what its runs
report.

The names are those of the scripts in ``examples/``; each trainer also runs
as ``python -m parmesan.experiments NAME [flags]``, and
:mod:`parmesan.experiments.sweep` runs any of them over seeds and settings.
"""
import importlib
from collections import OrderedDict, namedtuple

from .vae import VAE_VANILLA_DEFAULTS

__all__ = ['Trainer', 'TRAINERS', 'get_trainer']


class Trainer(namedtuple('Trainer', [
        'name', 'module', 'parser', 'description', 'options', 'metrics',
        'curve', 'reference'])):
    """One trainer of :mod:`parmesan.experiments`.

    Attributes
    ----------
    name : str
        Its name (the script ``examples/<name>.py``).
    module : str
        The module under ``parmesan.experiments`` holding ``run``.
    parser : str
        The module's function that builds the argument parser, called with
        the description and `options`.
    description : str
        First line of ``--help``.
    options : dict
        Keyword arguments of the module's ``run`` (the script's defaults).
    metrics : tuple of str
        The numbers of ``results.json`` a sweep summarises over seeds.
    curve : str
        The per-epoch quantity of ``log.jsonl`` a sweep plots; ``{k}`` is
        filled with the run's ``eval_iw`` setting.
    reference : callable(settings dict) -> (label, number) or None
        The paper's number for these settings, if it reports one.
    """

    def run(self, argv=None):
        """Train and evaluate with command-line flags `argv`; return the
        results dict (also written to OUTFOLDER/results.json)."""
        return self._module().run(argv, description=self.description,
                                  **self.options)

    def parse_args(self, argv):
        """Parse and check `argv` as :meth:`run` would, without running:
        a usage error (SystemExit) names a refused flag."""
        return self._module().parse_run_args(
            argv, description=self.description, **self.options)

    def argument_parser(self):
        """The trainer's ``argparse.ArgumentParser``, with its defaults."""
        return getattr(self._module(), self.parser)(self.description,
                                                    **self.options)

    def curve_key(self, settings):
        return self.curve.format(k=settings.get('eval_iw'))

    def _module(self):
        return importlib.import_module('parmesan.experiments.' +
                                       self.module)


def _burda_iwae(settings):
    from .vae import BURDA_IWAE_TEST_LL
    if settings.get('preset') != 'burda':
        return None
    value = BURDA_IWAE_TEST_LL.get(settings.get('iw_samples'))
    return None if value is None else ('Burda et al. test LL', value)


def _ladder_paper(settings):
    from .ladder import PAPER_TEST_ERROR
    value = PAPER_TEST_ERROR.get(settings.get('labels'))
    return None if value is None else ('Rasmus et al. test error %', value)


def _vae_ssl(settings):
    from .m2 import VAE_SSL_VALID_ACCURACY
    value = VAE_SSL_VALID_ACCURACY.get(settings.get('model'))
    return None if value is None else ('vae_ssl valid acc', value)


_VAE_METRICS = ('test_LL', 'active_units')

#: The trainers, by the name of their example script.
TRAINERS = OrderedDict((trainer.name, trainer) for trainer in [
    Trainer('vae_vanilla', 'vae', 'trainer_argument_parser',
            'Variational autoencoder (Kingma & Welling 2013) with the '
            'analytic KL, on MNIST.',
            dict(defaults=VAE_VANILLA_DEFAULTS, analytic_kl=True), _VAE_METRICS, 'test_L{k}',
            lambda settings: None),
    Trainer('iw_vae', 'vae', 'trainer_argument_parser',
            'Importance-weighted autoencoder (Burda et al. 2015) on MNIST.',
            {}, _VAE_METRICS, 'test_L{k}', _burda_iwae),
    Trainer('iw_vae_normflow', 'vae', 'trainer_argument_parser',
            'Importance-weighted autoencoder with normalizing flows on '
            'MNIST.',
            dict(defaults={'outfolder': 'results/iw_vae_normflow'},
                 flows=True), _VAE_METRICS, 'test_L{k}',
            lambda settings: None),
    Trainer('vimco', 'vimco', 'vimco_argument_parser',
            'Binary-latent VAE trained with VIMCO (Mnih & Rezende 2016) on '
            'MNIST.',
            {}, _VAE_METRICS, 'test_L{k}', lambda settings: None),
    Trainer('mnist_ladder', 'ladder', 'ladder_argument_parser',
            'Ladder network (Rasmus et al. 2015) on MNIST.',
            {}, ('test_error', 'valid_error'), 'valid_error', _ladder_paper),
    Trainer('m2', 'm2', 'm2_argument_parser',
            'Semi-supervised M2 (Kingma et al. 2014) on MNIST with 100 '
            'labels.',
            {}, ('valid_acc', 'test_acc'), 'valid_acc', _vae_ssl),
])


def get_trainer(name):
    """The :class:`Trainer` called `name`; a ValueError lists the names."""
    try:
        return TRAINERS[name]
    except KeyError:
        raise ValueError('unknown trainer %r; the trainers are %s'
                         % (name, ', '.join(TRAINERS)))
