#!/usr/bin/python3
"""Train a small timm-compatible Vision Transformer on Fashion-MNIST (CPU, one thread).

Run from the repository root:

    nohup /usr/bin/python3 samples/fashion-mnist/train.py > samples/fashion-mnist/train.log 2>&1 &

Data: Debian's copy of Fashion-MNIST in /usr/share/datasets/fashion-mnist/ (idx .gz files).
The model is plain PyTorch with timm's `VisionTransformer` module names, so its state_dict is a
timm checkpoint (patch_embed.proj, cls_token, pos_embed, blocks.{i}.{norm1,attn.qkv,attn.proj,
norm2,mlp.fc1,mlp.fc2}, norm, head); LayerNorm eps 1e-6, exact GELU, token pooling.

Writes samples/fashion-mnist/model.safetensors and then runs export.py (model.json, sample
PNGs, tests/fixtures/fashion/subset.safetensors and READMEs).
"""

import argparse
import gzip
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # Debian torch may link OpenBLAS (pthread)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
if torch.get_num_interop_threads() != 1:
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from make_fixtures import write_safetensors  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(path):
    with gzip.open(path, "rb") as f:
        blob = f.read()
    magic = int.from_bytes(blob[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(split):
    x = load_idx(os.path.join(DATA, "%s-images-idx3-ubyte.gz" % split))
    y = load_idx(os.path.join(DATA, "%s-labels-idx1-ubyte.gz" % split))
    return x, y.astype(np.int64)


# ---------------------------------------------------------------- model (timm names)

class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias=True):
        super().__init__()
        self.heads = heads
        self.hd = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax((q @ k.transpose(-1, -2)) * (self.hd ** -0.5), dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, T, D))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads,
                 mlp_ratio, eps=1e-6):
        super().__init__()
        n = (img_size // patch_size) ** 2
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, embed_dim) * 0.02)
        hidden = int(embed_dim * mlp_ratio)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, hidden, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=eps)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


# ---------------------------------------------------------------- training

def augment(xb, gen, pad=2):
    """Random crop with `pad` px zero padding (in normalized space: pad value = normalized 0)
    and random horizontal flip. xb: [B,1,28,28] float (already normalized); pad value given."""
    B, C, H, W = xb.shape
    xp = F.pad(xb, (pad, pad, pad, pad), value=0.0)
    oy = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
    rows = (oy[:, None] + torch.arange(H)[None, :])  # [B,H]
    cols = (ox[:, None] + torch.arange(W)[None, :])  # [B,W]
    flip = torch.rand(B, generator=gen) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(B)[:, None, None]
    out = xp[bi, 0, rows[:, :, None], cols[:, None, :]]
    return out.unsqueeze(1)


