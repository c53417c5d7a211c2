"""One-Euro smoothing of keypoints over time, per track and per keypoint, in image pixels.

The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is an exponential smoother whose cut-off
frequency rises with speed: ``cutoff = min_cutoff + beta * |speed|``. A still keypoint is smoothed
hard (jitter removed), a moving one lightly (little lag). Per keypoint::

    alpha(fc, dt) = 1 / (1 + 1 / (2 pi fc dt))
    speed  = alpha(d_cutoff, dt) * (x - x_prev) / dt + (1 - alpha(d_cutoff, dt)) * speed_prev
    x_out  = alpha(min_cutoff + beta * |speed|, dt) * x + (1 - alpha) * x_out_prev

``x`` is the keypoint's ``(x, y)`` in pixels, ``|speed|`` its 2-D speed in pixels per second and
``dt`` the time between frames in seconds (from the frames' timestamps). Parameters live in the
pose YAML (``smooth_min_cutoff`` Hz, ``smooth_beta`` s/px, ``smooth_d_cutoff`` Hz; defaults 1.0,
0.05, 1.0, tested: jitter of a still figure -50% or more, lag of a walking one <= 1 frame).
Scores are not changed. A track's filter starts at its first pose and is dropped with the track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    min_cutoff: float = 1.0  # Hz: cut-off of a still keypoint (lower = smoother, more lag)
    beta: float = 0.05  # s/px: how fast the cut-off rises with speed (higher = less lag when moving)
    d_cutoff: float = 1.0  # Hz: cut-off of the speed estimate

    @classmethod
    def from_pose_params(cls, params: dict) -> "OneEuroParams":
        return cls(params["smooth_min_cutoff"], params["smooth_beta"], params["smooth_d_cutoff"])


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray:
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz) * dt_s))


class OneEuroFilter:
    """One-Euro filter over ``(K, 2)`` points (one filter per point, speed = 2-D norm)."""

    def __init__(self, params: OneEuroParams, points_k2: np.ndarray, t_s: float) -> None:
        self.params = params
        self.x = np.asarray(points_k2, np.float64).copy()
        self.speed = np.zeros(len(self.x))
        self.t_s = t_s

    def __call__(self, points_k2: np.ndarray, t_s: float) -> np.ndarray:
        dt = t_s - self.t_s
        if dt <= 0:  # a repeated or out-of-order timestamp: nothing to filter against
            return self.x.copy()
        points = np.asarray(points_k2, np.float64)
        p = self.params
        a_d = _alpha(p.d_cutoff, dt)
        self.speed = a_d * np.linalg.norm(points - self.x, axis=1) / dt + (1.0 - a_d) * self.speed
        a = _alpha(p.min_cutoff + p.beta * self.speed, dt)[:, None]
        self.x = a * points + (1.0 - a) * self.x
        self.t_s = t_s
        return self.x.copy()


class KeypointSmoother:
    """``smoother(track_ids, keypoints_nk3, timestamp_ms) -> smoothed keypoints_nk3`` (a copy)."""

    def __init__(self, params: OneEuroParams = OneEuroParams()) -> None:
        self.params = params
        self.filters: dict[int, OneEuroFilter] = {}

    def __call__(self, track_ids: np.ndarray, keypoints_nk3: np.ndarray, timestamp_ms: float) -> np.ndarray:
        out = np.array(keypoints_nk3, np.float32, copy=True)
        t_s = timestamp_ms / 1000.0
        for i, tid in enumerate(int(t) for t in track_ids):
            if tid not in self.filters:
                self.filters[tid] = OneEuroFilter(self.params, out[i, :, :2], t_s)
            else:
                out[i, :, :2] = self.filters[tid](out[i, :, :2], t_s)
        return out

    def keep_only(self, track_ids) -> None:
        """Drop the filters of tracks the tracker no longer holds."""
        keep = {int(t) for t in track_ids}
        self.filters = {k: f for k, f in self.filters.items() if k in keep}

    def state(self) -> dict:
        return {str(k): {"x": f.x.tolist(), "speed": f.speed.tolist(), "t_s": f.t_s} for k, f in self.filters.items()}

    def load_state(self, state: dict) -> None:
        self.filters = {}
        for key, s in state.items():
            f = OneEuroFilter(self.params, np.asarray(s["x"]), float(s["t_s"]))
            f.speed = np.asarray(s["speed"], np.float64)
            self.filters[int(key)] = f
