"""The experiments built on Parmesan's layers: the model families of the
papers Parmesan reproduces, with their shared training loop, evaluation,
plots and command line.

* :mod:`~parmesan.experiments.vae`: VAE / IWAE with normalizing flows
  (``examples/vae_vanilla.py``, ``iw_vae.py``, ``iw_vae_normflow.py``);
* :mod:`~parmesan.experiments.vimco`: binary latents trained with VIMCO
  (``examples/vimco.py``);
* :mod:`~parmesan.experiments.ladder`: the ladder network
  (``examples/mnist_ladder.py``);
* :mod:`~parmesan.experiments.m2`: the semi-supervised M2 family
  (``examples/m2.py``);
* :mod:`~parmesan.experiments.trainers`: every trainer by name
  (``python -m parmesan.experiments NAME``), and
  :mod:`~parmesan.experiments.sweep`: any of them over seeds and settings,
  locally or on Dask (``examples/sweep.py``, ``examples/m2_multiseed.py``);
* :mod:`~parmesan.experiments.runs`: a saved run folder rebuilt as a model
  (:func:`load_run`) and evaluated (``python -m parmesan.experiments
  evaluate FOLDER``);
* shared: :mod:`~parmesan.experiments.model` (the interface of the model
  classes), :mod:`~parmesan.experiments.training` (the loop, checkpoints,
  logs), :mod:`~parmesan.experiments.evaluation`,
  :mod:`~parmesan.experiments.plotting` and :mod:`~parmesan.experiments.cli`.

The library (:mod:`parmesan.layers`, :mod:`parmesan.distributions`, ...)
never imports this package.
"""

__all__ = ['load_run']


def __getattr__(name):
    # load_run on first use: importing the package alone compiles nothing
    # and does not import Theano.
    if name == 'load_run':
        from .runs import load_run
        return load_run
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
