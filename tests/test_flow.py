"""Tests of parmesan.layers.flow against independent numpy references.

Every flow function is compiled once (module-scoped fixtures) with float64
inputs; parameters are changed through their shared variables, so the tests
hold whether theano.config.floatX is float32 or float64. Jacobians come from
central finite differences of the compiled flow, evaluated in one batch.
"""
import numpy as np
import pytest
import theano
import theano.tensor as T
import lasagne
from lasagne import init
from lasagne.layers import InputLayer, get_all_params, get_output

from parmesan.layers import (InverseAutoregressiveFlowLayer, ListIndexLayer,
                             MaskedDenseLayer, NormalizingPlanarFlowLayer,
                             NormalizingRadialFlowLayer, made_hidden_degrees,
                             made_input_degrees)

FLOATX = theano.config.floatX
# Parameters are floatX; with float32 they are derived (u_hat, beta_hat, ...)
# in float32, so a float64 numpy reference agrees only to float32 precision.
REF_TOL = 1e-9 if FLOATX == 'float64' else 2e-5
FD_STEP = 1e-6
# float32 parameters also limit how well a near-singular logdet (close to
# the invertibility boundary) matches the float64 finite differences.
FD_TOL = 1e-6 if FLOATX == 'float64' else 1e-4


def softplus_np(x):
    return np.logaddexp(0., x)


def floatx(value):
    return np.asarray(value, dtype=FLOATX)


def set_param(param, value):
    param.set_value(floatx(value))


def get_param(param):
    return np.asarray(param.get_value(), dtype=np.float64)


def finite_difference_jacobians(flow, points, *extra_inputs):
    """J[n, k, j] = d f_k / d z_j at points[n], by central differences.

    `flow` maps a (batch, D) float64 array (and `extra_inputs`, one row per
    point) to the transformed (batch, D) array.
    """
    num_points, dim = points.shape
    steps = FD_STEP * np.eye(dim)
    shifted = np.concatenate([
        (points[:, None, :] + steps[None]).reshape(-1, dim),
        (points[:, None, :] - steps[None]).reshape(-1, dim)])
    repeated = [np.tile(np.repeat(x, dim, axis=0), (2, 1))
                for x in extra_inputs]
    out = flow(shifted, *repeated)
    half = num_points * dim
    plus = out[:half].reshape(num_points, dim, dim)
    minus = out[half:].reshape(num_points, dim, dim)
    # plus[n, j, k] is f_k at points[n] + step * e_j.
    return ((plus - minus) / (2 * FD_STEP)).transpose(0, 2, 1)


@pytest.fixture(autouse=True)
def seeded_lasagne_rng():
    """Seed the initialisers of every test; restore the global generator."""
    previous = lasagne.random.get_rng()
    lasagne.random.set_rng(np.random.RandomState(0))
    yield
    lasagne.random.set_rng(previous)


# ----------------------------------------------------------------- planar

def planar_reference(z, u, w, b):
    """Rezende & Mohamed (2015), eq. (10), (11) and appendix A.1."""
    wu = w @ u
    u_hat = u + (-1. + softplus_np(wu) - wu) * w / (w @ w)
    activation = np.tanh(z @ w + b)
    f_z = z + activation[:, None] * u_hat[None, :]
    psi = (1. - activation ** 2)[:, None] * w[None, :]
    logdet = np.log(np.abs(1. + psi @ u_hat))
    return f_z, logdet, u_hat


PLANAR_DIM = 3


def planar_settings():
    """(u, w, b) settings; at least the last two have w^T u < -1."""
    rng = np.random.RandomState(11)
    settings = [(rng.randn(PLANAR_DIM), rng.randn(PLANAR_DIM), 0.3),
                (3 * rng.randn(PLANAR_DIM), 2 * rng.randn(PLANAR_DIM), -1.)]
    for scale in (2.5, 6.):
        w = rng.randn(PLANAR_DIM)
        u = -scale * w / (w @ w) + 0.5 * rng.randn(PLANAR_DIM)
        settings.append((u, w, rng.randn()))
    return settings


