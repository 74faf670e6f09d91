#!/usr/bin/python3
"""Exports ViT-B/16 on a ResNet-50 trunk (timm vit_base_r50_s16_224, `vitgen bench --model r50b16`) with random
weights to ONNX, for tests/bench/compare.sh's hybrid row.

usage: tests/bench/export_hybrid_onnx.py OUT.onnx [--check]

The trunk is the semantics of tests/fixtures/make_hybrid_fixtures.py (checked there against timm) as modules:
TensorFlow-'same' padded convolutions whose weights are standardized once here, as ViTGen folds them at load
(ORT would constant-fold timm's per-call standardization the same way), GroupNorm(32) + ReLU, the -inf padded
3x3 max pool, non-preact bottlenecks of stages (3, 4, 9); then torchvision's VisionTransformer on the 14x14x1024
feature map with a 1x1 patch projection (the transformer math of timm's ViT-B: pre-norm blocks, eps 1e-6, exact
GELU, qkv bias, class token). --check runs onnx.checker on the file.
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.vision_transformer import VisionTransformer

LAYERS, WIDTH, SIZE, DIM, DEPTH, HEADS, CLASSES = (3, 4, 9), 64, 224, 768, 12, 12, 1000


def same_pads(size, kernel, stride):
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2, total // 2, total - total // 2)


class SameConv(nn.Module):
    """A standardized ('std conv') convolution with 'same' padding for a fixed input size."""

    def __init__(self, inputs, outputs, kernel, stride, size):
        super().__init__()
        weight = torch.randn(outputs, inputs, kernel, kernel)
        flat = weight.reshape(outputs, -1)
        flat = (flat - flat.mean(1, keepdim=True)) / torch.sqrt(flat.var(1, unbiased=False, keepdim=True) + 1e-8)
        self.weight = nn.Parameter(flat.reshape(weight.shape))
        self.stride, self.pads = stride, same_pads(size, kernel, stride)

    def forward(self, x):
        if any(self.pads):
            x = F.pad(x, self.pads)
        return F.conv2d(x, self.weight, stride=self.stride)


class Bottleneck(nn.Module):
    def __init__(self, inputs, mid, outputs, stride, size, project):
        super().__init__()
        self.downsample = nn.Sequential(SameConv(inputs, outputs, 1, stride, size), nn.GroupNorm(32, outputs)) if project else None
        self.conv1, self.norm1 = SameConv(inputs, mid, 1, 1, size), nn.GroupNorm(32, mid)
        self.conv2, self.norm2 = SameConv(mid, mid, 3, stride, size), nn.GroupNorm(32, mid)
        out = math.ceil(size / stride)
        self.conv3, self.norm3 = SameConv(mid, outputs, 1, 1, out), nn.GroupNorm(32, outputs)

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        return F.relu(self.norm3(self.conv3(y)) + shortcut)


class Hybrid(nn.Module):
    def __init__(self):
        super().__init__()
        size = math.ceil(SIZE / 2)
        self.stem = SameConv(3, WIDTH, 7, 2, SIZE)
        self.stem_norm = nn.GroupNorm(32, WIDTH)
        self.pool_pads = same_pads(size, 3, 2)
        size = math.ceil(size / 2)
        blocks, inputs = [], WIDTH
        for stage, depth in enumerate(LAYERS):
            mid = WIDTH << stage
            for block in range(depth):
                stride = (1 if stage == 0 else 2) if block == 0 else 1
                blocks.append(Bottleneck(inputs, mid, 4 * mid, stride, size, block == 0))
                inputs, size = 4 * mid, math.ceil(size / stride)
        self.stages = nn.Sequential(*blocks)
        self.vit = VisionTransformer(image_size=size, patch_size=1, num_layers=DEPTH, num_heads=HEADS,
                                     hidden_dim=DIM, mlp_dim=4 * DIM, num_classes=CLASSES)
        self.vit.conv_proj = nn.Conv2d(inputs, DIM, kernel_size=1)

    def forward(self, x):
        x = F.relu(self.stem_norm(self.stem(x)))
        x = F.max_pool2d(F.pad(x, self.pool_pads, value=-math.inf), 3, stride=2)
        return self.vit(self.stages(x))


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    model = Hybrid().eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    torch.onnx.export(model, x, out, opset_version=14, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    if "--check" in sys.argv:
        import onnx
        onnx.checker.check_model(onnx.load(out))
        print("exported", out)


if __name__ == "__main__":
    main()
