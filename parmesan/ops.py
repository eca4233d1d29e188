"""Parmesan's own Theano ops, where a profile showed that they pay.

:class:`FusedAdam` is Adam's update of every parameter of a model, with
the gradient rescaling to a total norm and the element-wise clipping of
:func:`parmesan.updates.adam_with_clipping`, in one C loop: Theano's stock
graph of the same update makes about eight element-wise passes over every
parameter-sized array (norm, rescale, clip, two moments, the step), this op
two (the norm, then everything else), in place.

:class:`AddRowBias` adds a bias vector to every row of a matrix. Theano
fuses ``dot(h, W) + b`` into the element-wise loop of the nonlinearity that
follows, and its loop over an operand broadcast along the rows is a strided
loop that gcc does not vectorise: softplus(h W + b) took 3-7x longer per
element than softplus of a plain matrix. A graph optimisation
(``parmesan_add_row_bias``, before Theano's element-wise fusion) puts the
bias add into this op, whose row loop is vectorised, and the nonlinearity
then runs on a contiguous matrix, which Theano's loop vectorises.

Every op here computes what the stock Theano graph computes (the tests
compare them in float32 and float64). Both are C ops of the CPU backend:
on a GPU device (``THEANO_FLAGS=device=cuda0``, ``opencl0:0``) they are off
unless switched on, so that Theano moves the stock graph to the GPU instead
of running Adam and the bias adds on the host. They can be switched off:

* for a whole process with the environment variable
  ``PARMESAN_FUSED_OPS=0`` (all of them) or ``PARMESAN_FUSED_ADAM=0``,
  ``PARMESAN_ROW_BIAS=0``, ``PARMESAN_FACTORED_ENUMERATION=0`` (one each),
  read when Parmesan is imported, or
* at run time with ``parmesan.ops.config.fused_adam = False`` (or per call,
  ``adam_with_clipping(..., fused=False)``) and
  ``parmesan.ops.config.row_bias = False`` (for functions compiled after
  it), or with Theano's own switch of the graph optimisation,
  ``THEANO_FLAGS=optimizer_excluding=parmesan_add_row_bias``.

The same switches cover one graph rewrite of a model:
``config.factored_enumeration`` lets ExactM2 compute the first layer of
q(z|x,y) once per class and once per example instead of once per pair
(:meth:`parmesan.experiments.m2.M2Model.enumerated_first_dense`).

Example
-------
>>> import parmesan.ops
>>> parmesan.ops.config.fused_adam, parmesan.ops.config.row_bias
(True, True)
"""
import os

import numpy as np
import theano
import theano.tensor as T
from theano.gof import Apply, Op

__all__ = ['config', 'FusedAdam', 'fused_adam_updates', 'AddRowBias',
           'add_row_bias']


def _env_flag(name, default=True):
    value = os.environ.get(name)
    if value is None or value.strip() == '':
        return default
    return value.strip().lower() not in ('0', 'false', 'no', 'off')


class _Config(object):
    """Switches of Parmesan's own ops (see the module docstring)."""

    def __init__(self):
        every = _env_flag('PARMESAN_FUSED_OPS')
        on_cpu = theano.config.device.startswith('cpu')
        self.fused_adam = _env_flag('PARMESAN_FUSED_ADAM', every and on_cpu)
        self.row_bias = _env_flag('PARMESAN_ROW_BIAS', every and on_cpu)
        self.factored_enumeration = _env_flag(
            'PARMESAN_FACTORED_ENUMERATION', every)

    def __repr__(self):
        return ('parmesan.ops.config(fused_adam=%r, row_bias=%r, '
                'factored_enumeration=%r)' % (self.fused_adam, self.row_bias,
                                              self.factored_enumeration))


#: The switches; ``config.fused_adam = False`` restores the stock graph.
config = _Config()

#: Lasagne's total_norm_constraint adds this to the norm it divides by.
NORM_EPSILON = 1e-7


