"""L-SR1-specific properties: PSD preconditioner, descent, implicit = explicit, dimension invariance, save/load."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import quadratic
from hmr_fit.optim import LSR1, load_optimizer, minimize
from hmr_fit.optim.lsr1_nets import apply_preconditioner, explicit_preconditioner


def random_state(opt: LSR1, B: int, n: int, seed: int, steps: int, scale: float = 1.0):
    """A state reached by ``steps`` L-SR1 steps on a random quadratic (so the buffer holds network vectors)."""
    objective, x0, _ = quadratic(B=B, n=n, seed=seed, cond=100.0)
    x0 = x0 * scale
    state = opt.init(x0)
    with torch.no_grad():
        for _ in range(steps):
            state = opt.step(state, objective)
    return state, objective


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), L=st.integers(1, 6), seed=st.integers(0, 10_000),
       log_scale=st.floats(-3, 3), keep_identity=st.booleans())
def test_preconditioner_is_psd_on_random_buffers(n, L, seed, log_scale, keep_identity):
    g = torch.Generator().manual_seed(seed)
    V = torch.randn(3, L, n, generator=g, dtype=torch.float64) * 10**log_scale
    identity = torch.tensor([1.0, 1.0, 1.0 if keep_identity else 0.0], dtype=torch.float64)
    M = explicit_preconditioner(V, identity)
    assert torch.allclose(M, M.transpose(1, 2))
    eig = torch.linalg.eigvalsh(M)
    assert (eig >= -1e-9 * eig.abs().amax(-1, keepdim=True).clamp_min(1)).all()
    # with the identity: B̃ >= I (eigensolver error scales with the largest eigenvalue)
    assert (eig[:2] >= 1 - 1e-9 * eig[:2].abs().amax(-1, keepdim=True).clamp_min(1)).all()


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 30), seed=st.integers(0, 10_000), steps=st.integers(0, 8),
       log_scale=st.floats(-2, 2), rescale=st.booleans())
def test_direction_is_descent_on_random_states(n, seed, steps, log_scale, rescale):
    opt = LSR1(rescale=rescale, seed=seed % 7)
    state, objective = random_state(opt, B=3, n=n, seed=seed, steps=steps, scale=10**log_scale)
    gvec = torch.randn(3, n, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    d = -opt.precondition(state, gvec)
    cos = -(d * gvec).sum(-1) / (d.norm(dim=-1) * gvec.norm(dim=-1))
    assert (cos > 0).all(), cos
    # the step actually taken is -η ⊙ B̃ g with η > 0 coordinate-wise
    with torch.no_grad():
        new = opt.step(state, objective)
    assert (new.buffers["eta"] > 0).all()


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 30), seed=st.integers(0, 10_000), steps=st.integers(0, 6), log_scale=st.floats(-2, 2))
def test_symmetric_step_is_always_downhill(n, seed, steps, log_scale):
    """step_form="symmetric": Δx = -D^½ B̃ D^½ g with D = diag(η) > 0, so g'Δx < 0 for every g != 0."""
    opt = LSR1(step_form="symmetric", seed=seed % 5)
    state, objective = random_state(opt, B=3, n=n, seed=seed, steps=steps, scale=10**log_scale)
    with torch.no_grad():
        state = opt.prime(state, objective)
        new = opt.step(state, objective)
    moved = new.active & state.active
    gdx = (state.g * (new.x - state.x)).sum(-1)
    assert (gdx[moved] < 0).all(), gdx


@pytest.mark.parametrize("keep_identity", [True, False])
@pytest.mark.parametrize("steps", [1, 3, 6])
def test_implicit_preconditioner_equals_explicit_matrix(keep_identity, steps):
    opt = LSR1(keep_identity=keep_identity, memory=4, seed=1)
    state, _ = random_state(opt, B=2, n=7, seed=3, steps=steps)
    z = torch.randn(2, 7, dtype=torch.float64)
    M = opt.preconditioner_matrix(state)
    explicit = torch.einsum("bij,bj->bi", M, z)
    torch.testing.assert_close(opt.precondition(state, z), explicit, rtol=1e-12, atol=1e-12)
    # the rescale option only changes the length
    out = apply_preconditioner(state.buffers["V"], z, torch.ones(2, dtype=z.dtype), rescale=True)
    torch.testing.assert_close(out.norm(dim=-1), z.norm(dim=-1))


def test_fifo_buffer_keeps_the_last_L_vectors():
    opt = LSR1(memory=3, seed=0)
    state, objective = random_state(opt, B=2, n=5, seed=0, steps=2)
    with torch.no_grad():
        history = []
        for _ in range(4):
            state = opt.step(state, objective)
            history.append(state.buffers["V"][:, -1].clone())
    torch.testing.assert_close(state.buffers["V"], torch.stack(history[-3:], 1))
    assert (state.buffers["count"] == 6).all()


