"""Moving synthetic figures with known identities, and an oracle detector and pose model over them.

Poses come from the project's generator (:func:`litehrnet.data.synthetic.figure_keypoints`): each
figure keeps one random pose and moves with a constant velocity; ``hidden`` frames take it out of
the scene (an occlusion). The oracle detector returns the visible figures' boxes (keypoint extent +
8% of the height per side, as the generator's annotations), in a shuffled order so that IDs cannot
follow the list order; the oracle pose model returns, for a box, the keypoints of the visible figure
it overlaps most (plus optional Gaussian noise), as a top-down model looks into its crop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from litehrnet.data.synthetic import figure_keypoints
from litehrnet.deploy.inputs import Frame
from litehrnet.deploy.tracking import box_iou_xywh

FPS = 30.0


@dataclass
class Figure:
    seed: int
    height_px: float
    start_xy: tuple[float, float]
    velocity_xy: tuple[float, float]  # pixels per frame
    hidden: range = field(default_factory=lambda: range(0))

    def keypoints(self, t: int) -> np.ndarray:
        base = figure_keypoints(np.random.default_rng(self.seed), self.height_px, np.zeros(2))
        return base + np.asarray(self.start_xy) + t * np.asarray(self.velocity_xy)

    def box(self, t: int) -> np.ndarray:
        kp = self.keypoints(t)
        margin = 0.08 * self.height_px
        lo, hi = kp.min(0) - margin, kp.max(0) + margin
        return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def frame_image(t: int) -> np.ndarray:
    """A tiny image carrying only its frame number (the oracles read nothing else)."""
    img = np.zeros((8, 8, 3), np.uint8)
    img[0, 0, :2] = divmod(t, 256)
    return img


def frames(num_frames: int) -> list[Frame]:
    return [Frame(f"seq.mp4#{t:06d}", frame_image(t), "", t, t * 1000.0 / FPS) for t in range(num_frames)]


class Oracle:
    """``detect(frame)`` and ``estimate(img, boxes)`` for a list of figures; counts detector calls."""

    def __init__(self, figures: list[Figure], noise_px: float = 0.0, seed: int = 0) -> None:
        self.figures, self.noise_px, self.seed = figures, noise_px, seed
        self.detected_frames: list[int] = []

    def visible(self, t: int) -> list[int]:
        return [i for i, f in enumerate(self.figures) if t not in f.hidden]

    def detect(self, frame: Frame) -> np.ndarray:
        self.detected_frames.append(frame.frame_index)
        rng = np.random.default_rng([self.seed, 0, frame.frame_index])  # per frame: any call order gives the same
        order = rng.permutation(self.visible(frame.frame_index))
        return np.array([[*self.figures[i].box(frame.frame_index), 0.9] for i in order], np.float32).reshape(-1, 5)

    def figure_in(self, t: int, box_xywh: np.ndarray) -> int | None:
        """The visible figure a box overlaps most (IoU > 0.2), else ``None``."""
        visible = self.visible(t)
        if not visible:
            return None
        ious = box_iou_xywh(box_xywh[None, :4], np.stack([self.figures[i].box(t) for i in visible]))[0]
        return visible[int(ious.argmax())] if ious.max() > 0.2 else None

    def estimate(self, img_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        t = int(img_bgr[0, 0, 0]) * 256 + int(img_bgr[0, 0, 1])
        rng = np.random.default_rng([self.seed, 1, t])
        out = np.zeros((len(boxes), 17, 3), np.float32)
        for n, box in enumerate(boxes):
            i = self.figure_in(t, box)
            if i is None:  # nobody in the crop: low scores at the box centre
                out[n, :, :2] = box[:2] + box[2:4] / 2
                out[n, :, 2] = 0.05
                continue
            out[n, :, :2] = self.figures[i].keypoints(t) + rng.normal(0, self.noise_px, (17, 2)) * (self.noise_px > 0)
            out[n, :, 2] = 0.9
        return out