class FusedAdam(Op):
    """Adam (Lasagne 0.1's form) after gradient rescaling and clipping, for
    all parameters at once.

    With g the gradients, n = sqrt(sum of all g**2),
    g <- g * clip(n, 0, max_norm) / (1e-7 + n) (if max_norm), then
    g <- clip(g, -clip_value, clip_value) (if clip_value); t = t_prev + 1,
    a_t = lr sqrt(1 - beta2**t) / (1 - beta1**t), m = beta1 m + (1 - beta1)
    g, v = beta2 v + (1 - beta2) g**2, p = p - a_t m / (sqrt(v) + epsilon).

    Inputs, in this order (it keeps the order in which ``theano.function``
    finds the optimiser's shared variables the same as with Lasagne's
    graph, so checkpoints resume across the switch): m_1, v_1, lr, t_prev,
    m_2, v_2, ..., m_n, v_n, then p_1..p_n, then g_1..g_n. Outputs: t, then
    p_1..p_n, m_1..m_n, v_1..v_n updated.

    Parameters
    ----------
    num_params : int
    beta1, beta2, epsilon : float
    max_norm, clip_value : float or None (off)
    inplace : bool
        Update p, m and v in place (the graph optimiser switches this on
        where Theano's checks allow it).
    """
    __props__ = ('num_params', 'beta1', 'beta2', 'epsilon', 'max_norm',
                 'clip_value', 'inplace')

    def __init__(self, num_params, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 max_norm=None, clip_value=None, inplace=False):
        if num_params < 1:
            raise ValueError('FusedAdam needs at least one parameter')
        for name, value in (('max_norm', max_norm),
                            ('clip_value', clip_value)):
            if value is not None and not value > 0:
                raise ValueError('%s must be positive or None, got %r'
                                 % (name, value))
        self.num_params = int(num_params)
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.epsilon = float(epsilon)
        self.max_norm = None if max_norm is None else float(max_norm)
        self.clip_value = None if clip_value is None else float(clip_value)
        self.inplace = bool(inplace)
        n = self.num_params
        if self.inplace:
            # outputs 1..n alias p, n+1..2n m, 2n+1..3n v
            positions = self.input_positions()
            self.destroy_map = dict(
                [(1 + i, [positions['p'][i]]) for i in range(n)] +
                [(1 + n + i, [positions['m'][i]]) for i in range(n)] +
                [(1 + 2 * n + i, [positions['v'][i]]) for i in range(n)])

    def input_positions(self):
        """Where each input is: dict of 'm', 'v', 'p', 'g' (lists) and
        'lr', 't' (ints)."""
        n = self.num_params
        m = [0] + [4 + 2 * (i - 1) for i in range(1, n)]
        v = [1] + [5 + 2 * (i - 1) for i in range(1, n)]
        first_p = 2 * n + 2
        return {'m': m, 'v': v, 'lr': 2, 't': 3,
                'p': list(range(first_p, first_p + n)),
                'g': list(range(first_p + n, first_p + 2 * n))}

    def arrange_inputs(self, learning_rate, t_prev, params, ms, vs, grads):
        """The inputs in the op's order."""
        state = [ms[0], vs[0], learning_rate, t_prev]
        for m, v in zip(ms[1:], vs[1:]):
            state += [m, v]
        return state + list(params) + list(grads)

    def __str__(self):
        return '%s{%d params%s%s%s}' % (
            type(self).__name__, self.num_params,
            ', max_norm=%g' % self.max_norm if self.max_norm else '',
            ', clip=%g' % self.clip_value if self.clip_value else '',
            ', inplace' if self.inplace else '')

    def make_node(self, *inputs):
        n = self.num_params
        if len(inputs) != 4 * n + 2:
            raise ValueError('FusedAdam for %d parameters takes %d inputs, '
                             'got %d' % (n, 4 * n + 2, len(inputs)))
        inputs = [T.as_tensor_variable(i) for i in inputs]
        where = self.input_positions()
        pick = lambda key: [inputs[i] for i in where[key]]  # noqa: E731
        params, ms, vs, grads = pick('p'), pick('m'), pick('v'), pick('g')
        for index, (p, m, v, g) in enumerate(zip(params, ms, vs, grads)):
            if not (p.type == m.type == v.type):
                raise TypeError(
                    'FusedAdam: parameter %d (%s) and its moments must have '
                    'one type, got %s, %s, %s'
                    % (index, p, p.type, m.type, v.type))
            if g.ndim != p.ndim or g.dtype != p.dtype:
                raise TypeError(
                    'FusedAdam: the gradient of parameter %d (%s) is %s, '
                    'the parameter %s' % (index, p, g.type, p.type))
            if p.dtype not in ('float32', 'float64'):
                raise TypeError('FusedAdam: parameter %d (%s) is %s; only '
                                'float32 and float64 are supported'
                                % (index, p, p.dtype))
        for key in ('lr', 't'):
            scalar = inputs[where[key]]
            if scalar.ndim != 0 or scalar.dtype not in ('float32',
                                                        'float64'):
                raise TypeError('FusedAdam: %s must be a float scalar, got '
                                '%s' % ({'lr': 'the learning rate',
                                         't': 't_prev'}[key], scalar.type))
        t_prev = inputs[where['t']]
        outputs = [t_prev.type()] + [p.type() for p in params] + \
            [m.type() for m in ms] + [v.type() for v in vs]
        return Apply(self, inputs, outputs)

    def infer_shape(self, node, shapes):
        where = self.input_positions()
        return [()] + [shapes[i] for key in ('p', 'm', 'v')
                       for i in where[key]]

    def grad(self, inputs, output_grads):
        return [theano.gradient.grad_undefined(
            self, i, inputs[i], 'an optimiser update has no gradient')
            for i in range(len(inputs))]

    # ------------------------------------------------------------ numpy

    def perform(self, node, inputs, outputs):
        where = self.input_positions()
        dtype = node.inputs[where['p'][0]].dtype
        cast = np.dtype(dtype).type
        params = [inputs[i] for i in where['p']]
        ms = [inputs[i] for i in where['m']]
        vs = [inputs[i] for i in where['v']]
        grads = [np.asarray(inputs[i]) for i in where['g']]
        scale = cast(1)
        if self.max_norm is not None:
            norm = np.sqrt(sum(np.sum(np.square(g, dtype=np.float64))
                               for g in grads))
            scale = cast(min(norm, self.max_norm) / (NORM_EPSILON + norm))
        t = inputs[where['t']] + 1
        lr = inputs[where['lr']]
        a_t = cast(lr * np.sqrt(1 - self.beta2 ** t) /
                   (1 - self.beta1 ** t))
        b1, b2 = cast(self.beta1), cast(self.beta2)
        n = self.num_params
        outputs[0][0] = np.asarray(t, dtype=node.outputs[0].dtype)
        for i, (p, m, v, g) in enumerate(zip(params, ms, vs, grads)):
            g = g * scale
            if self.clip_value is not None:
                g = np.clip(g, -self.clip_value, self.clip_value)
            if not self.inplace:
                p, m, v = p.copy(), m.copy(), v.copy()
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= a_t * m / (np.sqrt(v) + cast(self.epsilon))
            outputs[1 + i][0] = p
            outputs[1 + n + i][0] = m
            outputs[1 + 2 * n + i][0] = v

    # ------------------------------------------------------------ C

    def c_code_cache_version(self):
        return (1,)

    def c_headers(self):
        return ['<math.h>']

    def c_code(self, node, name, inputs, outputs, sub):
        n = self.num_params
        where = self.input_positions()
        fail = sub['fail']
        dtype = 'dtype_%s' % inputs[where['p'][0]]
        lr, t_prev = inputs[where['lr']], inputs[where['t']]
        t_out = outputs[0]
        b1, b2, eps = repr(self.beta1), repr(self.beta2), repr(self.epsilon)
        code = ['''
{
    const int n_params = %(n)d;
    PyArrayObject* grads[%(n)d];
    double sumsq = 0.0;
    %(dtype)s scale = 1;
    int failed = 0;
    for (int i = 0; i < n_params; i++) grads[i] = NULL;
''' % locals()]
        for i, g in enumerate(inputs[i] for i in where['g']):
            code.append('''
    grads[%(i)d] = PyArray_GETCONTIGUOUS(%(g)s);
    if (!grads[%(i)d]) failed = 1;
''' % locals())
        code.append('''
    if (failed) {
        for (int i = 0; i < n_params; i++) Py_XDECREF(grads[i]);
        %(fail)s
    }
''' % locals())
        if self.max_norm is not None:
            max_norm = repr(self.max_norm)
            code.append('''
    for (int i = 0; i < n_params; i++) {
        const %(dtype)s* G = (const %(dtype)s*)PyArray_DATA(grads[i]);
        const npy_intp size = PyArray_SIZE(grads[i]);
        double partial = 0.0;
        for (npy_intp j = 0; j < size; j++) {
            const %(dtype)s value = G[j];
            partial += (double)(value * value);
        }
        sumsq += partial;
    }
    {
        const double norm = sqrt(sumsq);
        scale = (%(dtype)s)((norm < %(max_norm)s ? norm : %(max_norm)s) /
                            (%(norm_eps)r + norm));
    }
''' % dict(locals(), norm_eps=NORM_EPSILON))
        clip = self.clip_value is not None
        clip_value = repr(self.clip_value) if clip else '0'
        code.append('''
    const double t_value = ((dtype_%(t_prev)s*)PyArray_DATA(%(t_prev)s))[0]
                           + 1.0;
    const double lr_value = ((dtype_%(lr)s*)PyArray_DATA(%(lr)s))[0];
    const %(dtype)s a_t = (%(dtype)s)(lr_value * sqrt(1.0 - pow(%(b2)s,
        t_value)) / (1.0 - pow(%(b1)s, t_value)));
    const %(dtype)s b1 = (%(dtype)s)%(b1)s, b2 = (%(dtype)s)%(b2)s;
    const %(dtype)s one_b1 = 1 - b1, one_b2 = 1 - b2;
    const %(dtype)s eps = (%(dtype)s)%(eps)s;
    const %(dtype)s clip_value = (%(dtype)s)%(clip_value)s;
    Py_XDECREF(%(t_out)s);
    %(t_out)s = (PyArrayObject*)PyArray_ZEROS(0, NULL,
                                              PyArray_TYPE(%(t_prev)s), 0);
    if (!%(t_out)s) {
        for (int i = 0; i < n_params; i++) Py_XDECREF(grads[i]);
        %(fail)s
    }
    ((dtype_%(t_out)s*)PyArray_DATA(%(t_out)s))[0] =
        (dtype_%(t_out)s)t_value;
''' % locals())
        for i in range(n):
            p_in, m_in, v_in = (inputs[where[k][i]] for k in 'pmv')
            p_out, m_out, v_out = (outputs[1 + k * n + i] for k in range(3))
            code.append('''
    {
        PyArrayObject* targets[3] = {%(p_in)s, %(m_in)s, %(v_in)s};
        PyArrayObject** outs[3] = {&%(p_out)s, &%(m_out)s, &%(v_out)s};
        for (int k = 0; k < 3; k++) {
            Py_XDECREF(*outs[k]);
            if (%(inplace)d && PyArray_IS_C_CONTIGUOUS(targets[k])
                    && PyArray_ISWRITEABLE(targets[k])) {
                *outs[k] = targets[k];
                Py_INCREF(targets[k]);
            } else {
                *outs[k] = (PyArrayObject*)PyArray_NewCopy(targets[k],
                                                           NPY_CORDER);
            }
            if (!*outs[k]) failed = 1;
        }
        if (failed) {
            for (int i = 0; i < n_params; i++) Py_XDECREF(grads[i]);
            %(fail)s
        }
        %(dtype)s* P = (%(dtype)s*)PyArray_DATA(%(p_out)s);
        %(dtype)s* M = (%(dtype)s*)PyArray_DATA(%(m_out)s);
        %(dtype)s* V = (%(dtype)s*)PyArray_DATA(%(v_out)s);
        const %(dtype)s* G = (const %(dtype)s*)PyArray_DATA(grads[%(i)d]);
        const npy_intp size = PyArray_SIZE(%(p_out)s);
        for (npy_intp j = 0; j < size; j++) {
            %(dtype)s g = G[j] * scale;
            if (%(clip)d) {
                g = g < -clip_value ? -clip_value :
                    (g > clip_value ? clip_value : g);
            }
            const %(dtype)s m = b1 * M[j] + one_b1 * g;
            const %(dtype)s v = b2 * V[j] + one_b2 * (g * g);
            M[j] = m;
            V[j] = v;
            P[j] = P[j] - a_t * m / (sqrt(v) + eps);
        }
    }
''' % dict(locals(), inplace=int(self.inplace), clip=int(clip)))
        code.append('''
    for (int i = 0; i < n_params; i++) Py_XDECREF(grads[i]);
}
''')
        return ''.join(code)


