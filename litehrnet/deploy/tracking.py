"""Track IDs across frames: greedy matching of each frame's people to the tracks of earlier frames.

Similarity between a person and a track is the OKS of their poses (COCO sigmas, the track's box
area as the object area, keypoints whose score reaches ``kpt_thr`` in both poses; ``metric="oks"``)
or the IoU of their boxes (``metric="iou"``, also the fallback when two poses share no confident
keypoint). Pairs are taken greedily from the most similar down; a pair below ``match_thr`` is never
matched. Unmatched people start new tracks with the next free ID (IDs are never reused).

Lifetime of lost tracks: a track that finds no person is kept, frozen at its last box and pose,
for up to ``max_lost`` frames (default 30, one second at 30 frames/s); a person who reappears within
that time close to where the track was last seen (similarity >= ``match_thr``) gets the old ID
back. After ``max_lost`` unmatched frames the track is dropped, and the person returns with a new ID.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from litehrnet.evaluation.oks import oks_iou
from litehrnet.keypoints import COCO_BODY_17


def box_iou_xywh(a_xywh: np.ndarray, b_xywh: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of boxes ``[l, t, w, h, ...]``."""
    a = np.asarray(a_xywh, np.float64).reshape(-1, np.shape(a_xywh)[-1] if np.size(a_xywh) else 4)[:, :4]
    b = np.asarray(b_xywh, np.float64).reshape(-1, np.shape(b_xywh)[-1] if np.size(b_xywh) else 4)[:, :4]
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    union = a[:, 2:].prod(-1)[:, None] + b[:, 2:].prod(-1)[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass
class Track:
    track_id: int
    bbox_xywhs: np.ndarray  # (5,) last box
    keypoints_k3: np.ndarray  # (K, 3) last pose
    lost_frames: int = 0


class PoseTracker:
    """``tracker.update(bboxes_xywhs, keypoints_nk3) -> track_ids (N,)`` for one frame (see module docstring)."""

    def __init__(self, metric: str = "oks", match_thr: float = 0.3, max_lost: int = 30, kpt_thr: float = 0.3,
                 sigmas=COCO_BODY_17.sigmas) -> None:
        if metric not in ("oks", "iou"):
            raise ValueError(f"tracking metric must be 'oks' or 'iou', got {metric!r}")
        self.metric, self.match_thr, self.max_lost, self.kpt_thr = metric, match_thr, max_lost, kpt_thr
        self.sigmas = np.asarray(sigmas, np.float64)
        self.tracks: list[Track] = []
        self.next_id = 1
        self.newly_lost: list[int] = []  # IDs that found no person in the last update

    def similarity(self, bboxes_xywhs: np.ndarray, keypoints_nk3: np.ndarray) -> np.ndarray:
        """``(N people, T tracks)`` similarities in [0, 1]."""
        if not self.tracks or not len(bboxes_xywhs):
            return np.zeros((len(bboxes_xywhs), len(self.tracks)))
        track_boxes = np.stack([t.bbox_xywhs for t in self.tracks])
        sim = box_iou_xywh(bboxes_xywhs, track_boxes)
        if self.metric == "oks" and len(self.sigmas) == keypoints_nk3.shape[1]:
            track_poses = np.stack([t.keypoints_k3 for t in self.tracks])
            areas = track_boxes[:, 2] * track_boxes[:, 3]
            for i, pose in enumerate(keypoints_nk3):
                area = float(bboxes_xywhs[i, 2] * bboxes_xywhs[i, 3])
                oks = oks_iou(pose, track_poses, area, areas, self.sigmas, vis_thr=np.nextafter(self.kpt_thr, -1))
                shared = ((pose[None, :, 2] >= self.kpt_thr) & (track_poses[:, :, 2] >= self.kpt_thr)).any(1)
                sim[i] = np.where(shared, oks, sim[i])
        return sim

    def update(self, bboxes_xywhs: np.ndarray, keypoints_nk3: np.ndarray,
               known_ids: np.ndarray | None = None) -> np.ndarray:
        """IDs for this frame's people; ``known_ids`` (people whose box came from a track) skips matching."""
        bboxes_xywhs = np.asarray(bboxes_xywhs, np.float32).reshape(-1, 5)
        keypoints_nk3 = np.asarray(keypoints_nk3, np.float32)
        ids = np.full(len(bboxes_xywhs), -1, np.int64)
        by_id = {t.track_id: t for t in self.tracks}
        if known_ids is not None:
            ids[:] = known_ids
        else:
            sim = self.similarity(bboxes_xywhs, keypoints_nk3)
            taken_tracks: set[int] = set()
            for flat in np.argsort(-sim, axis=None, kind="stable"):
                i, j = divmod(int(flat), sim.shape[1])
                if sim[i, j] < self.match_thr:
                    break
                if ids[i] < 0 and j not in taken_tracks:
                    ids[i] = self.tracks[j].track_id
                    taken_tracks.add(j)
        for i in range(len(ids)):
            if ids[i] < 0:  # a new person
                ids[i], self.next_id = self.next_id, self.next_id + 1
            track = by_id.get(int(ids[i]))
            if track is None:
                track = by_id[int(ids[i])] = Track(int(ids[i]), bboxes_xywhs[i], keypoints_nk3[i])
                self.tracks.append(track)
            track.bbox_xywhs, track.keypoints_k3, track.lost_frames = bboxes_xywhs[i].copy(), keypoints_nk3[i].copy(), 0
        seen = set(int(i) for i in ids)
        self.newly_lost = [t.track_id for t in self.tracks if t.track_id not in seen and t.lost_frames == 0]
        for track in self.tracks:
            if track.track_id not in seen:
                track.lost_frames += 1
        self.tracks = [t for t in self.tracks if t.lost_frames <= self.max_lost]
        return ids

    @property
    def active(self) -> list[Track]:
        """Tracks matched in the last update."""
        return [t for t in self.tracks if t.lost_frames == 0]

    def state(self) -> dict:
        """JSON-able state (exact float32 values) for resuming a killed run."""
        return {"next_id": self.next_id, "newly_lost": list(self.newly_lost),
                "tracks": [{"id": t.track_id, "box": t.bbox_xywhs.tolist(), "kpts": t.keypoints_k3.tolist(),
                            "lost": t.lost_frames} for t in self.tracks]}

    def load_state(self, state: dict) -> None:
        self.next_id, self.newly_lost = int(state["next_id"]), list(state["newly_lost"])
        self.tracks = [Track(int(t["id"]), np.asarray(t["box"], np.float32), np.asarray(t["kpts"], np.float32),
                             int(t["lost"])) for t in state["tracks"]]
