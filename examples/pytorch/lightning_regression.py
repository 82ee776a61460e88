"""The linear-regression trap as a LightningModule: a Linear(3, 1) whose training_step
subtracts (B, 1) predictions from (B,) labels, so every sample is compared with every label."""

import lightning as L
import torch


class LinearRegression(L.LightningModule):
    """Broken: training_step's y - self(x) broadcasts to (B, B); it trains, but never fits."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)
        self.example_input_array = torch.zeros(8, 3)

    def forward(self, x):
        return self.linear(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.mean((y - self(x)) ** 2)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class AlignedLinearRegression(LinearRegression):
    """Fixed: the labels take the prediction's shape before the loss."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat = self(x)
        loss = torch.mean((y.reshape(y_hat.shape) - y_hat) ** 2)
        self.log("train_loss", loss)
        return loss