@theano.gof.local_optimizer([FusedAdam])
def local_fused_adam_inplace(node):
    """Update the parameters and moments in place, where Theano's checks
    (the destroy handler) allow it."""
    op = node.op
    if isinstance(op, FusedAdam) and not op.inplace:
        new = FusedAdam(op.num_params, op.beta1, op.beta2, op.epsilon,
                        op.max_norm, op.clip_value, inplace=True)
        return new.make_node(*node.inputs).outputs
    return False


theano.compile.optdb.register(
    'parmesan_fused_adam_inplace',
    theano.gof.opt.TopoOptimizer(
        local_fused_adam_inplace,
        failure_callback=theano.gof.opt.TopoOptimizer.warn_inplace),
    75.5, 'fast_run', 'inplace')


def fused_adam_updates(grads, params, learning_rate, beta1=0.9, beta2=0.999,
                       epsilon=1e-8, max_norm=None, clip_value=None):
    """The updates of Lasagne's ``adam`` after Parmesan's rescaling and
    clipping, computed by one :class:`FusedAdam` node.

    Parameters
    ----------
    grads : list of Theano expressions, the gradients of `params`
    params : list of shared variables (float32 or float64, one dtype)
    learning_rate : float or Theano scalar
    beta1, beta2, epsilon : float
    max_norm, clip_value : float or None

    Returns
    -------
    OrderedDict of updates, in the order of ``lasagne.updates.adam``'s
    (m, v and the parameter for each parameter, then the step count).

    Example
    -------
    >>> w = theano.shared(np.ones(3, dtype=theano.config.floatX))
    >>> updates = fused_adam_updates(T.grad(T.sum(w ** 2), [w]), [w], 0.1)
    >>> step = theano.function([], [], updates=updates)
    """
    from collections import OrderedDict
    if len(grads) != len(params):
        raise ValueError('%d gradients for %d parameters'
                         % (len(grads), len(params)))
    dtype = params[0].dtype
    others = [p for p in params if p.dtype != dtype]
    if others:
        raise TypeError('FusedAdam needs one dtype; %s is %s, %s is %s'
                        % (params[0], dtype, others[0], others[0].dtype))
    floatx = np.dtype(theano.config.floatX).type
    t_prev = theano.shared(floatx(0.))
    ms, vs = [], []
    for param in params:
        value = param.get_value(borrow=True)
        ms.append(theano.shared(np.zeros(value.shape, dtype=value.dtype),
                                broadcastable=param.broadcastable))
        vs.append(theano.shared(np.zeros(value.shape, dtype=value.dtype),
                                broadcastable=param.broadcastable))
    op = FusedAdam(len(params), beta1, beta2, epsilon, max_norm, clip_value)
    learning_rate = T.as_tensor_variable(learning_rate)
    if learning_rate.dtype not in ('float32', 'float64'):
        learning_rate = T.cast(learning_rate, theano.config.floatX)
    grads = [T.cast(g, dtype) if g.dtype != dtype else g for g in grads]
    outputs = op(*op.arrange_inputs(learning_rate, t_prev, params, ms, vs,
                                    grads))
    n = len(params)
    t, new_params, new_ms, new_vs = outputs[0], outputs[1:1 + n], \
        outputs[1 + n:1 + 2 * n], outputs[1 + 2 * n:]
    updates = OrderedDict()
    for param, m, v, new_p, new_m, new_v in zip(params, ms, vs, new_params,
                                                 new_ms, new_vs):
        updates[m] = new_m
        updates[v] = new_v
        updates[param] = new_p
    updates[t_prev] = t
    return updates


