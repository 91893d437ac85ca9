"""Limited-memory SR1 against ``scipy.optimize.SR1`` on scipy's own hessian-update test cases.

The iterate list and the Rosenbrock gradient are ported from scipy's
``scipy/optimize/tests/test_hessian_update_strategy.py`` (``test_rosenbrock_with_no_exception``,
``test_SR1_skip_update``; scipy 1.17.1, BSD-3-Clause).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import SR1 as ScipySR1

from cases import quadratic
from hmr_fit.optim import SR1, minimize
from hmr_fit.optim.sr1 import sr1_apply, sr1_auto_scale, sr1_factors

X_LIST = [[0.0976270, 0.4303787, 0.2055267, 0.0897663, -0.15269040],
          [0.1847239, 0.0505757, 0.2123832, 0.0255081, 0.00083286],
          [0.2142498, -0.0188480, 0.0503822, 0.0347033, 0.03323606],
          [0.2071680, -0.0185071, 0.0341337, -0.0139298, 0.02881750],
          [0.1533055, -0.0322935, 0.0280418, -0.0083592, 0.01503699],
          [0.1382378, -0.0276671, 0.0266161, -0.0074060, 0.02801610],
          [0.1651957, -0.0049124, 0.0269665, -0.0040025, 0.02138184],
          [0.2354930, 0.0443711, 0.0173959, 0.0041872, 0.00794563],
          [0.4168118, 0.1433867, 0.0111714, 0.0126265, -0.00658537],
          [0.4681972, 0.2153273, 0.0225249, 0.0152704, -0.00463809],
          [0.6023068, 0.3346815, 0.0731108, 0.0186618, -0.00371541],
          [0.6415743, 0.3985468, 0.1324422, 0.0214160, -0.00062401],
          [0.7503690, 0.5447616, 0.2804541, 0.0539851, 0.00242230],
          [0.7452626, 0.5644594, 0.3324679, 0.0865153, 0.00454960],
          [0.8059782, 0.6586838, 0.4229577, 0.1452990, 0.00976702],
          [0.8549542, 0.7226562, 0.4991309, 0.2420093, 0.02772661],
          [0.8571332, 0.7285741, 0.5279076, 0.2824549, 0.06030276],
          [0.8835633, 0.7727077, 0.5957984, 0.3411303, 0.09652185],
          [0.9071558, 0.8299587, 0.6771400, 0.4402896, 0.17469338],
          [0.9190793, 0.8486480, 0.7163332, 0.5083780, 0.26107691],
          [0.9371223, 0.8762177, 0.7653702, 0.5773109, 0.32181041],
          [0.9554613, 0.9119893, 0.8282687, 0.6776178, 0.43162744],
          [0.9545744, 0.9099264, 0.8270244, 0.6822220, 0.45237623],
          [0.9688112, 0.9351710, 0.8730961, 0.7546601, 0.56622448],
          [0.9743227, 0.9491953, 0.9005150, 0.8086497, 0.64505437],
          [0.9807345, 0.9638853, 0.9283012, 0.8631675, 0.73812581],
          [0.9886746, 0.9777760, 0.9558950, 0.9123417, 0.82726553],
          [0.9899096, 0.9803828, 0.9615592, 0.9255600, 0.85822149],
          [0.9969510, 0.9935441, 0.9864657, 0.9726775, 0.94358663],
          [0.9979533, 0.9960274, 0.9921724, 0.9837415, 0.96626288],
          [0.9995981, 0.9989171, 0.9974178, 0.9949954, 0.99023356],
          [1.0002640, 1.0005088, 1.0010594, 1.0021161, 1.00386912],
          [0.9998903, 0.9998459, 0.9997795, 0.9995484, 0.99916305],
          [1.0000008, 0.9999905, 0.9999481, 0.9998903, 0.99978047],
          [1.0000004, 0.9999983, 1.0000001, 1.0000031, 1.00000297],
          [0.9999995, 1.0000003, 1.0000005, 1.0000001, 1.00000032],
          [0.9999999, 0.9999997, 0.9999994, 0.9999989, 0.99999786],
          [0.9999999, 0.9999999, 0.9999999, 0.9999999, 0.99999991]]


def rosen_grad(x):
    """scipy's test Rosenbrock gradient."""
    x = np.asarray(x)
    xm, xm_m1, xm_p1 = x[1:-1], x[:-2], x[2:]
    der = np.zeros_like(x)
    der[1:-1] = 200 * (xm - xm_m1**2) - 400 * (xm_p1 - xm**2) * xm - 2 * (1 - xm)
    der[0] = -400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0])
    der[-1] = 200 * (x[-1] - x[-2] ** 2)
    return der


def pairs(n_points=len(X_LIST)):
    xs = [np.array(x) for x in X_LIST[:n_points]]
    gs = [rosen_grad(x) for x in xs]
    return [xs[i + 1] - xs[i] for i in range(len(xs) - 1)], [gs[i + 1] - gs[i] for i in range(len(gs) - 1)]


