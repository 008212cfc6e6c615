"""A linear classifier trained on cached frozen features."""
import math

import torch
import torch.nn.functional as F

__all__ = ['linear_probe_top1']


def linear_probe_top1(train_feats: torch.Tensor,
                      train_labels: torch.Tensor,
                      test_feats: torch.Tensor,
                      test_labels: torch.Tensor,
                      epochs: int = 100,
                      batch_size: int = 256,
                      lr: float = 0.1,
                      weight_decay: float = 0.0,
                      seed: int = 0) -> float:
    """Top-1 accuracy of a linear classifier on frozen features.

    Features are standardised with the training mean and std (a BatchNorm
    without affine parameters, as is common for linear probes), then a
    linear layer is trained with SGD (momentum 0.9, cosine learning rate)
    on the cached features. Given the same inputs and seed the result is
    the same.

    Args:
        train_feats (Tensor): ``(N, D)`` training features.
        train_labels (Tensor): ``(N,)`` training labels.
        test_feats (Tensor): ``(M, D)`` test features.
        test_labels (Tensor): ``(M,)`` test labels.
        epochs (int): Passes over the training features. Defaults to 100.
        batch_size (int): Mini-batch size. Defaults to 256.
        lr (float): Peak learning rate. Defaults to 0.1.
        weight_decay (float): SGD weight decay. Defaults to 0.
        seed (int): Seed of the initialisation and the shuffling.
            Defaults to 0.

    Returns:
        float: Accuracy in percent.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError('epochs and batch_size must be >= 1.')
    gen = torch.Generator(device='cpu').manual_seed(seed)
    device = train_feats.device
    mean = train_feats.mean(0, keepdim=True)
    std = train_feats.std(0, keepdim=True).clamp_min(1e-6)
    x_train = ((train_feats - mean) / std).float()
    x_test = ((test_feats - mean) / std).float()
    num_classes = int(torch.cat([train_labels, test_labels]).max()) + 1
    bound = 1 / math.sqrt(x_train.shape[1])
    weight = (torch.rand(num_classes, x_train.shape[1], generator=gen) * 2 -
              1).mul_(bound).to(device).requires_grad_()
    bias = torch.zeros(num_classes, device=device, requires_grad=True)
    optim = torch.optim.SGD([weight, bias], lr=lr, momentum=0.9,
                            weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        optim, T_max=epochs * steps_per_epoch)
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=gen).to(device)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(F.linear(x_train[idx], weight, bias),
                                   train_labels[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
    with torch.no_grad():
        pred = F.linear(x_test, weight, bias).argmax(dim=1)
    return 100.0 * (pred == test_labels).float().mean().item()
