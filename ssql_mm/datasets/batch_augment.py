"""Self-supervised view augmentations applied to a whole batch at once.

Every function takes float RGB images ``(B, 3, H, W)`` in ``[0, 1]`` and a
``torch.Generator`` and draws one set of random parameters per image, with
the semantics of torchvision's ``RandomResizedCrop``, ``ColorJitter``,
``RandomGrayscale`` and ``RandomHorizontalFlip``; the colour-jitter order is
drawn per image as in torchvision. One difference: the crop is resampled from
the whole image with ``grid_sample`` (bilinear, no antialias), so the
outermost output pixels blend in the image pixels just outside the box where
crop-then-resize would repeat the box's edge pixels; inside, it is the same
bilinear resize (crops of CIFAR views are never downscaled).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = [
    'crop_boxes', 'resized_crops', 'random_resized_crop', 'color_jitter',
    'random_grayscale', 'hflip_mask', 'rgb_to_grayscale'
]

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def _uniform(n: int, low: float, high: float,
             generator: Optional[torch.Generator]) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def crop_boxes(n: int,
               height: int,
               width: int,
               scale: Tuple[float, float],
               ratio: Tuple[float, float],
               generator: Optional[torch.Generator] = None,
               tries: int = 10) -> torch.Tensor:
    """Draw RandomResizedCrop boxes ``(top, left, h, w)`` in pixels.

    As torchvision: up to ``tries`` draws of area fraction in ``scale`` and
    log-uniform aspect ratio in ``ratio``; the first that fits is kept, else
    the centre crop with the ratio clamped to ``ratio``.

    Returns:
        Tensor: int64 ``(n, 4)``.
    """
    area = height * width
    target = area * _uniform(n * tries, *scale, generator)
    log_ratio = _uniform(n * tries, math.log(ratio[0]), math.log(ratio[1]),
                         generator)
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(target * aspect)).long().view(n, tries)
    h = torch.round(torch.sqrt(target / aspect)).long().view(n, tries)
    fits = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.where(fits.any(1), fits.float().argmax(1),
                        torch.full((n, ), -1))
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = int(round(height * ratio[1])), height
    else:
        fw, fh = width, height
    rows = torch.arange(n)
    ok = first >= 0
    cw = torch.where(ok, w[rows, first.clamp(min=0)], torch.full((n, ), fw))
    ch = torch.where(ok, h[rows, first.clamp(min=0)], torch.full((n, ), fh))
    u = torch.rand(n, 2, generator=generator)
    top = torch.where(ok, (u[:, 0] * (height - ch + 1)).long(),
                      (height - ch) // 2)
    left = torch.where(ok, (u[:, 1] * (width - cw + 1)).long(),
                       (width - cw) // 2)
    return torch.stack([top, left, ch, cw], dim=1)


def resized_crops(images: torch.Tensor,
                  boxes: torch.Tensor,
                  size: int,
                  flip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Crop ``boxes`` out of ``images`` and resize each to ``size``.

    Bilinear resampling with ``grid_sample``: output pixel edges map onto the
    box's pixel edges (``align_corners=False``), so a box of the output size
    is copied exactly.

    Args:
        images (Tensor): ``(B, C, H, W)`` float images.
        boxes (Tensor): ``(B, 4)`` boxes ``(top, left, h, w)`` in pixels.
        size (int): Output side.
        flip (Tensor, optional): bool ``(B,)``; mirror these crops
            horizontally (fused into the same resampling). Defaults to None.

    Returns:
        Tensor: ``(B, C, size, size)``.
    """
    b, c, height, width = images.shape
    top, left, h, w = boxes.to(images.device, images.dtype).unbind(1)
    sx, sy = w / width, h / height
    tx, ty = (2 * left + w) / width - 1, (2 * top + h) / height - 1
    if flip is not None:
        sx = torch.where(flip.to(images.device), -sx, sx)
    zero = torch.zeros_like(sx)
    theta = torch.stack([
        torch.stack([sx, zero, tx], 1),
        torch.stack([zero, sy, ty], 1)
    ], 1)
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode='bilinear',
                         padding_mode='border', align_corners=False)


def random_resized_crop(images: torch.Tensor,
                        size: int,
                        scale: Tuple[float, float] = (0.08, 1.0),
                        ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                        flip: Optional[torch.Tensor] = None,
                        generator: Optional[torch.Generator] = None
                        ) -> torch.Tensor:
    """Crop a random box of every image and resize it to ``size``.

    Args:
        images (Tensor): ``(B, C, H, W)`` float images.
        size (int): Output side.
        scale (tuple[float, float]): Area fraction range. Defaults to
            (0.08, 1.0).
        ratio (tuple[float, float]): Aspect ratio range. Defaults to
            (3/4, 4/3).
        flip (Tensor, optional): See :func:`resized_crops`. Defaults to None.
        generator (torch.Generator, optional): Random source. Defaults to
            None (the global one).

    Returns:
        Tensor: ``(B, C, size, size)``.
    """
    b, _, height, width = images.shape
    boxes = crop_boxes(b, height, width, scale, ratio, generator)
    return resized_crops(images, boxes, size, flip)


