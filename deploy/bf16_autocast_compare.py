#!/usr/bin/env python3
"""ghostnet-d bf16 against PyTorch's CPU autocast bf16, back to back on the same batch and threads.

    python3 deploy/bf16_autocast_compare.py [--bin .build/release/ghostnet-d] [--batch 16] [--threads 2]

Runs `ghostnet-d bench train|infer --precision bf16` (which also times fp32 in the same run), then a
PyTorch training step (SGD, momentum 0.9) and an inference forward of torchvision's resnet101 — the ResNet-101
GhostNet-D's stages replace, with channels_last tensors — under `torch.autocast("cpu", dtype=torch.bfloat16)`
and in fp32, with torch.set_num_threads(--threads). Prints images/s of each and the ratios.

Only meaningful on a CPU with AVX512-BF16 (Zen 4/5, Sapphire Rapids and later): elsewhere ghostnet-d reports the
emulated path's numerics only and PyTorch's bf16 falls back to slow reference kernels, so this script stops and
says so. Needs `pip install torch torchvision` (CPU wheels).
"""
import argparse
import json
import subprocess
import sys
import time


def ghostnet(binary, kind, batch, threads, steps):
    """images/s of ghostnet-d's bf16 and fp32 runs of `bench KIND`, from its bf16 line and JSON."""
    out = subprocess.run(
        [binary, "bench", kind, "--arch", "ghostnet101", "--batch", str(batch), "--image-size", "224",
         "--threads", str(threads), "--steps", str(steps), "--precision", "bf16", "--json"],
        check=True, capture_output=True, text=True).stdout
    if "runs emulated" in out:
        sys.exit("this CPU has no AVX512-BF16: ghostnet-d reports bf16 numerics only, nothing to compare\n" + out)
    bf16 = json.loads(out.strip().splitlines()[-1])["images_per_second"]
    line = next(l for l in out.splitlines() if l.startswith("bf16 ("))
    fp32 = float(line.rsplit("run's ", 1)[1].split(" images/s")[0])
    return bf16, fp32


def torch_rate(kind, batch, threads, steps, bf16):
    import torch
    import torchvision

    torch.set_num_threads(threads)
    model = torchvision.models.resnet101().to(memory_format=torch.channels_last)
    images = torch.randn(batch, 3, 224, 224).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=1e-4)
    model.train(kind == "train")

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if kind == "train":
                loss = torch.nn.functional.cross_entropy(model(images), labels)
            else:
                with torch.no_grad():
                    model(images)
                return
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch / sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=".build/release/ghostnet-d")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    for kind in ("train", "infer"):
        ours_bf16, ours_fp32 = ghostnet(args.bin, kind, args.batch, args.threads, args.steps)
        torch_bf16 = torch_rate(kind, args.batch, args.threads, args.steps, bf16=True)
        torch_fp32 = torch_rate(kind, args.batch, args.threads, args.steps, bf16=False)
        print(f"{kind}: ghostnet-d bf16 {ours_bf16:.2f} img/s ({ours_bf16 / ours_fp32:.2f}× its fp32), "
              f"PyTorch autocast bf16 resnet101 channels_last {torch_bf16:.2f} img/s ({torch_bf16 / torch_fp32:.2f}× "
              f"its fp32); ghostnet-d / PyTorch {ours_bf16 / torch_bf16:.2f}×")


if __name__ == "__main__":
    main()