@pytest.fixture(scope='module')
def planar():
    z = T.dmatrix('z')
    layer = NormalizingPlanarFlowLayer(InputLayer((None, PLANAR_DIM), z))
    f_z, logdet = get_output(layer)
    fn = theano.function([z], [f_z, logdet, layer.get_u_hat()])
    return layer, fn


def planar_test_points(rng, w, b, num_points=12):
    points = rng.randn(num_points, PLANAR_DIM)
    # Points on the hyperplane w^T z + b = 0 are where tanh' = 1 and a raw
    # u with w^T u < -1 would make the determinant negative.
    on_plane = points[:4] - ((points[:4] @ w + b) / (w @ w))[:, None] * w
    return np.concatenate([points, on_plane])


def test_planar_matches_numpy_reference_and_constrains_u(planar):
    layer, fn = planar
    rng = np.random.RandomState(1)
    for u, w, b in planar_settings():
        set_param(layer.u, u)
        set_param(layer.w, w)
        set_param(layer.b, b)
        u, w, b = get_param(layer.u), get_param(layer.w), get_param(layer.b)
        z = planar_test_points(rng, w, b)
        f_z, logdet, u_hat = fn(z)
        ref_f_z, ref_logdet, ref_u_hat = planar_reference(z, u, w, b)
        assert f_z.shape == (len(z), PLANAR_DIM) and logdet.shape == (len(z),)
        np.testing.assert_allclose(u_hat, ref_u_hat, rtol=REF_TOL,
                                   atol=REF_TOL)
        np.testing.assert_allclose(f_z, ref_f_z, rtol=REF_TOL, atol=REF_TOL)
        np.testing.assert_allclose(logdet, ref_logdet, rtol=REF_TOL,
                                   atol=REF_TOL)
        assert w @ u_hat >= -1.


def test_planar_logdet_is_log_det_of_finite_difference_jacobian(planar):
    layer, fn = planar
    rng = np.random.RandomState(2)
    violating = 0
    for u, w, b in planar_settings():
        set_param(layer.u, u)
        set_param(layer.w, w)
        set_param(layer.b, b)
        violating += get_param(layer.w) @ get_param(layer.u) < -1.
        z = planar_test_points(rng, get_param(layer.w), get_param(layer.b))
        jacobians = finite_difference_jacobians(lambda x: fn(x)[0], z)
        signs, log_abs_dets = np.linalg.slogdet(jacobians)
        _, logdet, _ = fn(z)
        np.testing.assert_allclose(logdet, log_abs_dets, atol=FD_TOL)
        # Invertible: the determinant never changes sign, even where raw u
        # would have made 1 + u^T psi negative.
        assert np.all(signs > 0)
    assert violating >= 2


# ----------------------------------------------------------------- radial

def radial_reference(z, z0, alpha, beta):
    """Rezende & Mohamed (2015), eq. (14) and appendix A.2."""
    alpha_hat = softplus_np(alpha)
    beta_hat = -alpha_hat + softplus_np(beta)
    dim = z.shape[1]
    r = np.linalg.norm(z - z0, axis=1)
    h = 1. / (alpha_hat + r)
    h_prime = -1. / (alpha_hat + r) ** 2
    f_z = z + (beta_hat * h)[:, None] * (z - z0)
    logdet = ((dim - 1) * np.log(1. + beta_hat * h) +
              np.log(1. + beta_hat * h + beta_hat * h_prime * r))
    return f_z, logdet, alpha_hat, beta_hat


RADIAL_DIM = 3


def radial_settings():
    """(z0, alpha, beta) raw settings; the last two have beta < -alpha_hat."""
    rng = np.random.RandomState(12)
    return [(rng.randn(RADIAL_DIM), 0.2, 1.5),
            (rng.randn(RADIAL_DIM), -1.5, 3.),
            (rng.randn(RADIAL_DIM), 0., -5.),
            (rng.randn(RADIAL_DIM), -3., -2.)]


