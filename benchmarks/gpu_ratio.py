#!/usr/bin/env python3
"""hcnn / PyTorch ratios from the outputs of hcnn_bench_gpu and gpu_peer.py of one run.

    python3 benchmarks/gpu_ratio.py hcnn.txt pytorch.txt

Pairs the rows of the same network and batch and prints hcnn's images/s over PyTorch's for
inference, the training step, and the training step replayed from a CUDA graph (hcnn's
"graph" column) against PyTorch's ordinary step. Above 1: hcnn is faster.
"""
import re
import sys

ROW = re.compile(r"^(?P<net>\S.*?)\s+batch\s+(?P<batch>\d+)\s+inference\s+(?P<inference>[\d.]+) img/s.*?"
                 r"training\s+(?P<training>[\d.]+) img/s(?:.*?graph\s+(?P<graph>[\d.]+) img/s)?")


def rows(path):
    found = {}
    with open(path) as text:
        for line in text:
            match = ROW.match(line)
            if match:
                found[(match["net"].strip(), int(match["batch"]))] = match
    return found


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ours, peer = rows(sys.argv[1]), rows(sys.argv[2])
    print("network      batch  inference  training  graph step   (hcnn / PyTorch images per second)")
    for key, mine in ours.items():
        if key not in peer:
            continue
        theirs = peer[key]
        graph = float(mine["graph"]) / float(theirs["training"]) if mine["graph"] else float("nan")
        print(f"{key[0]:<12} {key[1]:5d}  {float(mine['inference']) / float(theirs['inference']):9.2f}  "
              f"{float(mine['training']) / float(theirs['training']):8.2f}  {graph:10.2f}")


if __name__ == "__main__":
    main()
