"""Native PyTorch losses: torch broadcasts labels (B,) against predictions (B, 1) silently."""

import torch
from torch import nn


def naive_mse(y_true, y_pred):
    """Broken: (B,) - (B, 1) broadcasts to (B, B)."""
    return torch.mean((y_true - y_pred) ** 2)


def aligned_mse(y_true, y_pred):
    """Fixed: the labels take the prediction's shape first."""
    return torch.mean((y_true.reshape(y_pred.shape) - y_pred) ** 2)


class RelativeError(nn.Module):
    """A custom module loss in torch's order, forward(input, target). Broken, and torch says
    nothing: its warning covers only mse_loss, l1_loss, smooth_l1_loss and huber_loss."""

    def forward(self, input, target):
        return torch.mean(torch.abs(input - target) / (torch.abs(target) + 1.0))