@pytest.fixture(scope='module')
def radial():
    z = T.dmatrix('z')
    layer = NormalizingRadialFlowLayer(InputLayer((None, RADIAL_DIM), z))
    f_z, logdet = get_output(layer)
    fn = theano.function([z], [f_z, logdet, layer.get_alpha_hat(),
                               layer.get_beta_hat()])
    return layer, fn


def radial_test_points(rng, z0, num_points=12):
    # Include points close to z0, where the contraction is strongest.
    return np.concatenate([z0 + rng.randn(num_points, RADIAL_DIM),
                           z0 + 0.05 * rng.randn(4, RADIAL_DIM)])


def test_radial_matches_numpy_reference_and_constrains_beta(radial):
    layer, fn = radial
    rng = np.random.RandomState(3)
    for z0, alpha, beta in radial_settings():
        set_param(layer.z0, z0)
        set_param(layer.alpha, alpha)
        set_param(layer.beta, beta)
        z0, alpha, beta = (get_param(layer.z0), get_param(layer.alpha),
                           get_param(layer.beta))
        z = radial_test_points(rng, z0)
        f_z, logdet, alpha_hat, beta_hat = fn(z)
        ref_f_z, ref_logdet, ref_alpha_hat, ref_beta_hat = radial_reference(
            z, z0, alpha, beta)
        assert f_z.shape == (len(z), RADIAL_DIM) and logdet.shape == (len(z),)
        np.testing.assert_allclose([alpha_hat, beta_hat],
                                   [ref_alpha_hat, ref_beta_hat],
                                   rtol=REF_TOL, atol=REF_TOL)
        np.testing.assert_allclose(f_z, ref_f_z, rtol=REF_TOL, atol=REF_TOL)
        np.testing.assert_allclose(logdet, ref_logdet, rtol=REF_TOL,
                                   atol=REF_TOL)
        assert alpha_hat > 0 and beta_hat >= -alpha_hat


def test_radial_logdet_is_log_det_of_finite_difference_jacobian(radial):
    layer, fn = radial
    rng = np.random.RandomState(4)
    violating = 0
    for z0, alpha, beta in radial_settings():
        set_param(layer.z0, z0)
        set_param(layer.alpha, alpha)
        set_param(layer.beta, beta)
        violating += get_param(layer.beta) < -softplus_np(
            get_param(layer.alpha))
        z = radial_test_points(rng, get_param(layer.z0))
        jacobians = finite_difference_jacobians(lambda x: fn(x)[0], z)
        signs, log_abs_dets = np.linalg.slogdet(jacobians)
        _, logdet, _, _ = fn(z)
        np.testing.assert_allclose(logdet, log_abs_dets, atol=FD_TOL)
        assert np.all(signs > 0)
    assert violating == 2


# ------------------------------------------------------ masked dense / IAF