def evaluate(model, x, y, bs=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], bs):
            correct += (model(x[i:i + bs]).argmax(1) == y[i:i + bs]).sum().item()
    model.train()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp-ratio", type=float, default=2.0)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=float, default=1.0, help="warmup epochs")
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=0, help="timing run: stop after N steps")
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--no-aug", action="store_true", help="no crop/flip augmentation")
    ap.add_argument("--init", default="", help="start from these timm-named safetensors weights")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    t_start = time.time()

    xtr_u8, ytr = load_split("train")
    xte_u8, yte = load_split("t10k")
    mean = float(xtr_u8.astype(np.float64).mean() / 255.0)
    std = float((xtr_u8.astype(np.float64) / 255.0).std())
    print("train %s test %s mean %.6f std %.6f" % (xtr_u8.shape, xte_u8.shape, mean, std), flush=True)

    def norm(u8):
        return ((torch.from_numpy(u8.astype(np.float32)) / 255.0 - mean) / std).unsqueeze(1)

    xtr, xte = norm(xtr_u8), norm(xte_u8)
    ytr_t, yte_t = torch.from_numpy(ytr), torch.from_numpy(yte)
    pad_value = (0.0 - mean) / std  # a black pixel in normalized space

    model = ViT(28, args.patch, 1, 10, args.dim, args.depth, args.heads, args.mlp_ratio)
    if args.init:
        from make_fixtures import read_safetensors
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                               read_safetensors(args.init).items()}, strict=True)
        print("initialized from %s: test acc %.4f" % (args.init, evaluate(model, xte, yte_t)),
              flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print("params %d (%.1f KB as F32)" % (n_params, n_params * 4 / 1024), flush=True)

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name in ("cls_token", "pos_embed") else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr,
                            betas=(0.9, 0.999))
    n = xtr.shape[0]
    steps_per_epoch = n // args.batch
    total_steps = steps_per_epoch * args.epochs
    warm = int(args.warmup * steps_per_epoch)

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        prog = (step - warm) / max(1, total_steps - warm)
        return args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * prog)))

    step = 0
    model.train()
    epoch_times = []
    for epoch in range(args.epochs):
        t0 = time.time()
        perm = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            # pad in raw space (black), i.e. normalized pad_value: shift so padding is 0, then back
            if args.no_aug:
                xb = xtr[idx]
            else:
                xb = augment(xtr[idx] - pad_value, gen) + pad_value
            yb = ytr_t[idx]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=args.smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            loss_sum += loss.item()
            correct += (logits.argmax(1) == yb).sum().item()
            if args.max_steps and step >= args.max_steps:
                dt = time.time() - t0
                print("timing: %d steps in %.1fs -> %.1f s/epoch (%d steps/epoch)"
                      % (step, dt, dt / step * steps_per_epoch, steps_per_epoch), flush=True)
                return
            if (i + 1) % 100 == 0:
                print("  epoch %d step %d/%d loss %.4f lr %.2e %.0fs" % (
                    epoch + 1, i + 1, steps_per_epoch, loss_sum / (i + 1), lr_at(step),
                    time.time() - t0), flush=True)
        dt = time.time() - t0
        epoch_times.append(dt)
        acc = evaluate(model, xte, yte_t)
        print("epoch %d/%d loss %.4f train_acc %.4f test_acc %.4f time %.1fs" % (
            epoch + 1, args.epochs, loss_sum / steps_per_epoch,
            correct / (steps_per_epoch * args.batch), acc, dt), flush=True)

    acc = evaluate(model, xte, yte_t)
    total_time = time.time() - t_start
    print("final float32 test accuracy %.4f; total %.1fs; mean epoch %.1fs" % (
        acc, total_time, sum(epoch_times) / len(epoch_times)), flush=True)

    os.makedirs(args.out, exist_ok=True)
    sd = {k: v.detach().to(torch.float32).contiguous().numpy() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(args.out, "model.safetensors"), sd)
    meta = {
        "timm": {"img_size": 28, "patch_size": args.patch, "in_chans": 1, "num_classes": 10,
                 "embed_dim": args.dim, "depth": args.depth, "num_heads": args.heads,
                 "mlp_ratio": args.mlp_ratio, "qkv_bias": True, "class_token": True,
                 "global_pool": "token"},
        "mean": [mean], "std": [std],
        "train": {"epochs": args.epochs, "batch": args.batch, "lr": args.lr, "weight_decay": args.wd,
                  "warmup_epochs": args.warmup, "label_smoothing": args.smoothing, "seed": args.seed,
                  "params": n_params, "epoch_seconds": epoch_times, "total_seconds": total_time,
                  "float32_test_accuracy": acc, "augment": not args.no_aug,
                  "argv": sys.argv[1:]},
    }
    prev_path = os.path.join(args.out, "train_meta.json")
    if args.init and os.path.exists(prev_path):
        with open(prev_path) as f:
            prev = json.load(f)
        meta["train"]["init"] = args.init
        # stages in order; the earlier ones produced the --init weights
        meta["train"]["previous"] = prev["train"].get("previous", []) + [
            {k: v for k, v in prev["train"].items() if k != "previous"}]
        assert prev["mean"] == meta["mean"] and prev["timm"] == meta["timm"]
    with open(os.path.join(args.out, "train_meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    if not args.no_export:
        sys.modules.setdefault("train", sys.modules[__name__])
        import export
        export.main()


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
