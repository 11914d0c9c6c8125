#!/usr/bin/env python3
"""The peer of hcnn_bench_gpu: the same networks in PyTorch with cuDNN, the same timing.

    python3 benchmarks/gpu_peer.py --net caffenet,vgg19,combination --batch 1,32,128 [--repeats 10] [--tf32 | --bf16]

Prints one line per network and batch in hcnn_bench_gpu's format (images/s of inference and of
a training step: forward, cross-entropy, backward, SGD with momentum 0.9 and weight decay
5e-4), so scripts/gpu-check.sh can put the two side by side. cudnn.benchmark picks each
convolution's algorithm by timing, as hcnn does; TF32 is off unless --tf32. --bf16 is
PyTorch's mixed precision, autocast to bfloat16 with FP32 weights: the counterpart of hcnn's
BF16 storage with FP32 master weights.
"""
import argparse
import time

import torch
from torch import nn


def caffenet_features():
    """CaffeNet up to pool5 (Caffe's order: pool before norm; ceil-mode pooling)."""
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Flatten())


def vgg19_features():
    layers, channels = [], 3
    for width, count in [(64, 2), (128, 2), (256, 4), (512, 4), (512, 4)]:
        for _ in range(count):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
    return nn.Sequential(*layers, nn.Flatten())


def fc(inputs, outputs, relu=True, dropout=True):
    layers = [nn.Linear(inputs, outputs)]
    if relu:
        layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(0.5))
    return layers


def classifier(features, inputs):
    return nn.Sequential(features, *fc(inputs, 4096), *fc(4096, 4096), nn.Linear(4096, 1000))


class Combination(nn.Module):
    """[D,VD]+2CL: each base without its top two weight layers (up to fc6 and its dropout), the
    features concatenated, fc 4096 and the classifier; VGG-19 reads the centre 224x224 crop."""

    def __init__(self):
        super().__init__()
        self.d = nn.Sequential(caffenet_features(), *fc(9216, 4096))
        self.vd = nn.Sequential(vgg19_features(), *fc(25088, 4096))
        self.cl = nn.Sequential(*fc(8192, 4096, dropout=False), nn.Linear(4096, 1000))

    def forward(self, x):
        crop = x[:, :, 1:225, 1:225]
        return self.cl(torch.cat([self.d(x), self.vd(crop)], dim=1))


NETS = {
    "caffenet": ("CaffeNet", lambda: classifier(caffenet_features(), 9216), 227),
    "vgg19": ("VGG-19", lambda: classifier(vgg19_features(), 25088), 224),
    "combination": ("[D,VD]+2CL", Combination, 227),
}


def median_seconds(repeats, run):
    for _ in range(2):
        run()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--net", default="caffenet,vgg19,combination")
    parser.add_argument("--batch", default="1,32,128")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tf32", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    precision = "BF16 autocast" if args.bf16 else "TF32" if args.tf32 else "FP32"
    print(f"GPU: {torch.cuda.get_device_name(0)}; PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
          f"{precision} math")
    for key in args.net.split(","):
        name, make, size = NETS[key]
        model = make().cuda()
        solver = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
        for n in [int(b) for b in args.batch.split(",")]:
            x = torch.randn(n, 3, size, size, device="cuda")
            labels = torch.arange(n, device="cuda") % 1000

            def infer():
                model.eval()
                with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.bf16):
                    torch.softmax(model(x), dim=1)

            def train():
                model.train()
                solver.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.bf16):
                    loss = nn.functional.cross_entropy(model(x), labels)
                loss.backward()
                solver.step()

            inference = median_seconds(args.repeats, infer)
            training = median_seconds(args.repeats, train)
            print(f"{name:<12} batch {n:4d}  inference {n / inference:9.1f} img/s  training {n / training:9.1f} img/s",
                  flush=True)


if __name__ == "__main__":
    main()