class AddRowBias(Op):
    """x + b with b added to every row of the matrix x: one vectorised C
    loop per row (any strides; the contiguous case is the fast one).

    Parameters
    ----------
    inplace : bool
        Write into x (the graph optimiser switches this on where Theano's
        checks allow it).

    Example
    -------
    >>> x, b = T.matrix('x'), T.vector('b')
    >>> f = theano.function([x, b], add_row_bias(x, b))
    >>> f(np.zeros((2, 3), x.dtype), np.arange(3, dtype=b.dtype))[1]
    array([0., 1., 2.]...)
    """
    __props__ = ('inplace',)

    def __init__(self, inplace=False):
        self.inplace = bool(inplace)
        if self.inplace:
            self.destroy_map = {0: [0]}

    def __str__(self):
        return 'AddRowBias%s' % ('{inplace}' if self.inplace else '')

    def make_node(self, x, b):
        x, b = T.as_tensor_variable(x), T.as_tensor_variable(b)
        if x.ndim != 2 or b.ndim != 1:
            raise TypeError('AddRowBias adds a vector to the rows of a '
                            'matrix; got x %s and b %s' % (x.type, b.type))
        if x.dtype != b.dtype or x.dtype not in ('float32', 'float64'):
            raise TypeError('AddRowBias needs x and b of one float dtype; '
                            'got %s and %s' % (x.dtype, b.dtype))
        broadcastable = (x.broadcastable[0],
                         x.broadcastable[1] and b.broadcastable[0])
        return Apply(self, [x, b], [T.TensorType(x.dtype, broadcastable)()])

    def infer_shape(self, node, shapes):
        return [shapes[0]]

    def grad(self, inputs, output_grads):
        gz, = output_grads
        return [gz, gz.sum(axis=0)]

    def R_op(self, inputs, eval_points):
        if any(point is None for point in eval_points):
            return [None]
        return [self(*eval_points)]

    def perform(self, node, inputs, outputs):
        x, b = inputs
        if b.shape[0] != x.shape[1] and b.shape[0] != 1:
            raise ValueError('AddRowBias: x has %d columns, b %d entries'
                             % (x.shape[1], b.shape[0]))
        if self.inplace:
            x += b
            outputs[0][0] = x
        else:
            outputs[0][0] = x + b

    def c_code_cache_version(self):
        return (1,)

    def c_code(self, node, name, inputs, outputs, sub):
        x, b = inputs
        z, = outputs
        fail = sub['fail']
        inplace = int(self.inplace)
        return """
{
    const npy_intp rows = PyArray_DIMS(%(x)s)[0];
    const npy_intp cols = PyArray_DIMS(%(x)s)[1];
    const npy_intp bias_size = PyArray_DIMS(%(b)s)[0];
    if (bias_size != cols && bias_size != 1) {
        PyErr_Format(PyExc_ValueError,
                     "AddRowBias: x has %%lld columns, b %%lld entries",
                     (long long)cols, (long long)bias_size);
        %(fail)s
    }
    if (%(inplace)d) {
        Py_XDECREF(%(z)s);
        %(z)s = %(x)s;
        Py_INCREF(%(z)s);
    } else if (!(%(z)s && PyArray_NDIM(%(z)s) == 2
                 && PyArray_IS_C_CONTIGUOUS(%(z)s)
                 && PyArray_DIMS(%(z)s)[0] == rows
                 && PyArray_DIMS(%(z)s)[1] == cols
                 && %(z)s != %(x)s)) {
        Py_XDECREF(%(z)s);
        %(z)s = (PyArrayObject*)PyArray_EMPTY(2, PyArray_DIMS(%(x)s),
                                              PyArray_TYPE(%(x)s), 0);
        if (!%(z)s) { %(fail)s }
    }
    const npy_intp x_row = PyArray_STRIDES(%(x)s)[0] / sizeof(dtype_%(x)s);
    const npy_intp x_col = PyArray_STRIDES(%(x)s)[1] / sizeof(dtype_%(x)s);
    const npy_intp z_row = PyArray_STRIDES(%(z)s)[0] / sizeof(dtype_%(z)s);
    const npy_intp z_col = PyArray_STRIDES(%(z)s)[1] / sizeof(dtype_%(z)s);
    const npy_intp b_step = bias_size == 1 ? 0 :
        PyArray_STRIDES(%(b)s)[0] / sizeof(dtype_%(b)s);
    const dtype_%(x)s* X = (const dtype_%(x)s*)PyArray_DATA(%(x)s);
    const dtype_%(b)s* B = (const dtype_%(b)s*)PyArray_DATA(%(b)s);
    dtype_%(z)s* Z = (dtype_%(z)s*)PyArray_DATA(%(z)s);
    if (x_col == 1 && z_col == 1 && b_step == 1) {
        for (npy_intp i = 0; i < rows; i++) {
            const dtype_%(x)s* xi = X + i * x_row;
            dtype_%(z)s* zi = Z + i * z_row;
            for (npy_intp j = 0; j < cols; j++)
                zi[j] = xi[j] + B[j];
        }
    } else {
        for (npy_intp i = 0; i < rows; i++)
            for (npy_intp j = 0; j < cols; j++)
                Z[i * z_row + j * z_col] = X[i * x_row + j * x_col]
                                           + B[j * b_step];
    }
}
""" % locals()


