"""MNIST idx reading and the Moving MNIST datasets: protocol, determinism, splits, framework loaders."""
import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from convgru_zoo.data import (BASELINE_FRAME, DIRECTIONS, FixedMovingMNIST, MotionMNIST, MovingMNIST, load_digits,
                              load_fixed_test, read_idx, single_frame_direction_ceiling, split_indices)
from convgru_zoo.data.moving_mnist import STEP_LENGTH, bounce, render
from helpers import REPO

REAL_MNIST = Path(os.environ.get("CONVGRU_ZOO_MNIST", REPO.parent / "shared/data/mnist"))
NUM_DIGITS = 40
FREE = 64 - 28  # range of a digit's top-left corner


def write_idx(path, array, code):
    """An idx file written from its definition: 00 00, dtype code, ndim, big-endian dims, big-endian data."""
    big_endian = {0x08: ">u1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4"}[code]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += np.asarray(array, big_endian).tobytes()
    with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as f:
        f.write(raw)
    return path


def synthetic_digits(count=NUM_DIGITS):
    """Digit i: a solid 28x28 square of value 10 + 5 i, so any pixel tells which image it came from."""
    images = np.repeat((10 + 5 * np.arange(count, dtype=np.uint8))[:, None, None], 28, 1).repeat(28, 2)
    return images, (np.arange(count) % 10).astype(np.uint8)


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    images, labels = synthetic_digits()
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images, 0x08)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels, 0x08)
    return folder


def digit_ids(clips):
    """Ids of the synthetic digits visible in each frame: (values - 10) / 5 of the nonzero pixels."""
    return [sorted({(v - 10) // 5 for v in np.unique(np.rint(frame * 255).astype(int)) if v}) for frame in clips]


def corners(clip):
    """Top-left corner (row, col) of the single solid square in every frame of a clip (T, 1, 64, 64)."""
    found = []
    for frame in clip[:, 0]:
        rows, cols = np.nonzero(frame)
        assert rows.max() - rows.min() == 27 and cols.max() - cols.min() == 27, "one whole digit per frame"
        found.append((rows.min(), cols.min()))
    return np.array(found)


# --- idx files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, array, code", [
    ("images-idx3-ubyte.gz", np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4), 0x08),
    ("labels-idx1-ubyte", np.array([7, 2, 1], np.uint8), 0x08),
    ("ints.idx", np.array([[1, -70000], [3, 2 ** 30]], np.int32), 0x0C),
    ("floats.idx.gz", np.array([0.5, -1.25, 3e9], np.float32), 0x0D),
])
def test_read_idx_round_trips_dtypes_and_shapes(tmp_path, name, array, code):
    data = read_idx(write_idx(tmp_path / name, array, code))
    assert data.dtype == array.dtype and data.dtype.isnative and data.shape == array.shape
    np.testing.assert_array_equal(data, array)


@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x05", "bad magic"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x05", "bad magic"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "inside its header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x01\x02", "truncated or has trailing"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x01\x02", "truncated or has trailing"),
])
def test_read_idx_rejects_bad_files_naming_them(tmp_path, raw, message):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_rejects_a_gz_name_that_is_not_gzip(tmp_path):
    path = tmp_path / "plain-idx1-ubyte.gz"
    path.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x05")
    with pytest.raises(ValueError, match="cannot read idx file .*plain-idx1-ubyte.gz"):
        read_idx(path)


def test_load_digits_finds_plain_gzipped_and_dotted_names(tmp_path):
    images, labels = synthetic_digits(6)
    write_idx(tmp_path / "train-images.idx3-ubyte", images[:4], 0x08)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[:4], 0x08)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images[4:], 0x08)
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", labels[4:], 0x08)
    all_images, all_labels = load_digits(tmp_path)
    np.testing.assert_array_equal(all_images, images)  # train first, then t10k
    np.testing.assert_array_equal(all_labels, labels)
    np.testing.assert_array_equal(load_digits(tmp_path, subset="t10k")[0], images[4:])


