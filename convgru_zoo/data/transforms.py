"""Spatial transforms of a clip: crop, resize and flip, the same for every frame of it.

The random parameters are drawn with numpy from the caller's generator, so a sample is a function of
its seed in every framework; they are applied with torchvision's ``transforms.v2`` functionals on a
``tv_tensors.Video`` (antialiased resize) when torchvision is installed, else with Pillow's
antialiased bilinear resize, which torchvision's follows (a MindSpore-only install has no torch).
Normalisation by the model's pretrained mean and std stays with the training loops, as for Moving MNIST.
"""
import numpy as np

TRAIN_CROP_SCALE = (0.8, 1.0)  # side of the random square crop, as a fraction of the frame's shorter side


def _torchvision():
    try:
        import torch
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional
    except ImportError:
        return None
    return torch, tv_tensors, functional


class ClipTransform:
    """uint8 frames (T, H, W, C) -> float32 (T, C, S, S) in [0, 1].

    Evaluation (``rng`` None): the centred square of the shorter side, resized to ``image_size``.
    Training: a random square of ``TRAIN_CROP_SCALE`` of the shorter side at a random place, and a
    horizontal flip with probability 1/2 when ``hflip`` (off by default: a flip swaps left and right
    motion, which may be what the labels are about).
    """

    def __init__(self, image_size, train=False, hflip=False):
        self.image_size, self.train, self.hflip = image_size, train, hflip
        self.backend = _torchvision()

    def params(self, height, width, rng=None):
        """(top, left, side, flip) of the crop."""
        shorter = min(height, width)
        if rng is None or not self.train:
            return (height - shorter) // 2, (width - shorter) // 2, shorter, False
        side = max(1, int(round(shorter * rng.uniform(*TRAIN_CROP_SCALE))))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        return top, left, side, bool(self.hflip and rng.random() < 0.5)

    def __call__(self, frames, rng=None):
        top, left, side, flip = self.params(frames.shape[1], frames.shape[2], rng)
        size = self.image_size
        if self.backend is not None:
            torch, tv_tensors, functional = self.backend
            video = tv_tensors.Video(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2))
            video = functional.resized_crop(video, top, left, side, side, [size, size], antialias=True)
            if flip:
                video = functional.horizontal_flip(video)
            return functional.to_dtype(video, torch.float32, scale=True).numpy()
        from PIL import Image
        box = (left, top, left + side, top + side)
        resized = np.stack([np.asarray(Image.fromarray(frame.squeeze(-1) if frame.shape[-1] == 1 else frame)
                                       .resize((size, size), Image.BILINEAR, box=box)) for frame in frames])
        resized = resized.reshape(len(frames), size, size, -1)
        if flip:
            resized = resized[:, :, ::-1]
        return np.divide(resized.transpose(0, 3, 1, 2), np.float32(255), dtype=np.float32)
