"""Batched view augmentations against their definitions (torchvision's
single-image functional ops as the independent reference)."""
import math

import pytest
import torch
import torchvision.transforms.functional as TF

from ssql_mm.datasets.batch_augment import (_adjust_brightness,
                                            _adjust_contrast, _adjust_hue,
                                            _adjust_saturation, color_jitter,
                                            crop_boxes, random_grayscale,
                                            random_resized_crop,
                                            resized_crops, rgb_to_grayscale)


def _images(n=6, size=32, seed=0):
    return torch.rand(n, 3, size, size,
                      generator=torch.Generator().manual_seed(seed))


def test_full_box_is_identity_and_flip_mirrors():
    x = _images()
    boxes = torch.tensor([[0, 0, 32, 32]] * len(x))
    assert torch.allclose(resized_crops(x, boxes, 32), x, atol=1e-5)
    flip = torch.tensor([True, False] * 3)
    out = resized_crops(x, boxes, 32, flip)
    assert torch.allclose(out[0], x[0].flip(-1), atol=1e-5)
    assert torch.allclose(out[1], x[1], atol=1e-5)


def test_box_of_output_size_is_copied_exactly():
    x = _images(2)
    boxes = torch.tensor([[8, 4, 16, 16], [0, 16, 16, 16]])
    out = resized_crops(x, boxes, 16)
    assert torch.allclose(out[0], x[0, :, 8:24, 4:20], atol=1e-5)
    assert torch.allclose(out[1], x[1, :, 0:16, 16:32], atol=1e-5)


def test_upscaled_box_matches_bilinear_resize_inside_the_box():
    x = _images(1)
    out = resized_crops(x, torch.tensor([[4, 6, 16, 16]]), 32)
    ref = torch.nn.functional.interpolate(
        x[:, :, 4:20, 6:22], size=32, mode='bilinear', align_corners=False)
    # The outermost output pixels interpolate with the image pixels just
    # outside the box, where a crop-then-resize repeats the box's edge.
    assert torch.allclose(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)
    assert not torch.allclose(out[..., 0, :], ref[..., 0, :], atol=1e-3)


def test_crop_boxes_respect_scale_ratio_and_bounds():
    gen = torch.Generator().manual_seed(0)
    boxes = crop_boxes(4000, 32, 32, (0.2, 1.0), (3 / 4, 4 / 3), gen)
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 32).all() and (left + w <= 32).all()
    area = (h * w).float() / 1024
    # Rounding of h and w to whole pixels widens the bounds slightly.
    assert area.min() >= 0.2 * 0.85 and area.max() <= 1.0
    assert area.min() < 0.3 and area.max() > 0.9  # the range is used
    ratio = w.float() / h.float()
    assert ratio.min() >= 3 / 4 * 0.85 and ratio.max() <= 4 / 3 / 0.85


def test_crop_boxes_fall_back_to_centre_crop():
    # No box of area <= 1 pixel with ratio 10 fits: the fallback is the
    # centre crop with the ratio clamped, as in torchvision.
    boxes = crop_boxes(3, 32, 32, (0.9, 1.0), (10.0, 11.0),
                       torch.Generator().manual_seed(0))
    assert boxes.tolist() == [[14, 0, 3, 32]] * 3


def test_crop_is_deterministic_under_a_seed():
    x = _images()
    a = random_resized_crop(x, 32, (0.2, 1), generator=torch.Generator().manual_seed(3))
    b = random_resized_crop(x, 32, (0.2, 1), generator=torch.Generator().manual_seed(3))
    c = random_resized_crop(x, 32, (0.2, 1), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize('shift', [-0.1, 0.05, 0.3])
def test_hue_matches_torchvision(shift):
    x = _images(3)
    ours = _adjust_hue(x, torch.full((3, ), shift))
    ref = torch.stack([TF.adjust_hue(img, shift) for img in x])
    assert torch.allclose(ours, ref, atol=1e-4)


def test_hue_shift_of_a_third_turns_red_green():
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1
    green = _adjust_hue(red, torch.tensor([1 / 3]))
    assert torch.allclose(green[:, 1], torch.ones(1, 2, 2), atol=1e-6)
    assert torch.allclose(green[:, [0, 2]], torch.zeros(1, 2, 2, 2), atol=1e-6)


@pytest.mark.parametrize('ours,ref', [
    (_adjust_brightness, TF.adjust_brightness),
    (_adjust_contrast, TF.adjust_contrast),
    (_adjust_saturation, TF.adjust_saturation),
])
def test_jitter_ops_match_torchvision_per_image_factor(ours, ref):
    x = _images(3)
    factors = torch.tensor([0.6, 1.0, 1.4])
    out = ours(x, factors)
    expected = torch.stack([ref(img, float(f)) for img, f in zip(x, factors)])
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(rgb_to_grayscale(x), TF.rgb_to_grayscale(x), atol=1e-6)


def test_jitter_probability_and_order_cover_every_op():
    x = _images(64)
    assert torch.equal(color_jitter(x, prob=0.0), x)
    out = color_jitter(x, prob=1.0, generator=torch.Generator().manual_seed(0))
    changed = (out - x).abs().flatten(1).amax(1) > 1e-4
    assert changed.all()
    assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match='hue'):
        color_jitter(x, hue=0.7)


def test_grayscale_probability():
    x = _images(200)
    out = random_grayscale(x, 0.2, torch.Generator().manual_seed(0))
    is_gray = (out[:, 0] == out[:, 1]).flatten(1).all(1) & \
        (out[:, 1] == out[:, 2]).flatten(1).all(1)
    assert 20 <= int(is_gray.sum()) <= 60
    kept = ~is_gray
    assert torch.equal(out[kept], x[kept])
    assert math.isclose(float(random_grayscale(x, 1.0)[:, 0].mean()),
                        float(rgb_to_grayscale(x).mean()), rel_tol=1e-5)
