"""Weighted k-nearest-neighbour classification of frozen features."""
import torch
import torch.nn.functional as F

__all__ = ['knn_top1']


@torch.no_grad()
def knn_top1(train_feats: torch.Tensor,
             train_labels: torch.Tensor,
             test_feats: torch.Tensor,
             test_labels: torch.Tensor,
             k: int = 200,
             temperature: float = 0.07,
             chunk: int = 1024) -> float:
    """Top-1 accuracy of a weighted kNN classifier (Wu et al., 2018).

    Features are L2-normalised; each of the ``k`` most cosine-similar
    training samples votes for its class with weight ``exp(sim / T)``.

    Args:
        train_feats (Tensor): ``(N, D)`` training features.
        train_labels (Tensor): ``(N,)`` training labels.
        test_feats (Tensor): ``(M, D)`` test features.
        test_labels (Tensor): ``(M,)`` test labels.
        k (int): Neighbours (capped at ``N``). Defaults to 200.
        temperature (float): Vote temperature. Defaults to 0.07.
        chunk (int): Test samples per similarity block. Defaults to 1024.

    Returns:
        float: Accuracy in percent.
    """
    if k < 1 or temperature <= 0:
        raise ValueError(f'Need k >= 1 and temperature > 0, got k={k}, '
                         f'temperature={temperature}.')
    num_classes = int(torch.cat([train_labels, test_labels]).max()) + 1
    k = min(k, len(train_labels))
    train_feats = F.normalize(train_feats.float(), dim=1)
    correct = 0
    for start in range(0, len(test_labels), chunk):
        feats = F.normalize(test_feats[start:start + chunk].float(), dim=1)
        sims, idx = (feats @ train_feats.T).topk(k, dim=1)
        votes = torch.zeros(len(feats), num_classes, device=feats.device)
        votes.scatter_add_(1, train_labels[idx], (sims / temperature).exp())
        pred = votes.argmax(dim=1)
        correct += (pred == test_labels[start:start + chunk]).sum().item()
    return 100.0 * correct / len(test_labels)