def test_load_digits_errors_name_the_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        load_digits(tmp_path)
    with pytest.raises(FileNotFoundError, match="must be a directory"):
        load_digits(tmp_path / "missing")
    with pytest.raises(ValueError, match="subset must be one of"):
        load_digits(tmp_path, subset="test")
    images, labels = synthetic_digits(5)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, 0x08)
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.*missing"):
        load_digits(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[:3], 0x08)
    with pytest.raises(ValueError, match="holds 3 labels for 5 images"):
        load_digits(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels.astype(np.int32), 0x0C)
    with pytest.raises(ValueError, match="label file .* must hold uint8"):
        load_digits(tmp_path)


@pytest.mark.skipif(not (REAL_MNIST / "t10k-images-idx3-ubyte.gz").exists(),
                    reason=f"the MNIST test digits are not at {REAL_MNIST} (set CONVGRU_ZOO_MNIST to a folder)")
def test_real_mnist_test_digits():
    images, labels = load_digits(REAL_MNIST)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and labels.shape == (10000,)
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test labels
    assert np.bincount(labels).min() > 850 and images.max() == 255
    clip = MovingMNIST(REAL_MNIST, "test", num_sequences=3)[2]
    assert clip.shape == (20, 1, 64, 64) and clip.max() == 1.0


# --- splits ----------------------------------------------------------------------------------------


def test_split_indices_are_disjoint_cover_everything_and_are_seeded():
    parts = [split_indices(10000, split) for split in ("train", "val", "test")]
    assert [len(p) for p in parts] == [8000, 1000, 1000]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(10000))
    np.testing.assert_array_equal(split_indices(10000, "val"), parts[1])
    assert not np.array_equal(split_indices(10000, "val", seed=1), parts[1])
    assert len(split_indices(10, "test", fractions=(0.5, 0.25, 0.25))) == 2


@pytest.mark.parametrize("args, message", [
    ((2, "train"), "n_digits must be an int >= 3"),
    ((100, "validation"), "split must be one of"),
    ((100, "train", 0, (0.8, 0.2)), "fractions must be 3 positive"),
    ((100, "train", 0, (0.9, 0.2, -0.1)), "fractions must be 3 positive"),
    ((5, "train", 0, (0.98, 0.01, 0.01)), "leave a split empty"),
    ((100, "train", -1), "seed must be a non-negative int"),
])
def test_split_indices_errors(args, message):
    with pytest.raises(ValueError, match=message):
        split_indices(*args)


# --- Moving MNIST ----------------------------------------------------------------------------------


def test_moving_mnist_items_shape_range_and_attributes(digit_folder):
    ds = MovingMNIST(digit_folder, "train", num_sequences=7, seq_len=5)
    assert len(ds) == 7 and ds.seq_len == 5 and ds.image_size == 64 and ds.column_names == ("clip",)
    clip = ds[6]
    assert clip.shape == (5, 1, 64, 64) and clip.dtype == np.float32
    assert clip.min() == 0.0 and 0 < clip.max() <= 1.0
    with pytest.raises(IndexError):
        ds[7]
    np.testing.assert_array_equal(ds[-1], clip)


def test_moving_mnist_items_depend_only_on_seed_split_and_index(digit_folder):
    ds = MovingMNIST(digit_folder, "train", num_sequences=50, seq_len=4)
    later = ds[40]
    fresh = MovingMNIST(digit_folder, "train", num_sequences=50, seq_len=4)
    np.testing.assert_array_equal(fresh[40], later)  # random access: no state from earlier items
    np.testing.assert_array_equal(ds.batch([3, 40])[1], later)  # the vectorised batch draws the same clip
    assert not np.array_equal(ds[41], later)
    assert not np.array_equal(MovingMNIST(digit_folder, "train", num_sequences=50, seq_len=4, seed=1)[40], later)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ds))[40], later)  # e.g. for DataLoader workers


