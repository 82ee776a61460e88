"""Fit each linear-regression variant on data it can fit exactly, and print the outcome.

Run: python examples/linear_regression/fit.py [--epochs N] [--plot PATH]

--plot PATH writes a PNG of the training curves (needs matplotlib: pip install -e '.[plot]').
"""

import argparse

import keras
import numpy as np
from regression import TRUE_BIAS, TRUE_KERNEL, VARIANTS, mse, simulate


def main(epochs=40, plot=None):
    x, y = simulate()
    print(f"{len(y)} samples, x {x.shape}, y {y.shape}; y = x @ {TRUE_KERNEL} + {TRUE_BIAS}")
    print(f"after {epochs} epochs of SGD(0.1), batch 32, from zero weights:")
    print(f"{'variant':<36}{'mse':>8}   kernel{'':<18}bias")
    print(f"{'(the exact fit)':<36}{0:>8.4f}   {fmt(TRUE_KERNEL)}  {TRUE_BIAS:.3f}")
    histories = {}
    for name, variant in VARIANTS.items():
        keras.utils.set_random_seed(0)
        model = variant()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=mse)
        # validation_data runs Keras's own test_step, which aligns the labels: val_loss is the
        # true mse on the data, whatever train_step reports as `loss`.
        history = model.fit(x, y, epochs=epochs, batch_size=32, shuffle=False, verbose=0,
                            validation_data=(x, y))
        histories[name] = history.history
        kernel, bias = (w.numpy().ravel() for w in model.layer.weights)
        error = float(np.mean((model.predict(x, verbose=0).ravel() - y) ** 2))
        print(f"{name:<36}{error:>8.4f}   {fmt(kernel)}  {bias[0]:.3f}")
    if plot:
        draw(histories, plot)
        print(f"training curves written to {plot}")


def draw(histories, path):
    """The true mse per epoch of each variant, from model.fit's History ('val_loss')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    styles = [("tab:red", "-", "o"), ("tab:blue", "-", None), ("tab:green", "--", None)]
    for (name, history), (color, line, marker) in zip(histories.items(), styles, strict=True):
        values = np.maximum(history["val_loss"], 1e-16)  # an exact 0 would vanish on a log axis
        ax.plot(np.arange(1, len(values) + 1), values, color=color, linestyle=line,
                marker=marker, markersize=3, linewidth=2, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mse on the training data (log scale)")
    ax.set_title("Linear regression, labels (N,) and a Dense(1) output (N, 1):\n"
                 "the hand-written loss broadcasts to (N, N) and the model never fits",
                 fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center right", fontsize=9)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # same bytes on every run
    plt.close(fig)


def fmt(values):
    return "[" + " ".join(f"{v:6.3f}" for v in values) + "]"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="epochs per variant (40)")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of the training curves")
    args = parser.parse_args()
    main(epochs=args.epochs, plot=args.plot)