def test_masked_dense_masks_match_made_rule_by_hand():
    l_in = InputLayer((None, 3))
    l_hidden = MaskedDenseLayer(l_in, 2, [1, 2], input_degrees=[1, 2, 3])
    l_out = MaskedDenseLayer(l_hidden, 3, [1, 2, 3], mask_type='output')
    # Hidden unit k sees inputs of degree <= m(k); output d those < d.
    np.testing.assert_array_equal(l_hidden.mask, [[1, 1], [0, 1], [0, 0]])
    np.testing.assert_array_equal(l_out.mask, [[0, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(made_input_degrees(3), [1, 2, 3])
    np.testing.assert_array_equal(made_input_degrees(3, reverse=True),
                                  [3, 2, 1])
    np.testing.assert_array_equal(made_hidden_degrees(5, 4), [1, 2, 3, 1, 2])


def test_masked_dense_network_is_autoregressive_in_any_order():
    rng = np.random.RandomState(5)
    dim, num_hidden = 5, 9
    input_degrees = rng.permutation(dim) + 1
    # Two outputs per variable, as an IAF network needs for m and s.
    output_degrees = np.tile(input_degrees, 2)
    x = T.dmatrix('x')
    l_in = InputLayer((None, dim), x)
    l_h1 = MaskedDenseLayer(l_in, num_hidden,
                            made_hidden_degrees(num_hidden, dim),
                            input_degrees=input_degrees,
                            W=init.Normal(1.), b=init.Normal(1.),
                            nonlinearity=T.tanh)
    l_h2 = MaskedDenseLayer(l_h1, num_hidden,
                            made_hidden_degrees(num_hidden, dim),
                            W=init.Normal(1.), b=init.Normal(1.),
                            nonlinearity=T.tanh)
    l_out = MaskedDenseLayer(l_h2, 2 * dim, output_degrees,
                             mask_type='output', W=init.Normal(1.),
                             nonlinearity=None)
    # Output k may see input j exactly when j comes earlier in the order.
    allowed = input_degrees[:, None] < output_degrees[None, :]

    paths = l_h1.mask @ l_h2.mask @ l_out.mask
    np.testing.assert_array_equal(paths > 0, allowed)

    fn = theano.function([x], get_output(l_out))
    points = rng.randn(3, dim)
    # Row j of plus/minus moves input j, so jacobian[j, k] = d out_k / d x_j
    # is laid out like `allowed`.
    steps = FD_STEP * np.eye(dim)
    for point in points:
        plus = fn(point + steps)
        minus = fn(point - steps)
        jacobian = (plus - minus) / (2 * FD_STEP)
        assert np.all(np.abs(jacobian[~allowed]) < 1e-12)
        assert np.all(np.abs(jacobian[allowed]) > 1e-8)


IAF_DIM, IAF_CONTEXT = 4, 3


@pytest.fixture(scope='module')
def iaf():
    previous_rng = lasagne.random.get_rng()
    lasagne.random.set_rng(np.random.RandomState(6))
    z = T.dmatrix('z')
    h = T.dmatrix('h')
    l_z = InputLayer((None, IAF_DIM), z)
    l_h = InputLayer((None, IAF_CONTEXT), h)
    # Large output weights, so m and s depend visibly on earlier variables.
    forward = InverseAutoregressiveFlowLayer(
        l_z, num_hidden=[8, 8], nonlinearity=T.tanh, context=l_h,
        W_output=init.Normal(0.5), mean_bias=init.Normal(1.),
        scale_bias=init.Normal(1.), name='iaf_forward')
    backward = InverseAutoregressiveFlowLayer(
        l_z, num_hidden=8, nonlinearity=T.tanh, reverse=True,
        W_output=init.Normal(0.5), mean_bias=init.Normal(1.),
        scale_bias=init.Normal(1.))
    lasagne.random.set_rng(previous_rng)
    outputs = get_output([forward, backward])
    fn = theano.function([z, h], outputs[0] + outputs[1])
    return forward, backward, fn


@pytest.mark.parametrize('direction', ['forward', 'reverse'])
def test_iaf_jacobian_is_triangular_and_logdet_matches(iaf, direction):
    _, _, fn = iaf
    rng = np.random.RandomState(7)
    z = 1.5 * rng.randn(5, IAF_DIM)
    context = rng.randn(5, IAF_CONTEXT)
    pick = 0 if direction == 'forward' else 2

    def flow(points, ctx):
        return fn(points, ctx)[pick]

    jacobians = finite_difference_jacobians(flow, z, context)
    logdet = fn(z, context)[pick + 1]
    # Forward: z_new_k depends on z_1..z_k (lower triangular); reverse: on
    # z_k..z_D (upper triangular).
    ahead = np.triu(np.ones((IAF_DIM, IAF_DIM), bool), 1)
    forbidden = ahead if direction == 'forward' else ahead.T
    allowed_off_diagonal = forbidden.T
    for jacobian in jacobians:
        assert np.all(np.abs(jacobian[forbidden]) < 1e-9)
        assert np.all(np.abs(jacobian[allowed_off_diagonal]) > 1e-6)
        assert np.all((np.diag(jacobian) > 0) & (np.diag(jacobian) < 1))
    _, log_abs_dets = np.linalg.slogdet(jacobians)
    np.testing.assert_allclose(logdet, log_abs_dets, atol=FD_TOL)
    np.testing.assert_allclose(
        logdet, np.log(np.diagonal(jacobians, axis1=1, axis2=2)).sum(1),
        atol=FD_TOL)


def test_iaf_context_changes_output_and_params_are_collected(iaf):
    forward, backward, fn = iaf
    rng = np.random.RandomState(8)
    z = rng.randn(4, IAF_DIM)
    out_a = fn(z, rng.randn(4, IAF_CONTEXT))
    out_b = fn(z, rng.randn(4, IAF_CONTEXT))
    assert np.max(np.abs(out_a[0] - out_b[0])) > 1e-3
    # The reverse flow has no context.
    np.testing.assert_array_equal(out_a[2], out_b[2])

    params = get_all_params(ListIndexLayer(forward, 0))
    names = sorted(p.name for p in params)
    assert names == sorted(
        ['iaf_forward.hidden0.W', 'iaf_forward.hidden0.b',
         'iaf_forward.hidden1.W', 'iaf_forward.hidden1.b',
         'iaf_forward.mean.W', 'iaf_forward.mean.b',
         'iaf_forward.scale.W', 'iaf_forward.scale.b',
         'iaf_forward.W_context'])
    assert forward.W_context.get_value().shape == (IAF_CONTEXT, 8)
    assert len(backward.get_params(trainable=True)) == 6


def test_iaf_default_initialisation_starts_near_identity_scale():
    lasagne.random.set_rng(np.random.RandomState(9))
    layer = InverseAutoregressiveFlowLayer((None, 3), num_hidden=6)
    sigma = 1. / (1. + np.exp(-get_param(layer.scale_layer.b)))
    assert np.all(sigma > 0.85)
    assert np.all(np.abs(get_param(layer.mean_layer.W)) < 0.1)


# --------------------------------------------- composition: density is one

def grid_masses(flow, cells, limit=7.):
    """Riemann sums of q_K over z_K space, for several logdet choices.

    A grid of square cells on [-limit, limit]^2 in z_0 space is mapped
    through the flow; the images of the cells tile z_K space (the flow is a
    bijection) and each image's area is measured with the shoelace formula
    on its mapped corners. `flow` maps z_0 to (z_K, logdets of each flow);
    returns the mapped areas and a function from the (cells, cells) logdet
    in use to sum_cells q_0(centre) exp(-logdet) area.
    """
    edges = np.linspace(-limit, limit, cells + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    nodes = np.stack(np.meshgrid(edges, edges, indexing='ij'), -1)
    mids = np.stack(np.meshgrid(centres, centres, indexing='ij'), -1)
    mapped_nodes = flow(nodes.reshape(-1, 2))[0].reshape(cells + 1,
                                                        cells + 1, 2)
    logdets = [ld.reshape(cells, cells) for ld in flow(mids.reshape(-1, 2))[1]]
    corners = [mapped_nodes[:-1, :-1], mapped_nodes[1:, :-1],
               mapped_nodes[1:, 1:], mapped_nodes[:-1, 1:]]
    area = np.zeros((cells, cells))
    for a, b in zip(corners, corners[1:] + corners[:1]):
        area += 0.5 * (a[..., 0] * b[..., 1] - b[..., 0] * a[..., 1])
    log_q0 = -0.5 * np.sum(mids ** 2, -1) - np.log(2 * np.pi)

    def mass(logdet):
        return np.sum(np.exp(log_q0 - logdet) * area)
    return area, logdets, mass


def test_composed_flow_density_integrates_to_one_on_a_grid():
    """q_K(z_K) = N(z_0; 0, I) exp(-sum_k logdet_k) integrates to 1."""
    lasagne.random.set_rng(np.random.RandomState(10))
    z = T.dmatrix('z')
    flow_specs = [
        (NormalizingPlanarFlowLayer,
         dict(u=floatx([2., -1.]), w=floatx([1.5, 0.5]), b=floatx(0.3))),
        (NormalizingRadialFlowLayer,
         dict(z0=floatx([0.5, -0.5]), alpha=floatx(0.), beta=floatx(1.5))),
        (InverseAutoregressiveFlowLayer,
         dict(num_hidden=6, nonlinearity=T.tanh, W_output=init.Normal(0.7))),
        (NormalizingPlanarFlowLayer,
         dict(u=floatx([-3., 1.]), w=floatx([0.5, 1.]), b=floatx(-0.5))),
        (NormalizingRadialFlowLayer,
         dict(z0=floatx([-0.3, 0.8]), alpha=floatx(0.5), beta=floatx(-1.5))),
    ]
    # Stacked through ListIndexLayer, as users stack flows.
    l_z = InputLayer((None, 2), z)
    logdet_layers = []
    for flow_class, kwargs in flow_specs:
        l_flow = flow_class(l_z, **kwargs)
        l_z = ListIndexLayer(l_flow, 0)
        logdet_layers.append(ListIndexLayer(l_flow, 1))
    fn = theano.function([z], get_output([l_z] + logdet_layers))

    def flow(points):
        outputs = fn(points)
        return outputs[0], outputs[1:]

    masses = []
    for cells in (200, 400):
        area, logdets, mass = grid_masses(flow, cells)
        # Counter-clockwise cells stay counter-clockwise: orientation kept.
        assert np.all(area > 0)
        masses.append(mass(sum(logdets)))
    # The Riemann sum's error is O(cells^-2); Richardson extrapolation
    # removes its leading term.
    extrapolated = (4 * masses[1] - masses[0]) / 3.
    assert abs(extrapolated - 1.) < 2e-4
    # The check has power: leaving out any one flow's logdet, or getting
    # them all 10% wrong, moves the mass far more than the tolerance.
    for left_out in logdets:
        assert abs(mass(sum(logdets) - left_out) - 1.) > 0.1
    assert abs(mass(1.1 * sum(logdets)) - 1.) > 0.01


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize('flow_class', [NormalizingPlanarFlowLayer,
                                        NormalizingRadialFlowLayer])
@pytest.mark.parametrize('shape', [(None, 2, 3), (5,), (None, None)])
def test_flow_rejects_non_matrix_input(flow_class, shape):
    with pytest.raises(ValueError) as error:
        flow_class(InputLayer(shape), name='my_flow')
    message = str(error.value)
    assert flow_class.__name__ in message and 'my_flow' in message
    assert str(shape) in message


def test_iaf_and_masked_dense_reject_bad_arguments():
    with pytest.raises(ValueError, match=r'\(None, 4, 2\)'):
        InverseAutoregressiveFlowLayer(InputLayer((None, 4, 2)), 8)
    with pytest.raises(ValueError, match='context'):
        InverseAutoregressiveFlowLayer(InputLayer((None, 4)), 8,
                                       context=InputLayer((None, 3, 1)))
    with pytest.raises(ValueError, match='batch sizes'):
        InverseAutoregressiveFlowLayer(InputLayer((10, 4)), 8,
                                       context=InputLayer((5, 3)))
    with pytest.raises(ValueError, match='num_hidden'):
        InverseAutoregressiveFlowLayer(InputLayer((None, 4)), [])
    with pytest.raises(ValueError, match='num_hidden'):
        InverseAutoregressiveFlowLayer(InputLayer((None, 4)), [8, 0])
    l_in = InputLayer((None, 3))
    with pytest.raises(ValueError, match='input_degrees'):
        MaskedDenseLayer(l_in, 2, [1, 2])
    with pytest.raises(ValueError, match='input_degrees'):
        MaskedDenseLayer(l_in, 2, [1, 2], input_degrees=[1, 2])
    with pytest.raises(ValueError, match='degrees'):
        MaskedDenseLayer(l_in, 2, [1, 2, 3], input_degrees=[1, 2, 3])
    with pytest.raises(ValueError, match='mask_type'):
        MaskedDenseLayer(l_in, 2, [1, 2], input_degrees=[1, 2, 3],
                         mask_type='strict')