def test_moving_mnist_uses_only_the_digits_of_its_split(digit_folder):
    for split in ("train", "val", "test"):
        allowed = set(split_indices(NUM_DIGITS, split).tolist())
        ds = MovingMNIST(digit_folder, split, num_sequences=30, seq_len=2, num_digits=1)
        seen = {i for clip in ds.batch(range(30)) for ids in digit_ids(clip) for i in ids}
        assert seen and seen <= allowed, split
    # a training set drawn with another sequence seed keeps the same digit split
    train = MovingMNIST(digit_folder, "train", num_sequences=30, seq_len=2, num_digits=1, seed=5)
    assert {i for clip in train.batch(range(30)) for ids in digit_ids(clip) for i in ids} <= \
        set(split_indices(NUM_DIGITS, "train").tolist())


def test_moving_mnist_digits_move_at_fixed_speed_and_bounce_off_the_edges(digit_folder):
    ds = MovingMNIST(digit_folder, "train", num_sequences=40, seq_len=20, num_digits=1)
    bounced = 0
    for clip in ds.batch(range(40)):
        path = corners(clip)
        assert path.min() >= 0 and path.max() <= FREE
        steps = np.diff(path, axis=0)
        # a straight step covers STEP_LENGTH * FREE = 3.6 pixels, up to truncation of each coordinate
        straight = np.all((path[1:] > 0) & (path[1:] < FREE) & (path[:-1] > 0) & (path[:-1] < FREE), axis=1)
        lengths = np.hypot(*steps[straight].T)
        assert np.all(np.abs(lengths - STEP_LENGTH * FREE) <= np.sqrt(2) + 1e-9)
        for axis in (0, 1):
            turns = np.nonzero(steps[1:, axis] * steps[:-1, axis] < 0)[0] + 1  # frame where a coordinate turns
            assert np.all(np.isin(path[turns, axis], (0, FREE))), "a digit turns only at an edge"
            bounced += len(turns)
    assert bounced > 10


def test_bounce_closed_form_matches_stepping_frame_by_frame():
    rng = np.random.default_rng(0)
    start, angle = rng.random((500, 2)), rng.random(500) * 2 * np.pi
    velocity = np.stack([np.sin(angle), np.cos(angle)], -1)
    position, moving, expected = start.copy(), velocity.copy(), [start.copy()]
    for _ in range(59):
        position = position + STEP_LENGTH * moving
        hit = (position <= 0) | (position >= 1)
        position, moving = np.clip(position, 0, 1), np.where(hit, -moving, moving)
        expected.append(position)
    np.testing.assert_allclose(bounce(start, velocity, 60), np.stack(expected, 1), atol=1e-12)
    edge = bounce(np.array([1.0, 0.5]), np.array([1.0, 0.0]), 3)  # at the edge, moving out: clamped, then back
    np.testing.assert_allclose(edge, [[1, 0.5], [1, 0.5], [0.9, 0.5]])


