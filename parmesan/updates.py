"""Update rules and learning-rate schedules for Lasagne models.

Lasagne 0.1's ``lasagne.updates`` has Adam and a total-norm constraint;
:func:`adam_with_clipping` chains them with element-wise clipping, as the
original Parmesan examples did. The schedules are plain functions of the
epoch (counting from 1), to set a shared learning rate before each epoch.
"""
import numpy as np
import lasagne
import theano
import theano.tensor as T

from . import ops

__all__ = ['adam_with_clipping', 'step_annealing_schedule', 'burda_schedule',
           'linear_decay_schedule', 'floored_decay_schedule',
           'linear_warmup']


def adam_with_clipping(loss, params, learning_rate, beta1=0.9, beta2=0.999,
                       epsilon=1e-8, max_norm=5.0, clip_value=1.0,
                       fused=None):
    """Adam updates after rescaling the gradients to a total norm of at most
    `max_norm` and clipping each element to [-clip_value, clip_value].

    Parameters
    ----------
    loss : Theano scalar to minimise
    params : list of shared variables
    learning_rate : float or Theano shared scalar
    beta1, beta2, epsilon : float
        Adam's constants (Burda et al. use epsilon=1e-4).
    max_norm, clip_value : float or None
        None switches the respective step off.
    fused : bool or None
        Compute the whole update in one :class:`parmesan.ops.FusedAdam`
        node (the same numbers, two passes over the arrays instead of about
        eight) or with Lasagne's graph; None: as
        ``parmesan.ops.config.fused_adam`` says (on unless the environment
        sets ``PARMESAN_FUSED_OPS=0``).

    Returns
    -------
    OrderedDict of updates.

    Example
    -------
    >>> import numpy as np
    >>> import theano, theano.tensor as T
    >>> from lasagne.utils import floatX
    >>> from parmesan.updates import adam_with_clipping
    >>> w = theano.shared(floatX(np.ones(3)), 'w')
    >>> updates = adam_with_clipping(T.sum(w ** 2), [w], 0.1)
    >>> step = theano.function([], [], updates=updates)
    >>> for _ in range(3):
    ...     _ = step()
    >>> np.round(w.get_value(), 2).tolist()  # Adam: about lr a step
    [0.7, 0.7, 0.7]
    """
    grads = T.grad(loss, params)
    if fused is None:
        fused = ops.config.fused_adam
    if fused and len({p.dtype for p in params}) == 1:
        return _tag_adam_state(ops.fused_adam_updates(
            grads, params, learning_rate, beta1, beta2, epsilon, max_norm,
            clip_value), params)
    if max_norm is not None:
        grads = lasagne.updates.total_norm_constraint(grads, max_norm)
    if clip_value is not None:
        grads = [T.clip(g, -clip_value, clip_value) for g in grads]
    return _tag_adam_state(lasagne.updates.adam(
        grads, params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
        epsilon=epsilon), params)


def _tag_adam_state(updates, params):
    """Mark Adam's moments with the parameter they belong to
    (``variable.tag.optimizer_state = (param, 'adam_m' or 'adam_v')``) and
    its step count with (None, 'adam_step'), so that checkpoints can name
    them. Both implementations order the updates as m, v and the parameter
    for each parameter, then the step count."""
    targets = {id(param) for param in params}
    pending = []
    for variable in updates:
        if id(variable) in targets:
            for role, moment in zip(('adam_m', 'adam_v'), pending[-2:]):
                moment.tag.optimizer_state = (variable, role)
            pending = []
        else:
            pending.append(variable)
    for step in pending:
        step.tag.optimizer_state = (None, 'adam_step')
    return updates


def step_annealing_schedule(learning_rate, factor, start_epoch):
    """The original Parmesan examples' annealing: multiply by `factor`
    every epoch from `start_epoch` on.

    Returns
    -------
    callable(epoch) -> float

    Example
    -------
    >>> schedule = step_annealing_schedule(1e-3, 0.5, 3)
    >>> [schedule(epoch) for epoch in (1, 3, 4, 5)]
    [0.001, 0.001, 0.0005, 0.00025]
    """
    return lambda epoch: learning_rate * factor ** max(0, epoch - start_epoch)


def burda_schedule(base=1e-3, stages=8):
    """Burda et al. (2015): 3**i epochs at base * 10**(-i/7), i = 0..7.

    Returns
    -------
    (callable(epoch) -> float, int): the schedule and its total number of
    epochs (3280 for 8 stages).

    Example
    -------
    >>> schedule, epochs = burda_schedule()
    >>> epochs, schedule(1), round(schedule(2) / schedule(1), 4)
    (3280, 0.001, 0.7197)
    """
    boundaries = np.cumsum([3 ** i for i in range(stages)])

    def schedule(epoch):
        stage = int(np.searchsorted(boundaries, epoch))
        return base * 10 ** (-min(stage, stages - 1) / 7.0)
    return schedule, int(boundaries[-1])


def linear_decay_schedule(learning_rate, decay_start_epoch, num_epochs):
    """Constant, then decaying linearly towards zero over the last epochs.

    Epochs 1..`decay_start_epoch` use `learning_rate`; epoch e after that
    uses learning_rate * (num_epochs - e + 1) / (num_epochs -
    decay_start_epoch + 1), so the last epoch runs at a small positive rate
    (the ladder network's official schedule).

    Parameters
    ----------
    learning_rate : float
    decay_start_epoch : int
        The last epoch at the full rate; >= num_epochs never decays.
    num_epochs : int

    Returns
    -------
    callable(epoch) -> float

    Example
    -------
    >>> schedule = linear_decay_schedule(0.002, 100, 150)
    >>> schedule(100), round(schedule(150) / 0.002, 4)
    (0.002, 0.0196)
    """
    decay_epochs = num_epochs - decay_start_epoch + 1

    def schedule(epoch):
        if epoch <= decay_start_epoch:
            return learning_rate
        return learning_rate * max(0., num_epochs - epoch + 1) / decay_epochs
    return schedule


def floored_decay_schedule(learning_rate, factor=1.0005, floor=1e-4):
    """Divide by `factor` after every epoch unless that would go below
    `floor` (then it stays): vae_ssl's decay.

    Returns
    -------
    callable(epoch) -> float

    Example
    -------
    >>> schedule = floored_decay_schedule(5e-4)
    >>> schedule(1), round(schedule(301), 7)
    (0.0005, 0.0004304)
    """
    def schedule(epoch):
        value = learning_rate
        for _ in range(epoch - 1):
            if value / factor < floor:
                break
            value /= factor
        return value
    return schedule


def linear_warmup(iteration, num_iterations, start=0.01):
    """The warm-up coefficient a_t = min(1, start + t / N) at iteration t.

    Works on numbers and on Theano scalars (vae_ssl anneals its classifier
    weight and sharpening with it).

    Example
    -------
    >>> linear_warmup(25000, 50000)
    0.51
    """
    value = start + iteration / float(num_iterations)
    if isinstance(value, theano.Variable):
        return T.minimum(1.0, value)
    return min(1.0, value)