def rgb_to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma ``(B, 1, H, W)`` of RGB images."""
    r, g, b = images.unbind(1)
    gray = _GRAY_WEIGHTS[0] * r + _GRAY_WEIGHTS[1] * g + _GRAY_WEIGHTS[2] * b
    return gray.unsqueeze(1)


def _blend(img: torch.Tensor, other: torch.Tensor,
           factor: torch.Tensor) -> torch.Tensor:
    factor = factor.view(-1, 1, 1, 1)
    return (factor * img + (1 - factor) * other).clamp_(0, 1)


def _rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img.unbind(1)
    maxc, _ = img.max(1)
    minc, _ = img.min(1)
    delta = maxc - minc
    safe_max = torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    s = delta / safe_max
    safe_delta = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = ((maxc - c) / safe_delta for c in (r, g, b))
    h = torch.where(maxc == r, bc - gc,
                    torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def _hsv_to_rgb(img: torch.Tensor) -> torch.Tensor:
    h, s, v = img.unbind(1)
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.long() % 6
    p = v * (1 - s)
    q = v * (1 - s * f)
    t = v * (1 - s * (1 - f))
    table = torch.stack([
        torch.stack([v, q, p, p, t, v], 1),
        torch.stack([t, v, v, q, p, p], 1),
        torch.stack([p, p, t, v, v, q], 1),
    ], 1)  # (B, 3, 6, H, W)
    index = i.unsqueeze(1).unsqueeze(2).expand(-1, 3, 1, -1, -1)
    return table.gather(2, index).squeeze(2)


def _adjust_hue(img: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    hsv = _rgb_to_hsv(img)
    hsv[:, 0] = (hsv[:, 0] + shift.view(-1, 1, 1)) % 1.0
    return _hsv_to_rgb(hsv)


def _adjust_brightness(img: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (img * factor.view(-1, 1, 1, 1)).clamp(0, 1)


def _adjust_contrast(img: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = rgb_to_grayscale(img).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(img, mean, factor)


def _adjust_saturation(img: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(img, rgb_to_grayscale(img), factor)


_JITTER_OPS = (_adjust_brightness, _adjust_contrast, _adjust_saturation,
               _adjust_hue)


def color_jitter(images: torch.Tensor,
                 brightness: float = 0.4,
                 contrast: float = 0.4,
                 saturation: float = 0.4,
                 hue: float = 0.1,
                 prob: float = 1.0,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Colour-jitter each image with probability ``prob``.

    Factors are drawn per image: brightness, contrast and saturation in
    ``[1 - x, 1 + x]`` (contrast blends with the image's mean luma,
    saturation with its luma), hue shift in ``[-hue, hue]``; the four
    operations run in an order drawn per image.

    Args:
        images (Tensor): ``(B, 3, H, W)`` in ``[0, 1]``.
        brightness (float): Defaults to 0.4.
        contrast (float): Defaults to 0.4.
        saturation (float): Defaults to 0.4.
        hue (float): At most 0.5. Defaults to 0.1.
        prob (float): Probability of jittering an image. Defaults to 1.0.
        generator (torch.Generator, optional): Defaults to None.

    Returns:
        Tensor: The jittered images (a new tensor).
    """
    if not 0 <= hue <= 0.5:
        raise ValueError(f'hue must lie in [0, 0.5], got {hue}.')
    b = images.shape[0]
    device = images.device
    applied = torch.rand(b, generator=generator) < prob
    factors = torch.stack([
        _uniform(b, 1 - brightness, 1 + brightness, generator),
        _uniform(b, 1 - contrast, 1 + contrast, generator),
        _uniform(b, 1 - saturation, 1 + saturation, generator),
        _uniform(b, -hue, hue, generator),
    ], 1).to(device)
    order = torch.argsort(torch.rand(b, 4, generator=generator), dim=1)
    out = images.clone()
    idx = applied.nonzero().flatten()
    if idx.numel() == 0:
        return out
    x = out[idx.to(device)]
    f = factors[idx.to(device)]
    order = order[idx]
    for step in range(4):
        for op in range(4):
            sel = (order[:, step] == op).nonzero().flatten().to(device)
            if sel.numel() == 0:
                continue
            x[sel] = _JITTER_OPS[op](x[sel], f[sel, op])
    out[idx.to(device)] = x
    return out


def random_grayscale(images: torch.Tensor,
                     prob: float = 0.2,
                     generator: Optional[torch.Generator] = None
                     ) -> torch.Tensor:
    """Replace each image by its luma (3 equal channels) with ``prob``."""
    chosen = (torch.rand(images.shape[0], generator=generator) < prob).to(
        images.device)
    gray = rgb_to_grayscale(images).expand_as(images)
    return torch.where(chosen.view(-1, 1, 1, 1), gray, images)


def hflip_mask(n: int,
               prob: float = 0.5,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """bool ``(n,)``: which images to mirror."""
    return torch.rand(n, generator=generator) < prob