def ours_matrix(S, Y, gamma, min_denominator):
    """Explicit n×n inverse Hessian from our limited-memory factors (memory = all pairs)."""
    St = torch.tensor(np.array(S))[None]
    Yt = torch.tensor(np.array(Y))[None]
    valid = torch.ones(1, len(S), dtype=torch.bool)
    g = torch.tensor([gamma], dtype=torch.float64)
    U, inv_d = sr1_factors(St, Yt, valid, g, min_denominator)
    n = St.shape[-1]
    return torch.stack([sr1_apply(U, inv_d, g, torch.eye(n, dtype=torch.float64)[i][None])[0] for i in range(n)], 1)


@pytest.mark.parametrize("init_scale", [1, "auto"])
@pytest.mark.parametrize("min_denominator", [1e-8, 1e-2])
def test_inverse_matches_scipy_after_every_update(init_scale, min_denominator):
    """scipy's test_rosenbrock_with_no_exception pairs, compared after every update."""
    delta_x, delta_grad = pairs()
    ref = ScipySR1(init_scale=init_scale, min_denominator=min_denominator)
    ref.initialize(5, "inv_hess")
    gamma = 1.0 if init_scale == 1 else float(sr1_auto_scale(torch.tensor(delta_x[0])[None],
                                                            torch.tensor(delta_grad[0])[None])[0])
    for k in range(len(delta_x)):
        ref.update(delta_x[k], delta_grad[k])
        H = ours_matrix(delta_x[: k + 1], delta_grad[: k + 1], gamma, min_denominator)
        np.testing.assert_allclose(H.numpy(), ref.get_matrix(), rtol=1e-7, atol=1e-9 * np.abs(ref.get_matrix()).max())


@pytest.mark.parametrize("min_denominator", [1e-2, 0.1, 0.3])
def test_skip_update_matches_scipy(min_denominator):
    """scipy's test_SR1_skip_update: with min_denominator = 1e-2 the update from pair 17 is skipped (hess form).
    In the inverse form (ours) no pair of these 18 is skipped at 1e-2, so larger thresholds are used as well;
    our skips must coincide with scipy's (H unchanged by exactly those pairs)."""
    delta_x, delta_grad = pairs(19)
    ref = ScipySR1(init_scale=1, min_denominator=min_denominator)
    ref.initialize(5, "inv_hess")
    St = torch.tensor(np.array(delta_x))[None]
    Yt = torch.tensor(np.array(delta_grad))[None]
    _, inv_d = sr1_factors(St, Yt, torch.ones(1, len(delta_x), dtype=torch.bool),
                           torch.tensor([1.0], dtype=torch.float64), min_denominator)
    skipped_scipy = []
    for k in range(len(delta_x)):
        before = ref.get_matrix().copy()
        ref.update(delta_x[k], delta_grad[k])
        skipped_scipy.append(bool(np.array_equal(before, ref.get_matrix())))
    assert skipped_scipy == (inv_d[0] == 0).tolist()
    if min_denominator >= 0.3:
        assert any(skipped_scipy) and not all(skipped_scipy)
    # and scipy's original hess-form case: the 18th pair is skipped there
    hess = ScipySR1(init_scale=1, min_denominator=1e-2)
    hess.initialize(5, "hess")
    for k in range(17):
        hess.update(delta_x[k], delta_grad[k])
    B = hess.get_matrix().copy()
    hess.update(delta_x[17], delta_grad[17])
    np.testing.assert_array_equal(B, hess.get_matrix())


def test_limited_memory_equals_scipy_on_last_m_pairs():
    delta_x, delta_grad = pairs()
    m = 4
    ref = ScipySR1(init_scale=0.5)
    ref.initialize(5, "inv_hess")
    for s, y in zip(delta_x[-m:], delta_grad[-m:]):
        ref.update(s, y)
    H = ours_matrix(delta_x[-m:], delta_grad[-m:], 0.5, 1e-8)
    np.testing.assert_allclose(H.numpy(), ref.get_matrix(), rtol=1e-7, atol=1e-12)


def test_optimizer_preconditioner_equals_scipy_on_its_own_pairs():
    """Run the SR1 optimizer, then rebuild scipy's SR1 from the pairs it stored: same H g."""
    objective, x0, _ = quadratic(B=2, n=5, seed=8, cond=50.0)
    opt = SR1(history_size=20)
    state = opt.init(x0)
    with torch.no_grad():
        for _ in range(4):
            state = opt.step(state, objective)
    for b in range(2):
        ref = ScipySR1(init_scale="auto")
        ref.initialize(5, "inv_hess")
        valid = state.buffers["valid"][b]
        for s, y in zip(state.buffers["S"][b][valid], state.buffers["Y"][b][valid]):
            ref.update(s.numpy(), y.numpy())
        ours = opt.inverse_hessian_apply(state, state.g)[b]
        np.testing.assert_allclose(ours.numpy(), ref.dot(state.g[b].numpy()), rtol=1e-8, atol=1e-12)


def test_sr1_converges_on_quadratic():
    objective, x0, _ = quadratic(B=3, n=6, seed=9, cond=100.0)
    res = minimize(objective, x0, SR1(), max_steps=100, tol=1e-8)
    assert res.converged.all()