def add_row_bias(x, b):
    """x + b (a matrix and a vector added to each of its rows) as one
    :class:`AddRowBias` node."""
    return AddRowBias()(x, b)


def _row_bias_operand(variable):
    """b if `variable` is b.dimshuffle('x', 0) of a vector b, else None."""
    owner = variable.owner
    if owner is not None and isinstance(owner.op, T.DimShuffle) and \
            owner.op.new_order == ('x', 0) and owner.inputs[0].ndim == 1:
        return owner.inputs[0]
    return None


@theano.gof.local_optimizer([T.add])
def local_add_row_bias(node):
    """add(X, b.dimshuffle('x', 0), ...) -> add(AddRowBias(X, b), ...) for
    a matrix X with no broadcast dimension."""
    if not config.row_bias or not isinstance(node.op, T.Elemwise) or \
            node.op.scalar_op != theano.scalar.add or \
            node.outputs[0].ndim != 2:
        return False
    dtype = node.outputs[0].dtype
    if dtype not in ('float32', 'float64'):
        return False
    inputs = list(node.inputs)
    bias = next((i for i in inputs if _row_bias_operand(i) is not None and
                 i.dtype == dtype), None)
    full = next((i for i in inputs if i.ndim == 2 and i.dtype == dtype and
                 not any(i.broadcastable)), None)
    if bias is None or full is None:
        return False
    rest = [i for i in inputs if i is not bias and i is not full]
    result = AddRowBias()(full, _row_bias_operand(bias))
    if rest:
        result = T.add(result, *rest)
    if result.type != node.outputs[0].type:
        return False
    return [result]


@theano.gof.local_optimizer([AddRowBias])
def local_add_row_bias_inplace(node):
    if isinstance(node.op, AddRowBias) and not node.op.inplace:
        return AddRowBias(inplace=True).make_node(*node.inputs).outputs
    return False


theano.compile.optdb.register(
    'parmesan_add_row_bias',
    theano.gof.opt.in2out(local_add_row_bias, name='parmesan_add_row_bias'),
    48.9, 'fast_run')
theano.compile.optdb.register(
    'parmesan_add_row_bias_inplace',
    theano.gof.opt.TopoOptimizer(
        local_add_row_bias_inplace,
        failure_callback=theano.gof.opt.TopoOptimizer.warn_inplace),
    75.6, 'fast_run', 'inplace')
