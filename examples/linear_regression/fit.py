"""Fit each linear-regression variant on data it can fit exactly, and print the outcome.

Run: python examples/linear_regression/fit.py
"""

import keras
import numpy as np
from regression import TRUE_BIAS, TRUE_KERNEL, VARIANTS, mse, simulate


def main(epochs=40):
    x, y = simulate()
    print(f"{len(y)} samples, x {x.shape}, y {y.shape}; y = x @ {TRUE_KERNEL} + {TRUE_BIAS}")
    print(f"after {epochs} epochs of SGD(0.1), batch 32, from zero weights:")
    print(f"{'variant':<36}{'mse':>8}   kernel{'':<18}bias")
    print(f"{'(the exact fit)':<36}{0:>8.4f}   {fmt(TRUE_KERNEL)}  {TRUE_BIAS:.3f}")
    for name, variant in VARIANTS.items():
        keras.utils.set_random_seed(0)
        model = variant()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=mse)
        model.fit(x, y, epochs=epochs, batch_size=32, shuffle=False, verbose=0)
        kernel, bias = (w.numpy().ravel() for w in model.layer.weights)
        error = float(np.mean((model.predict(x, verbose=0).ravel() - y) ** 2))
        print(f"{name:<36}{error:>8.4f}   {fmt(kernel)}  {bias[0]:.3f}")


def fmt(values):
    return "[" + " ".join(f"{v:6.3f}" for v in values) + "]"


if __name__ == "__main__":
    main()