def test_render_overlays_digits_by_maximum():
    digits = np.stack([np.full((28, 28), 100, np.uint8), np.full((28, 28), 60, np.uint8)])
    digits[1, 0, 0] = 200
    canvas = render(digits, np.array([[0, 1]]), np.array([[[[0, 0], [10, 10]]]]), 64)[0, 0]
    assert canvas[5, 5] == 100 and canvas[30, 30] == 60 and canvas[20, 20] == 100  # overlap: max(100, 60)
    assert canvas[10, 10] == 200 and canvas[50, 50] == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(split="validation"), "split must be one of"),
    (dict(num_sequences=0), "num_sequences must be a positive int"),
    (dict(seq_len=2.0), "seq_len must be a positive int"),
    (dict(num_digits=0), "num_digits must be a positive int"),
    (dict(image_size=20), "image_size must be an int >= the digit size"),
    (dict(seed=-1), "seed must be a non-negative int"),
])
def test_moving_mnist_argument_errors(digit_folder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MovingMNIST(digit_folder, **kwargs)


# --- Motion MNIST ----------------------------------------------------------------------------------


def test_motion_mnist_labels_are_digit_class_times_four_plus_direction(digit_folder):
    ds = MotionMNIST(digit_folder, "train", num_sequences=120, seq_len=6)
    assert ds.num_classes == 40 and ds.column_names == ("clip", "label")
    clip, label = ds[0]
    assert clip.shape == (6, 1, 64, 64) and clip.dtype == np.float32 and label.dtype == np.int64
    clips, labels = ds.batch(range(120))
    np.testing.assert_array_equal(labels[0], label)
    directions = labels % 4
    assert set(directions.tolist()) == {0, 1, 2, 3} and labels.max() < 40
    for clip, label in zip(clips, labels):
        (digit,) = digit_ids(clip[:1])[0]
        assert label // 4 == digit % 10  # synthetic digit i has class i % 10
        row_step, col_step = np.diff(corners(clip)[:2], axis=0)[0]
        name = DIRECTIONS[label % 4]
        # the first step moves the way the label says (a digit at the edge it moves into stays put)
        assert row_step >= 0 if name.startswith("down") else row_step <= 0
        assert col_step >= 0 if name.endswith("right") else col_step <= 0


def test_motion_mnist_velocities_stay_away_from_the_axes(digit_folder):
    ds = MotionMNIST(digit_folder, "val", num_sequences=200, seq_len=2)
    _, _, _, velocity, _ = ds.draw(range(200))
    assert np.abs(velocity).min() >= np.sin(np.deg2rad(20)) - 1e-12
    np.testing.assert_allclose(np.hypot(*velocity.T), 1)


def test_augment_reshapes_each_clips_digits_and_keeps_paths_labels_and_determinism():
    mnist = load_digits(REAL_MNIST)
    plain = MotionMNIST(mnist, "train", num_sequences=64, seq_len=4)
    augmented = MotionMNIST(mnist, "train", num_sequences=64, seq_len=4, augment=True)
    (clips, labels), (aug, aug_labels) = plain.batch(range(64)), augmented.batch(range(64))
    np.testing.assert_array_equal(labels, aug_labels)  # the same digits and directions ...
    changed = np.abs(clips - aug).reshape(64, -1).max(1) > 0.2
    assert changed.mean() > 0.9  # ... in a new shape per clip
    np.testing.assert_array_equal(augmented.batch(range(64))[0], aug)  # a function of the index
    np.testing.assert_array_equal(augmented[5][0], aug[5])  # the same alone or batched
    # the ink stays where the plain clip's digit is: same centre of mass within a few pixels
    def centre(frame):
        return np.array([(frame.sum(1) * np.arange(64)).sum(), (frame.sum(0) * np.arange(64)).sum()]) / frame.sum()
    shift = [np.abs(centre(a[0, 0]) - centre(c[0, 0])).max() for a, c in zip(aug, clips)]
    assert np.median(shift) < 2.5
    moving = MovingMNIST(mnist, "train", num_sequences=8, seq_len=3, augment=True).batch(range(8))
    assert np.abs(moving - MovingMNIST(mnist, "train", num_sequences=8, seq_len=3).batch(range(8))).max() > 0.2


def test_augment_digits_identity_and_stroke():
    from convgru_zoo.data.moving_mnist import augment_digits
    images = load_digits(REAL_MNIST)[0][:4]
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (4, 1))
    np.testing.assert_array_equal(augment_digits(images, identity), images)
    thick = augment_digits(images, np.tile([1.0, 0.0, 0.0, 0.6], (4, 1))).astype(int).sum()
    thin = augment_digits(images, np.tile([1.0, 0.0, 0.0, -0.6], (4, 1))).astype(int).sum()
    assert thin < images.astype(int).sum() < thick
    with pytest.raises(ValueError, match="augment must be True or False, got 1"):
        MotionMNIST(synthetic_digits(), augment=1)


def test_single_frame_ceiling_is_chance_on_the_baseline_frame_only():
    assert BASELINE_FRAME == 0
    first = single_frame_direction_ceiling(frame=BASELINE_FRAME, samples=40000)
    last = single_frame_direction_ceiling(frame=9, samples=40000)
    assert 0.23 < first < 0.27  # independent of the position: chance over 4 directions
    assert last > 0.6  # the drift towards the side it moves to gives it away later


def test_motion_mnist_needs_two_frames(digit_folder):
    with pytest.raises(ValueError, match="seq_len must be >= 2"):
        MotionMNIST(digit_folder, seq_len=1)


# --- the fixed test file ---------------------------------------------------------------------------


