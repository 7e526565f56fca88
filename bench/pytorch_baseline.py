#!/usr/bin/python3
"""PyTorch CPU baseline for boundary-kd's training/query workloads (issue 12).

    /usr/bin/python3 bench/pytorch_baseline.py [--threads 2] [--seconds 6] [--only a,b] [--list]

Needs Debian's PyTorch with OpenBLAS (`apt-get install python3-torch libopenblas0-pthread`); without
OpenBLAS Debian's torch runs on the reference BLAS and is 2-3x slower, an unfair baseline.

Prints one JSON object per line on stdout:
  {"kind": "config", ...}   torch version, threads, BLAS in use (torch.__config__ and the libblas.so.3
                            alternative), CPU model, load average at start
  {"kind": "row", "id": ..., "batch": ..., "rate": ..., "per_cpu_second": ..., "unit": ...,
   "iters": ..., "seconds": ..., "load": ...}   one measured workload: wall-clock rate, and units per
                            CPU-second of this process (all threads; OpenMP spin-waits count as busy)
  {"kind": "error", "id": ..., "message": ...}   a workload that failed (the others still run)

The networks mirror lib/models/*.ts layer for layer (sizes, padding, pooling, BN placement and
defaults, dropout); only the memory layout differs (PyTorch NCHW, the kit NHWC), which changes
no arithmetic count. Inputs are uniform random pixels and random labels: the cost of a step does not
depend on the values. Each rate is images (or samples) per second of wall clock over timed
iterations after warm-up; the load average beside it says how busy the shared machine was.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - reported to the caller as JSON
    print(json.dumps({"kind": "error", "id": "import", "message":
                      f"cannot import torch ({e}); install it with "
                      "`apt-get install -y python3-torch libopenblas0-pthread`"}))
    sys.exit(2)


# ------------------------------------------------------------------------------------------------
# Networks (see lib/models/lenet.ts, alexnet.ts, resnet.ts)


class Db3LeNet5(nn.Module):
    """conv c1 k5 -> ReLU -> pool 2 -> conv c2 k5 -> ReLU -> pool 2 -> fc h -> ReLU -> fc K."""

    def __init__(self, c1=20, c2=50, h=200, k=10, size=28, cin=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c1, 5)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        s = ((size - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(c2 * s * s, h)
        self.fc2 = nn.Linear(h, k)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class Db3AlexNet(nn.Module):
    """Five conv(k3, p1; first s2) -> BN -> ReLU [-> pool] blocks, then
    fc f -> ReLU -> dropout 0.5 -> BN1d, twice, then fc K (lib/models/alexnet.ts)."""

    def __init__(self, convs=(32, 96, 192, 128, 128), f=2048, k=10, size=32, cin=3):
        super().__init__()
        pools = (True, True, False, False, True)
        layers = []
        c = cin
        for i, (out, pool) in enumerate(zip(convs, pools)):
            layers += [nn.Conv2d(c, out, 3, stride=2 if i == 0 else 1, padding=1), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2))
            c = out
        self.features = nn.Sequential(*layers)
        s = (((size - 1) // 2 + 1) // 2 // 2) // 2
        fan = c * s * s
        head = []
        for _ in range(2):
            head += [nn.Linear(fan, f), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.BatchNorm1d(f)]
            fan = f
        head.append(nn.Linear(fan, k))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.down = None
        if stride != 1 or cin != planes:
            self.down = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class CifarResNet(nn.Module):
    """CIFAR-style ResNet (lib/models/resnet.ts): 3x3 s1 stem, no max-pool, BasicBlocks, GAP, fc."""

    def __init__(self, blocks=(2, 2, 2, 2), width=64, k=10, cin=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(cin, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        layers = []
        c = width
        for s, n in enumerate(blocks):
            planes = width * 2 ** s
            for b in range(n):
                layers.append(BasicBlock(c, planes, 2 if s > 0 and b == 0 else 1))
                c = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, k)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ------------------------------------------------------------------------------------------------
# Workloads


def load_avg():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return None


def timed(step, units, seconds, min_iters=3, warmup=1):
    """Run `step` warm-up times, then until `seconds` have passed and at least `min_iters` ran."""
    for _ in range(warmup):
        step()
    iters = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        step()
        iters += 1
        dt = time.perf_counter() - t0
        if iters >= min_iters and dt >= seconds:
            break
    return units * iters / dt, units * iters / (time.process_time() - c0), iters, dt


def train_workload(make, shape, batch, opt_kind):
    torch.manual_seed(0)
    model = make().train()
    if opt_kind == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, *shape)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def label_workload(make, shape, batch):
    torch.manual_seed(0)
    model = make().eval()
    x = torch.rand(batch, *shape)

    def step():
        with torch.inference_mode():
            model(x).argmax(1)

    return step


def input_grad_workload(make, shape, batch):
    """CAKE synthesis step: teacher (inference-mode BN) forward, CE to target classes, gradient wrt inputs."""
    torch.manual_seed(0)
    model = make().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand(batch, *shape, requires_grad=True)
    y = torch.randint(0, 10, (batch,))

    def step():
        x.grad = None
        F.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            x.sub_(0.01 * x.grad)

    return step


MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)
WORKLOADS = {
    # id: (description, unit, batch, factory of the step function)
    "lenet5_train_adam_128": ("DB3 LeNet-5 training, Adam", "images/s", 128,
                              lambda b: train_workload(Db3LeNet5, MNIST, b, "adam")),
    "lenet5_train_adam_512": ("DB3 LeNet-5 training, Adam", "images/s", 512,
                              lambda b: train_workload(Db3LeNet5, MNIST, b, "adam")),
    "alexnet_half_train_adam_128": ("DB3 AlexNet-half training, Adam", "images/s", 128,
                                    lambda b: train_workload(Db3AlexNet, CIFAR, b, "adam")),
    "alexnet_half_train_adam_512": ("DB3 AlexNet-half training, Adam", "images/s", 512,
                                    lambda b: train_workload(Db3AlexNet, CIFAR, b, "adam")),
    "lenet5_labels_1024": ("DB3 LeNet-5 label queries", "labels/s", 1024,
                           lambda b: label_workload(Db3LeNet5, MNIST, b)),
    "alexnet_half_labels_1024": ("DB3 AlexNet-half label queries", "labels/s", 1024,
                                 lambda b: label_workload(Db3AlexNet, CIFAR, b)),
    "resnet18_labels_1024": ("CIFAR ResNet-18 label queries", "labels/s", 1024,
                             lambda b: label_workload(CifarResNet, CIFAR, b)),
    "resnet18_train_sgd_128": ("CIFAR ResNet-18 training, SGD", "images/s", 128,
                               lambda b: train_workload(CifarResNet, CIFAR, b, "sgd")),
    "resnet18_input_grad_100": ("CIFAR ResNet-18 input-gradient steps (CAKE)", "samples/s", 100,
                                lambda b: input_grad_workload(CifarResNet, CIFAR, b)),
}


def blas_info():
    cfg = torch.__config__.show()
    keys = ("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP", "PERF_WITH_AVX2")
    parts = [part.strip().split(": ")[-1] for part in cfg.replace("\n", ",").split(",")]
    # BLAS_INFO=generic: torch calls libblas.so.3, which the Debian alternative below resolves.
    blas = [part for part in parts if part.startswith(keys)]
    alt = None
    try:
        out = subprocess.run(["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"],
                             capture_output=True, text=True, timeout=10).stdout
        alt = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Value:")),
                   None)
    except (OSError, subprocess.SubprocessError):
        pass
    return blas, alt


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=6.0, help="timed seconds per workload (after warm-up)")
    ap.add_argument("--min-iters", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated workload ids (default: all)")
    ap.add_argument("--list", action="store_true", help="print the workload ids and exit")
    a = ap.parse_args()
    if a.list:
        for k, (desc, unit, batch, _) in WORKLOADS.items():
            print(json.dumps({"kind": "workload", "id": k, "what": desc, "unit": unit, "batch": batch}))
        return
    torch.set_num_threads(a.threads)
    blas, alt = blas_info()
    print(json.dumps({
        "kind": "config", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "blas": blas, "libblas_alternative": alt, "openblas_selected": bool(alt and "openblas" in alt),
        "mkldnn": torch.backends.mkldnn.is_available(), "cpu": cpu_model(), "cores": os.cpu_count(),
        "python": platform.python_version(), "load": load_avg(),
    }), flush=True)
    ids = [i for i in a.only.split(",") if i] or list(WORKLOADS)
    for wid in ids:
        if wid not in WORKLOADS:
            print(json.dumps({"kind": "error", "id": wid, "message":
                              f"unknown workload; use one of {', '.join(WORKLOADS)}"}), flush=True)
            continue
        desc, unit, batch, factory = WORKLOADS[wid]
        try:
            load = load_avg()
            rate, per_cpu, iters, dt = timed(factory(batch), batch, a.seconds, a.min_iters)
            print(json.dumps({"kind": "row", "id": wid, "what": desc, "batch": batch, "rate": rate,
                              "per_cpu_second": per_cpu,
                              "unit": unit, "iters": iters, "seconds": round(dt, 3), "load": load}),
                  flush=True)
        except Exception as e:  # one failing workload must not hide the others
            print(json.dumps({"kind": "error", "id": wid, "message": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
