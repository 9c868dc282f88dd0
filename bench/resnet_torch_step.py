#!/usr/bin/env python3
"""The PyTorch peer of `hone bench resnet`: ResNet-18 with the CIFAR 3x3 stem (no max pool),
batch 32, 32x32 images, one training step (forward, backward, SGD momentum), fp32, channels_last.

  OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=2 /usr/bin/python3 bench/resnet_torch_step.py
Ends with: median_ms_per_step=<number> images_per_s=<number>
"""
import argparse
import time

import torch
import torch.nn as nn
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    m = m.to(memory_format=fmt).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 32, 32).to(memory_format=fmt)
    y = torch.randint(0, 10, (a.batch,))
    times = []
    print(f"torch {torch.__version__}, {a.threads} threads, ResNet-18 (CIFAR stem), batch {a.batch}, channels_last={a.channels_last}")
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        dt = (time.perf_counter() - t0) * 1e3
        print(f"step {s + 1}{' (warm-up)' if s < a.warmup else ''}: {dt:.1f} ms, loss {loss.item():.4f}", flush=True)
        if s >= a.warmup:
            times.append(dt)
    times.sort()
    med = times[len(times) // 2]
    print(f"median_ms_per_step={med:.3f} images_per_s={a.batch / med * 1e3:.1f}")


if __name__ == "__main__":
    main()
