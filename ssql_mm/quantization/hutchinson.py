r"""Hutchinson's estimator of Hessian traces, block by block.

For a loss :math:`L(\theta)` and a Rademacher vector :math:`v` (independent
entries :math:`\pm 1` with probability 1/2),
:math:`\mathbb{E}[v^\top H v] = \mathrm{tr}(H)`. Each block (one tensor
:math:`\theta_k`: a layer's weight, an activation) gets its own vector
:math:`v_k`, and :math:`H_{kk} v_k` is a Hessian-vector product by double
backpropagation, :math:`H_{kk} v_k = \nabla_{\theta_k} (\nabla_{\theta_k} L
\cdot v_k)`, as in HAWQ-v2 (Dong et al. 2020,
https://arxiv.org/abs/1911.03852). One sample
:math:`v_k^\top H_{kk} v_k` has variance
:math:`2 (\lVert H_{kk} \rVert_F^2 - \sum_i (H_{kk})_{ii}^2)`, so the mean of
:math:`S` samples has standard error :math:`\sigma / \sqrt{S}`; for a
positive semi-definite :math:`H_{kk}` every sample is :math:`\ge 0`.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = ['rademacher_like', 'hutchinson_samples']


def rademacher_like(tensor: Tensor,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """A tensor of ``tensor``'s shape with independent ±1 entries.

    Args:
        tensor (Tensor): Gives shape, dtype and device.
        generator (torch.Generator, optional): Random source (on the CPU).
            Defaults to None (the global one).

    Returns:
        Tensor: The Rademacher vector.
    """
    bits = torch.randint(0, 2, tensor.shape, generator=generator)
    return (bits * 2 - 1).to(dtype=tensor.dtype, device=tensor.device)


def hutchinson_samples(loss: Tensor,
                       tensors: Sequence[Tensor],
                       num_samples: int,
                       generator: Optional[torch.Generator] = None) -> Tensor:
    r"""Samples of :math:`v_k^\top H_{kk} v_k` for every tensor ``k``.

    Args:
        loss (Tensor): A scalar whose graph reaches the tensors (created
            with gradients enabled; kept for all samples).
        tensors (Sequence[Tensor]): The blocks: parameters, or intermediate
            tensors of the graph. A block the loss does not reach (or
            reaches linearly) has zero Hessian: its samples are 0.
        num_samples (int): Rademacher draws per block.
        generator (torch.Generator, optional): Random source. Defaults to
            None.

    Returns:
        Tensor: float64 ``(num_samples, len(tensors))``; the column means
        estimate the block traces.
    """
    if num_samples < 1:
        raise ValueError(f'num_samples must be >= 1, got {num_samples}.')
    tensors = list(tensors)
    variable = [k for k, t in enumerate(tensors) if t.requires_grad]
    grads = dict(zip(variable, torch.autograd.grad(
        loss, [tensors[k] for k in variable], create_graph=True,
        allow_unused=True)))
    samples = torch.zeros(num_samples, len(tensors), dtype=torch.float64)
    for k, grad in grads.items():
        if grad is None or not grad.requires_grad:
            continue
        for s in range(num_samples):
            v = rademacher_like(tensors[k], generator)
            hv, = torch.autograd.grad(grad, tensors[k], grad_outputs=v,
                                      retain_graph=True, allow_unused=True)
            if hv is not None:
                samples[s, k] = float((v.double() * hv.double()).sum())
    return samples
