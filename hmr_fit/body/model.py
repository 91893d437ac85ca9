"""BodyModel: an SMPL-format body model (the shipped open model, or a user's SMPL file) as a batched torch module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmr_fit.body import lbs
from hmr_fit.body.io import parents_from_kintree, read_model_file
from hmr_fit.body.joints import KEYPOINT_NAMES, SMPL_JOINT_NAMES, SMPL_KEYPOINT_SOURCES
from hmr_fit.errors import InputError, ModelFileError

OPEN_MODEL_FILE = "open_body_model.npz"


@dataclass
class BodyOutput:
    """Posed body.

    Attributes:
        joints: (B, J, 3) posed joint locations, metres, model/camera frame.
        keypoints: (B, K, 3) the 23 fitting keypoints (COCO-17 + feet), metres.
        vertices: (B, V, 3) posed mesh, or None when not requested.
    """

    joints: torch.Tensor
    keypoints: torch.Tensor
    vertices: torch.Tensor | None


class BodyModel(torch.nn.Module):
    """SMPL-format body model with its own linear blend skinning (no smplx code on the default path).

    ``forward(betas, body_pose, global_orient, transl)`` follows SMPL: shape blend, joints from the rest mesh,
    optional pose correctives, rigid chain about the rest joints, skinning, then translation. The 23 fitting
    keypoints are regressed from posed vertices (open model: anny's COCO regressor) or taken from posed joints
    and SMPL vertex ids (official SMPL topology). Joints and keypoints are exact without skinning the mesh
    (the keypoint regressor is composed with the skinning weights), which is what makes fitting cheap.

    Args:
        model_path: model file (.npz/.pkl); None loads the shipped open model.
        num_betas: number of shape coefficients used (at most what the file has); None uses all.
        dtype: float32 or float64.
    """

    def __init__(self, model_path: str | Path | None = None, num_betas: int | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        if model_path is None:
            from hmr_fit.assets import data_path

            model_path = data_path(OPEN_MODEL_FILE)
        self.model_path = Path(model_path)
        data = read_model_file(self.model_path)
        self.metadata = json.loads(str(data["metadata"])) if "metadata" in data else {}
        self.name = self.metadata.get("name", self.model_path.stem)

        shapedirs = data["shapedirs"]
        available = shapedirs.shape[2]
        if num_betas is None:
            num_betas = int(self.metadata.get("num_betas", available))
        if not 0 < num_betas <= available:
            raise ModelFileError(f"body model '{self.model_path}' has {available} betas; num_betas={num_betas} "
                                 "is out of range")
        self.num_betas = num_betas
        self.parents = parents_from_kintree(data["kintree_table"])
        self.num_joints = len(self.parents)
        n = len(self.parents)
        names = data.get("joint_names")
        self.joint_names = tuple(str(x) for x in names) if names is not None else (
            SMPL_JOINT_NAMES if n == 24 else tuple(f"joint_{i}" for i in range(n)))
        self.faces = np.asarray(data["f"], dtype=np.int64)

        def buf(name: str, array: np.ndarray) -> None:
            self.register_buffer(name, torch.as_tensor(np.asarray(array, dtype=np.float64)).to(dtype))

        v_template = data["v_template"]
        shapedirs = shapedirs[:, :, :num_betas]
        j_regressor = data["J_regressor"]
        buf("v_template", v_template)
        buf("shapedirs", shapedirs)
        buf("lbs_weights", data["weights"])
        # Joints are linear in betas, so regress them once from the template and the shape directions:
        # J(b) = J_reg v_template + sum_s b_s J_reg shapedirs[..., s]. Exact, and the mesh is not needed for joints.
        buf("joint_template", j_regressor @ v_template)
        buf("joint_shapedirs", np.einsum("jv,vks->jks", j_regressor, shapedirs))
        posedirs = data.get("posedirs")
        if posedirs is not None and np.any(posedirs):
            # (V, 3, P) -> (P, V*3), so pose offsets are one matmul.
            buf("posedirs", posedirs.reshape(-1, posedirs.shape[2]).T)
        else:
            self.posedirs = None  # the open model has none: skip the (B, 207) x (207, 3V) product entirely
        self._init_keypoints(data)

    def _init_keypoints(self, data: dict[str, np.ndarray]) -> None:
        if "keypoint_vertex_ids" in data:
            vertex_ids = data["keypoint_vertex_ids"].astype(np.int64)
            vertex_weights = data["keypoint_vertex_weights"]
            joint_ids = data.get("keypoint_joint_ids", np.full(len(vertex_ids), -1))
            names = tuple(str(x) for x in data.get("keypoint_names", KEYPOINT_NAMES))
        elif self.v_template.shape[0] == 6890 and self.num_joints == 24:
            # Official SMPL topology: body keypoints from joints, face and feet from SMPL vertex ids.
            names = KEYPOINT_NAMES
            vertex_ids = np.zeros((len(names), 1), dtype=np.int64)
            vertex_weights = np.zeros((len(names), 1))
            joint_ids = np.full(len(names), -1)
            for k, name in enumerate(names):
                kind, index = SMPL_KEYPOINT_SOURCES[name]
                if kind == "joint":
                    joint_ids[k] = SMPL_JOINT_NAMES.index(index)
                else:
                    vertex_ids[k, 0], vertex_weights[k, 0] = index, 1.0
        else:
            raise ModelFileError(f"body model '{self.model_path}' has no keypoint regressor and is not SMPL "
                                 f"topology (V={self.v_template.shape[0]}); add keypoint_vertex_ids/weights")
        self.keypoint_names = names
        dtype = self.v_template.dtype
        # Compose the vertex regressor with the skinning weights (see lbs.skin_regressed): per keypoint and joint,
        # c[k,j] = sum_n r[k,n] w[v_n,j] and p[k,j] = sum_n r[k,n] w[v_n,j] x[v_n], the latter linear in betas
        # (and in pose features when the model has correctives), so keypoints never need the skinned mesh.
        ids = torch.as_tensor(vertex_ids.astype(np.int64))
        r = torch.as_tensor(np.asarray(vertex_weights, np.float64)).to(dtype)
        rw = r[..., None] * self.lbs_weights[ids]  # (K, N, J)
        self.register_buffer("kp_skin_weights", rw.sum(1))
        self.register_buffer("kp_template", torch.einsum("knj,knx->kjx", rw, self.v_template[ids]))
        self.register_buffer("kp_shapedirs", torch.einsum("knj,knxs->kjxs", rw, self.shapedirs[ids]))
        if self.posedirs is not None:
            pd = self.posedirs.T.reshape(-1, 3, self.posedirs.shape[0])[ids]  # (K, N, 3, P)
            self.register_buffer("kp_posedirs", torch.einsum("knj,knxp->kjxp", rw, pd))
        self.register_buffer("kp_joint_ids", torch.as_tensor(np.asarray(joint_ids, np.int64)))

    def _chain_levels(self, device: torch.device) -> dict:
        cached = getattr(self, "_levels", None)
        if cached is None or cached["order"].device != device:
            self._levels = lbs.chain_levels(self.parents, device)
        return self._levels

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    def forward(self, betas: torch.Tensor | None = None, body_pose: torch.Tensor | None = None,
                global_orient: torch.Tensor | None = None, transl: torch.Tensor | None = None,
                return_vertices: bool = True) -> BodyOutput:
        """Pose the body.

        Args:
            betas: (B, S) shape coefficients (S <= num_betas; missing ones are zero). None: mean shape.
            body_pose: (B, J-1, 3) or (B, 3 (J-1)) axis-angle per non-root joint, radians. None: zero pose.
            global_orient: (B, 3) root axis-angle. None: identity.
            transl: (B, 3) translation, metres. None: zero.
            return_vertices: skin the whole mesh (False: joints and keypoints only, much cheaper).
        Returns:
            BodyOutput with joints (B, J, 3), keypoints (B, K, 3), vertices (B, V, 3) or None.
        """
        batch = next((t.shape[0] for t in (betas, body_pose, global_orient, transl) if t is not None), 1)
        dtype, device = self.v_template.dtype, self.v_template.device
        betas = self._arg(betas, (batch, self.num_betas), "betas", pad=True)
        body_pose = self._arg(body_pose, (batch, self.num_joints - 1, 3), "body_pose")
        global_orient = self._arg(global_orient, (batch, 3), "global_orient")
        transl = self._arg(transl, (batch, 3), "transl")

        # 1. Rotations of all joints, root first.
        rotmats = lbs.rodrigues(torch.cat([global_orient.unsqueeze(1), body_pose], dim=1))
        # 2. Rest joints from betas, then the rigid chain.
        rest_joints = lbs.blend_shapes(betas, self.joint_template, self.joint_shapedirs)
        joints, transforms = lbs.rigid_chain(rotmats, rest_joints, self.parents, self._chain_levels(device))

        # 3. Keypoints from the composed regressor; a posed joint where the regressor names one.
        kp_points = self.kp_template + torch.einsum("kjxs,bs->bkjx", self.kp_shapedirs, betas)
        features = lbs.pose_features(rotmats) if self.posedirs is not None else None
        if features is not None:
            kp_points = kp_points + torch.einsum("kjxp,bp->bkjx", self.kp_posedirs, features)
        keypoints = lbs.skin_regressed(kp_points, self.kp_skin_weights, transforms)
        use_joint = self.kp_joint_ids >= 0
        if bool(use_joint.any()):
            from_joints = joints[:, self.kp_joint_ids.clamp(min=0)]
            keypoints = torch.where(use_joint[None, :, None], from_joints, keypoints)

        # 4. The mesh, only when asked for.
        vertices = None
        if return_vertices:
            rest = lbs.blend_shapes(betas, self.v_template, self.shapedirs)
            if features is not None:
                rest = rest + (features @ self.posedirs).reshape(batch, -1, 3)
            vertices = lbs.skin(rest, self.lbs_weights, transforms)

        offset = transl.unsqueeze(1)
        return BodyOutput(joints=joints + offset, keypoints=keypoints + offset,
                          vertices=None if vertices is None else vertices + offset)

    def _arg(self, value: torch.Tensor | None, shape: tuple[int, ...], name: str, pad: bool = False) -> torch.Tensor:
        dtype, device = self.v_template.dtype, self.v_template.device
        if value is None:
            return torch.zeros(shape, dtype=dtype, device=device)
        value = torch.as_tensor(value)
        if value.dim() == 2 and len(shape) == 3 and value.shape[1] == shape[1] * shape[2]:
            value = value.reshape(value.shape[0], shape[1], shape[2])
        if pad and value.dim() == 2 and value.shape[0] == shape[0] and value.shape[1] < shape[1]:
            value = torch.nn.functional.pad(value, (0, shape[1] - value.shape[1]))
        if tuple(value.shape) != shape:
            raise InputError(f"{name} must be {shape}, got {tuple(value.shape)}")
        if value.dtype != dtype or value.device != device:
            value = value.to(dtype=dtype, device=device)
        return value
