"""The model zoo: small but real architectures in plain torch, each built with a fixed seed.

Every entry of :data:`ZOO` is a function ``build(seed=0) -> (module, example_inputs)`` with the
module in eval mode and a tuple of example tensors of the fixed shapes it is exported with.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


# ------------------------------------------------------------------ MLP (the predecessor's)
def mlp(seed: int = 0):
    """784-256-10 MLP with ReLU, batch 4."""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    return m.eval(), (torch.randn(4, 784),)


# ------------------------------------------------------------------ small CNN
def small_cnn(seed: int = 0):
    """Two conv blocks (conv, batch norm, ReLU, max pool) and a linear head; 2x3x32x32."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
    )
    _randomize_bn(m)
    return m.eval(), (torch.randn(2, 3, 32, 32),)


def _randomize_bn(m: nn.Module) -> None:
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)


# ------------------------------------------------------------------ ResNet-18
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def resnet18(seed: int = 0):
    """ResNet-18 (torchvision's layout), 1x3x224x224."""
    torch.manual_seed(seed)
    m = ResNet18()
    _randomize_bn(m)
    return m.eval(), (torch.randn(1, 3, 224, 224),)


# ------------------------------------------------------------------ MobileNetV2-style
class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, act):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),  # depthwise
            nn.BatchNorm2d(hidden), act(),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res else y


def mobilenet_v2(seed: int = 0):
    """A narrow MobileNetV2-style net: depthwise convs, ReLU6 and HardSwish; 1x3x96x96."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        InvertedResidual(16, 16, 1, 1, nn.ReLU6),
        InvertedResidual(16, 24, 2, 4, nn.ReLU6),
        InvertedResidual(24, 24, 1, 4, nn.ReLU6),
        InvertedResidual(24, 32, 2, 4, nn.Hardswish),
        InvertedResidual(32, 32, 1, 4, nn.Hardswish),
        nn.Conv2d(32, 128, 1, bias=False), nn.BatchNorm2d(128), nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, 10),
    )
    _randomize_bn(m)
    return m.eval(), (torch.randn(1, 3, 96, 96),)


# ------------------------------------------------------------------ transformer encoder
def transformer_encoder(seed: int = 0):
    """``nn.TransformerEncoder``: 2 layers, d_model 64, 4 heads, GELU feed-forward; 2x16x64."""
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.1, activation="gelu", batch_first=True)
    m = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    return m.eval(), (torch.randn(2, 16, 64),)


# ------------------------------------------------------------------ GPT-style decoder
class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, block: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.register_buffer("mask", torch.tril(torch.ones(block, block, dtype=torch.bool)))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y)


class GPTBlock(nn.Module):
    def __init__(self, d: int, heads: int, block: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads, block)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab: int = 128, block: int = 32, d: int = 64, heads: int = 4, layers: int = 2):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(block, d)
        self.blocks = nn.Sequential(*[GPTBlock(d, heads, block) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied LM head

    def forward(self, idx):
        t = idx.shape[1]
        pos = torch.arange(t, device=idx.device)
        x = self.tok(idx) + self.pos(pos)
        return self.head(self.ln(self.blocks(x)))


def gpt(seed: int = 0):
    """GPT-style decoder: token and position embeddings, causal mask, GELU MLP, tied LM head;
    int64 token ids 1x16."""
    torch.manual_seed(seed)
    m = GPT()
    return m.eval(), (torch.randint(0, 128, (1, 16), generator=torch.Generator().manual_seed(seed)),)


ZOO = {
    "mlp": mlp,
    "small_cnn": small_cnn,
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "transformer_encoder": transformer_encoder,
    "gpt": gpt,
}
