#!/usr/bin/env python3
"""Draws the pictures of the Caltech-101 experiment from what hcnn_caltech101 wrote.

    python3 scripts/plot_caltech101.py [RESULTS_DIR]      (default: caltech101-results)

Reads RESULTS_DIR/logs/*.csv, fig3_*.csv and fig4_*.csv and writes, in RESULTS_DIR:
  training_curves.png  loss and top-1 per epoch: the bases' pre-training and the target models
  fig3.png             the paper's Fig. 3: per-unit gradient of each class's log-posterior at the
                       concatenation, averaged over classes and sorted per base, for a homogeneous
                       ([D,D']) and a heterogeneous ([D,VD]) pair, and the units' mean activations
  fig4_tsne.png        the paper's Fig. 4: 2-D t-SNE of the last fc features (before the softmax)
                       of D, VD and [D,VD]+2CL on the target test images, coloured by class

Needs python3-matplotlib, python3-numpy and python3-sklearn (Debian packages).
"""
import csv
import glob
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402


def read_columns(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{path}: no rows")
    return {key: [row[key] for row in rows] for key in rows[0]}


def numbers(values):
    return np.array([float(v) if v != "" else np.nan for v in values])


def save(fig, folder, name):
    fig.tight_layout()
    out = os.path.join(folder, name)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def training_curves(folder):
    logs = os.path.join(folder, "logs")
    groups = [
        ("pre-training on the source task", sorted(glob.glob(os.path.join(logs, "base_*.csv")))),
        ("transfer to the target task (seed 1)", sorted(glob.glob(os.path.join(logs, "target_*seed1.csv")))),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    for row, (title, files) in enumerate(groups):
        for path in files:
            log = read_columns(path)
            name = os.path.basename(path)[:-4]
            epoch = numbers(log["epoch"])
            line, = axes[row][0].plot(epoch, numbers(log["train_loss"]), marker=".", label=name)
            axes[row][1].plot(epoch, 100 * numbers(log["train_top1"]), linestyle=":", color=line.get_color())
            axes[row][1].plot(epoch, 100 * numbers(log["test_top1"]), marker=".", color=line.get_color(), label=name)
        axes[row][0].set_title(f"{title}: training loss")
        axes[row][1].set_title(f"{title}: top-1 (%), test (solid) and training (dotted)")
        for ax in axes[row]:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        if files:
            axes[row][1].legend(fontsize=7)
    return save(fig, folder, "training_curves.png")


def fig3(folder):
    hom = read_columns(os.path.join(folder, "fig3_homogeneous.csv"))
    het = read_columns(os.path.join(folder, "fig3_heterogeneous.csv"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [
        (axes[0], hom, "gradient", ("D", "D'"), "(a) [D,D']+2CL: |d log p_c / d unit|"),
        (axes[1], het, "gradient", ("D", "VD"), "(b) [D,VD]+2CL: |d log p_c / d unit|"),
        (axes[2], het, "activation", ("D", "VD"), "(c) [D,VD]+2CL: mean activation"),
    ]
    for ax, data, kind, names, title in panels:
        for base, name in enumerate(names):
            values = numbers(data[f"{kind}_base{base}"])
            values = values[~np.isnan(values)]
            ax.plot(np.arange(len(values)), values, label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("unit of the base's features (sorted, descending)")
        ax.grid(alpha=0.3)
        ax.legend()
    return save(fig, folder, "fig3.png")


def embed(features):
    n = features.shape[0]
    if features.shape[1] > 50 and n > 50:
        features = PCA(n_components=50, random_state=0).fit_transform(features)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=0).fit_transform(features)


def fig4(folder):
    panels = [("fig4_D.csv", "(a) fc-alpha of D (fc7, fine-tuned)"),
              ("fig4_VD.csv", "(b) fc-alpha of VD (fc15, fine-tuned)"),
              ("fig4_joint.csv", "(c) fc-alpha of [D,VD]+2CL")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, (name, title) in zip(axes, panels):
        data = np.loadtxt(os.path.join(folder, name), delimiter=",", skiprows=1, ndmin=2)
        labels, features = data[:, 0].astype(int), data[:, 1:]
        points = embed(features)
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="nipy_spectral", s=6)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("t-SNE of the target test images' features, coloured by class")
    return save(fig, folder, "fig4_tsne.png")


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "caltech101-results"
    if not os.path.isdir(folder):
        raise SystemExit(f"{folder}: no such folder (run hcnn_caltech101 first)")
    for draw in (training_curves, fig3, fig4):
        print("wrote", draw(folder))


if __name__ == "__main__":
    main()
