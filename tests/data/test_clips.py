"""The clip transform (convgru_zoo.data.clips): frames as users have them -> the model's input, from its
pretrained config. The silent failure it removes: convgru_tiny's shipped weights on held-out Motion MNIST
clips score high through it from uint8 frames, and near chance on the raw [0, 1] frames it normalises."""
import numpy as np
import pytest

from convgru_zoo import specs
from convgru_zoo.data import MotionMNIST, create_clip_transform, resolve_clip_config
from convgru_zoo.data.datasets import normalize
from helpers import MNIST, needs_mnist

torch = pytest.importorskip("torch")
import timm  # noqa: E402

import convgru_zoo  # noqa: E402,F401  (registers the models)


@pytest.fixture(scope="module")
def held_out():
    """128 test-split Motion MNIST clips as the uint8 (T, H, W, 1) frames a user has, their [0, 1] floats and labels."""
    if not MNIST.is_dir():
        pytest.skip(f"MNIST digits not found in {MNIST}")
    dataset = MotionMNIST(str(MNIST), "test", 128, seq_len=10, channels=1)
    clips, labels = dataset.batch(range(len(dataset)))
    frames = np.round(clips * 255).astype(np.uint8).transpose(0, 1, 3, 4, 2)
    np.testing.assert_allclose(frames.transpose(0, 1, 4, 2, 3) / 255, clips, atol=1e-6)  # the same frames
    return frames, clips, labels


@needs_mnist
def test_shipped_weights_score_high_through_the_transform_and_not_without(held_out, one_thread):
    frames, clips, labels = held_out
    model = timm.create_model("convgru_tiny", pretrained=True).eval()
    transform = create_clip_transform(model)
    with torch.no_grad():
        through = model(transform(frames, return_tensors="pt")).argmax(-1).numpy()
        raw = model(torch.from_numpy(np.repeat(clips, 3, axis=2))).argmax(-1).numpy()
    assert (through == labels).mean() > 0.9
    assert (raw == labels).mean() < 0.3  # what feeding [0, 1] frames silently gives


@needs_mnist
def test_output_is_what_training_fed_the_model(held_out):
    frames, clips, _ = held_out
    transform = create_clip_transform("convgru_tiny.mmnist_motion")
    out = transform(frames)
    assert out.dtype == np.float32 and out.shape == (128, 10, *specs.INPUT_SIZE)
    np.testing.assert_allclose(out, normalize(np.repeat(clips, 3, axis=2)), atol=1e-6, rtol=0)
    one_clip = [frame for frame in frames[0]]  # a list of (H, W, 1) frames, one clip
    np.testing.assert_array_equal(transform(one_clip), out[:1])


def test_every_input_kind_gives_the_same_input():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    transform = create_clip_transform("convgru_tiny", image_size=32)
    want = normalize(frames.transpose(0, 3, 1, 2)[None] / np.float32(255))
    Image = pytest.importorskip("PIL.Image")
    inputs = {"uint8 (T, H, W, C)": frames, "PIL images": [Image.fromarray(f) for f in frames],
              "[0, 1] float tensor (T, C, H, W)": torch.from_numpy(frames).permute(0, 3, 1, 2) / 255.0,
              "[0, 1] float array": frames / 255.0}
    for kind, given in inputs.items():
        np.testing.assert_allclose(transform(given), want, atol=1e-6, rtol=0, err_msg=kind)
    np.testing.assert_allclose(transform(frames[0]), want[:, :1], atol=1e-6, rtol=0)  # one frame: a 1-frame clip
    assert isinstance(transform(frames, return_tensors="pt"), torch.Tensor)


def test_channels_and_size_follow_the_model():
    grey = np.full((2, 48, 80, 1), 255, np.uint8)  # not square: the centred square, resized
    out = create_clip_transform(timm.create_model("convgru_tiny"))(grey)
    assert out.shape == (1, 2, *specs.INPUT_SIZE) and np.allclose(out, 1.0)  # (1 - 0.5) / 0.5 on 3 channels
    one_channel = create_clip_transform(timm.create_model("convgru_tiny", in_chans=1))
    assert one_channel.channels == 1 and one_channel.mean == (0.5,)
    rgb = np.zeros((3, 64, 64, 3), np.uint8)
    rgb[..., 0] = 200
    forecast = create_clip_transform(convgru_zoo.create_forecaster("convgru_forecaster_tiny"))(rgb)
    np.testing.assert_allclose(forecast, np.full((1, 3, 1, 64, 64), round(200 * 0.299) / 255), atol=1e-6)
    assert resolve_clip_config("convgru_forecaster") == {"input_size": specs.PRETRAINED["convgru_forecaster.mmnist"].input_size,
                                                         "mean": specs.FORECAST_MEAN, "std": specs.FORECAST_STD}
    assert create_clip_transform("convgru_small", image_size=0)(grey).shape == (1, 2, 3, 48, 80)


def test_a_mindspore_net_resolves_its_own_config():
    mindcv = pytest.importorskip("mindcv")
    net = mindcv.create_model("convgru_tiny", in_channels=1)
    assert resolve_clip_config(net) == {"input_size": (1, *specs.INPUT_SIZE[1:]), "mean": specs.MEAN[:1],
                                        "std": specs.STD[:1]}


@pytest.mark.parametrize("frames, error, message", [
    (np.full((2, 8, 8, 3), 255.0, np.float32), ValueError, r"frames: float frames must hold values in \[0, 1\], "
                                                          r"got values in \[255.0, 255.0\]"),
    (np.zeros((8, 8), np.uint8), ValueError, r"frames must be \(H, W, C\).*got shape \(8, 8\)"),
    (np.zeros((2, 3, 8, 8), np.uint8), ValueError, r"frames must be .*got shape \(2, 3, 8, 8\)"),
    (torch.zeros(2, 8, 8, 3), ValueError, r"frames must be .*tensors.*got shape \(2, 8, 8, 3\)"),
    (np.zeros((2, 8, 8, 3), np.int64), TypeError, "frames must be uint8 .* got dtype int64"),
    (np.full((2, 8, 8, 3), np.nan, np.float32), ValueError, r"values in \[nan, nan\]"),
    ("clip.mp4", TypeError, "frames must be a numpy array, .* got str"),
    ([], ValueError, "frames must hold at least one frame"),
])
def test_wrong_frames_raise_naming_the_argument(frames, error, message):
    with pytest.raises(error, match=message):
        create_clip_transform("convgru_tiny")(frames)


def test_wrong_model_and_arguments_raise_naming_them():
    with pytest.raises(ValueError, match="model must be .* got 'convgru_huge'"):
        create_clip_transform("convgru_huge")
    with pytest.raises(TypeError, match="model must be a convgru_zoo model .* got Linear"):
        create_clip_transform(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="image_size must be an int >= 0"):
        create_clip_transform("convgru_tiny", image_size=-1)
    with pytest.raises(ValueError, match="return_tensors must be 'np', 'pt' or 'ms', got 'tf'"):
        create_clip_transform("convgru_tiny")(np.zeros((1, 8, 8, 3), np.uint8), return_tensors="tf")