def test_same_weights_run_at_n2_and_n1000_tiled_problem_gives_tiled_iterates():
    """Dimension invariance: 500 copies of a 2-d problem give 500 copies of the 2-d trajectory."""
    opt = LSR1(seed=2).to(dtype=torch.float64)
    A = torch.tensor([[[2.0, 0.5], [0.5, 1.0]]], dtype=torch.float64)
    xs = torch.tensor([[1.0, -2.0]], dtype=torch.float64)

    def small(x):
        z = x - xs
        g = torch.einsum("bij,bj->bi", A, z)
        return 0.5 * (z * g).sum(-1), g

    def big(x):
        z = (x - xs.repeat(1, 500)).reshape(1, 500, 2)
        g = torch.einsum("bij,bkj->bki", A, z)
        return 0.5 * (z * g).sum((-1, -2)), g.reshape(1, 1000)  # sum of 500 copies: the gradient tiles

    x0 = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    r2 = minimize(small, x0, opt, max_steps=15, tol=0.0)
    r1000 = minimize(big, x0.repeat(1, 500), opt, max_steps=15, tol=0.0)
    assert r1000.x.shape == (1, 1000)
    torch.testing.assert_close(r1000.x, r2.x.repeat(1, 500), rtol=1e-9, atol=1e-12)
    assert r2.f[0] < r2.f_trace[0, 0]


def test_runs_unchanged_at_n1000_random_quadratic():
    opt = LSR1(seed=0)
    objective, x0, _ = quadratic(B=2, n=1000, seed=0, dtype=torch.float32, cond=10.0)
    res = minimize(objective, x0, opt, max_steps=10, tol=0.0)
    assert not res.failed.any() and (res.f < res.f_trace[0]).all()


def test_coordinate_permutation_equivariance():
    opt = LSR1(seed=4).to(dtype=torch.float64)
    objective, x0, (A, xs) = quadratic(B=2, n=6, seed=7)
    p = torch.tensor([3, 0, 5, 1, 4, 2])
    Ap, xsp = A[:, p][:, :, p], xs[:, p]

    def permuted(x):
        z = x - xsp
        g = torch.einsum("bij,bj->bi", Ap, z)
        return 0.5 * (z * g).sum(-1), g

    a = minimize(objective, x0, opt, max_steps=8, tol=0.0)
    b = minimize(permuted, x0[:, p], opt, max_steps=8, tol=0.0)
    torch.testing.assert_close(b.x, a.x[:, p], rtol=1e-9, atol=1e-12)


def test_save_load_round_trip_and_architecture_check(tmp_path):
    opt = LSR1(hidden=16, memory=3, alpha1=0.02, seed=5)
    path = tmp_path / "w.pt"
    opt.save(path, meta={"note": "test"})
    loaded = LSR1.load(path)
    assert loaded.hparams() == opt.hparams() and loaded.meta == {"note": "test"}
    for a, b in zip(opt.parameters(), loaded.parameters()):
        assert torch.equal(a, b)
    again = LSR1(hidden=16, memory=3, alpha1=0.02, weights=path)
    assert all(torch.equal(a, b) for a, b in zip(opt.parameters(), again.parameters()))
    assert isinstance(load_optimizer(path), LSR1)
    with pytest.raises(ValueError, match="different architecture"):
        LSR1(hidden=32, weights=path)
    d = opt.state_dict()
    d["format_version"] = 99
    with pytest.raises(ValueError, match="format version"):
        LSR1().load_state_dict(d)
    with pytest.raises(FileNotFoundError):
        LSR1(weights=tmp_path / "missing.pt")


def test_float64_problem_with_float32_weights_and_to():
    opt = LSR1(seed=0)
    objective, x0, _ = quadratic(B=2, n=4)
    r32 = minimize(objective, x0, opt, max_steps=5, tol=0.0)
    assert r32.x.dtype == torch.float64
    opt.to(dtype=torch.float64)
    assert opt.dtype == torch.float64
    r64 = minimize(objective, x0, opt, max_steps=5, tol=0.0)
    torch.testing.assert_close(r32.x, r64.x, rtol=1e-5, atol=1e-6)


def test_group_channel():
    opt = LSR1(n_groups=4, seed=0)
    objective, x0, _ = quadratic(B=2, n=6)
    groups = torch.tensor([0, 0, 1, 2, 3, 3])
    a = minimize(objective, x0, opt, max_steps=4, tol=0.0, groups=groups)
    b = minimize(objective, x0, opt, max_steps=4, tol=0.0, groups=torch.zeros(6, dtype=torch.long))
    assert not torch.equal(a.x, b.x)  # the group ids reach the networks
    with pytest.raises(ValueError, match="groups ids"):
        opt.init(x0, groups=torch.tensor([0, 0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match="n_groups=0"):
        LSR1().init(x0, groups=groups)


def test_meta_gradient_reaches_every_learned_weight():
    from hmr_fit.train.meta_loss import MetaLoss
    from hmr_fit.train.tasks import Quadratic
    from hmr_fit.train.unroll import run_segment, start

    opt = LSR1(seed=0)
    problem = Quadratic(cond=(10.0, 100.0)).sample(4, 5, torch.Generator().manual_seed(0))
    state = start(opt, problem)
    seg = run_segment(opt, problem, state, state.f, steps=6, loss=MetaLoss(lam=1.0))
    seg.loss.backward()
    for name, p in opt.nets.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_state_is_not_edited_in_place():
    opt = LSR1(seed=0)
    state, objective = random_state(opt, B=2, n=4, seed=0, steps=2)
    before = {k: v.clone() for k, v in state.buffers.items()}
    x = state.x.clone()
    with torch.no_grad():
        opt.step(state, objective)
    assert torch.equal(state.x, x)
    assert all(torch.equal(before[k], state.buffers[k]) for k in before)