def test_fixed_test_file_loads_eagerly_and_lazily(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (20, 3, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "mnist_test_seq.npy", frames)
    clips = load_fixed_test(tmp_path / "mnist_test_seq.npy")
    assert clips.shape == (3, 20, 1, 64, 64) and clips.dtype == np.float32
    np.testing.assert_array_equal(clips[1, :, 0], frames[:, 1] / np.float32(255))
    assert load_fixed_test(tmp_path / "mnist_test_seq.npy", max_sequences=2).shape[0] == 2
    ds = FixedMovingMNIST(tmp_path / "mnist_test_seq.npy")
    assert len(ds) == 3 and ds.seq_len == 20 and ds.image_size == 64
    np.testing.assert_array_equal(ds[2], clips[2])
    np.testing.assert_array_equal(ds.batch([0, -1]), clips[[0, 2]])
    assert ds[2].dtype == np.float32
    with pytest.raises(IndexError, match="index 3 out of range for 3 sequences"):
        ds[3]


@pytest.mark.parametrize("array, message", [
    (np.zeros((20, 2, 64, 64), np.float32), "must hold uint8 frames"),
    (np.zeros((2, 20, 64, 64), np.uint8), "looks like \\(N, T, H, W\\)"),
    (np.zeros((20, 64, 64), np.uint8), "got uint8 of shape \\(20, 64, 64\\)"),
])
def test_fixed_test_file_errors(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ValueError, match=message):
        load_fixed_test(tmp_path / "bad.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="cannot read the fixed Moving MNIST test file"):
        FixedMovingMNIST(tmp_path / "junk.npy")


# --- framework loaders -----------------------------------------------------------------------------


def test_torch_dataloader_batches_the_datasets(digit_folder):
    torch = pytest.importorskip("torch")
    moving = MovingMNIST(digit_folder, "train", num_sequences=5, seq_len=3)
    batches = list(torch.utils.data.DataLoader(moving, batch_size=2))
    assert [tuple(b.shape) for b in batches] == [(2, 3, 1, 64, 64)] * 2 + [(1, 3, 1, 64, 64)]
    np.testing.assert_array_equal(batches[0].numpy(), moving.batch([0, 1]))
    motion = MotionMNIST(digit_folder, "train", num_sequences=4, seq_len=3)
    clips, labels = next(iter(torch.utils.data.DataLoader(motion, batch_size=4)))
    assert clips.dtype == torch.float32 and labels.dtype == torch.int64 and labels.shape == (4,)
    np.testing.assert_array_equal(labels.numpy(), motion.batch(range(4))[1])


def test_mindspore_generator_dataset_batches_and_reshuffles_each_epoch(digit_folder):
    pytest.importorskip("mindspore")
    from convgru_zoo.data import to_mindspore

    motion = MotionMNIST(digit_folder, "train", num_sequences=10, seq_len=3)
    ordered = to_mindspore(motion, batch_size=4, shuffle=False)
    batches = list(ordered.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert [b[0].shape for b in batches] == [(4, 3, 1, 64, 64)] * 2 + [(2, 3, 1, 64, 64)]
    assert batches[0][1].dtype == np.int64
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), motion.batch(range(10))[1])

    def epochs(dataset, count):
        iterator = dataset.create_dict_iterator(num_epochs=count, output_numpy=True)
        return [np.concatenate([b["label"] for b in iterator]).tolist() for _ in range(count)]

    first = epochs(to_mindspore(motion, batch_size=4, seed=3), 2)
    assert first == epochs(to_mindspore(motion, batch_size=4, seed=3), 2)  # seeded, no global state
    assert first[0] != first[1] and sorted(first[0]) == sorted(first[1])  # a new permutation per epoch
    assert epochs(to_mindspore(motion, batch_size=4, seed=3, start_epoch=1), 1)[0] == first[1]  # resume
    moving = MovingMNIST(digit_folder, "val", num_sequences=3, seq_len=2)
    (clip,) = next(to_mindspore(moving, batch_size=3, shuffle=False).create_tuple_iterator(output_numpy=True))
    np.testing.assert_array_equal(clip, moving.batch(range(3)))
