"""detectron2's ResNet (``build_resnet_backbone``: bottleneck blocks, ``STRIDE_IN_1X1``, groups for ResNeXt) and its
FPN with the P6 max-pool (``build_resnet_fpn_backbone``) or RetinaNet's P6/P7 (``build_retinanet_resnet_fpn_backbone``),
with detectron2's module names."""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Sequence

from torch import Tensor, nn
from torch.nn import functional as F

from .layers import ConvNorm

BLOCKS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}  # bottleneck blocks per stage res2..res5


class BasicStem(nn.Module):
    """7x7 stride-2 convolution, ReLU, 3x3 stride-2 max pool (stride 4)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 64):
        super().__init__()
        self.conv1 = ConvNorm(in_channels, out_channels, 7, stride=2, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(F.relu_(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class BottleneckBlock(nn.Module):
    """1x1, 3x3 (grouped), 1x1 with a projection shortcut when the channels change; the stride on the first 1x1
    (MSRA, ``stride_in_1x1``) or on the 3x3 (torchvision, ResNeXt)."""

    def __init__(self, in_channels: int, out_channels: int, bottleneck_channels: int, stride: int, num_groups: int,
                 stride_in_1x1: bool):
        super().__init__()
        self.shortcut = ConvNorm(in_channels, out_channels, 1, stride=stride) if in_channels != out_channels else None
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = ConvNorm(in_channels, bottleneck_channels, 1, stride=s1)
        self.conv2 = ConvNorm(bottleneck_channels, bottleneck_channels, 3, stride=s3, padding=1, groups=num_groups)
        self.conv3 = ConvNorm(bottleneck_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out + shortcut)


class ResNet(nn.Module):
    """Stem and stages res2..res5; returns every stage's output by name."""

    def __init__(self, depth: int = 50, num_groups: int = 1, width_per_group: int = 64, stride_in_1x1: bool = True,
                 stem_out_channels: int = 64, res2_out_channels: int = 256):
        super().__init__()
        self.stem = BasicStem(3, stem_out_channels)
        in_channels, out_channels = stem_out_channels, res2_out_channels
        bottleneck = num_groups * width_per_group
        self.stage_names: List[str] = []
        self.out_channels: List[int] = []
        for i, count in enumerate(BLOCKS[depth]):
            blocks = []
            for b in range(count):
                stride = 2 if b == 0 and i > 0 else 1
                blocks.append(BottleneckBlock(in_channels, out_channels, bottleneck, stride, num_groups, stride_in_1x1))
                in_channels = out_channels
            name = f"res{i + 2}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            self.out_channels.append(out_channels)
            out_channels, bottleneck = out_channels * 2, bottleneck * 2

    def forward(self, x: Tensor) -> List[Tensor]:
        res2 = self.res2(self.stem(x))
        res3 = self.res3(res2)
        res4 = self.res4(res3)
        return [res2, res3, res4, self.res5(res4)]


class LastLevelP6P7(nn.Module):
    """RetinaNet's extra levels: P6 = 3x3 stride-2 convolution of C5, P7 = the same of ReLU(P6)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.p6 = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, 2, 1)

    def forward(self, c5: Tensor) -> List[Tensor]:
        p6 = self.p6(c5)
        return [p6, self.p7(F.relu(p6))]


class FPN(nn.Module):
    """detectron2's FPN over the ResNet stages ``in_stages`` (sum fusion, no norm, nearest 2x upsampling), then its
    top block: P6 = max_pool(P5, 1, stride 2) (``build_resnet_fpn_backbone``) or RetinaNet's P6/P7 from C5
    (``build_retinanet_resnet_fpn_backbone``). Returns the levels in order, by name (p2.. or p3..);
    ``out_channels`` is what torchvision's detection classes read. Under ``torch.jit.script`` it becomes a
    ``ScriptableFPN`` (``__prepare_scriptable__``): the same modules and the same ``forward``."""

    def __init__(self, bottom_up: ResNet, out_channels: int = 256, in_stages: Sequence[int] = (2, 3, 4, 5),
                 p6p7: bool = False):
        super().__init__()
        self.bottom_up = bottom_up
        self.out_channels = out_channels
        self.in_stages = [int(s) for s in in_stages]
        for stage in self.in_stages:
            self.add_module(f"fpn_lateral{stage}", nn.Conv2d(bottom_up.out_channels[stage - 2], out_channels, 1))
            self.add_module(f"fpn_output{stage}", nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.top_block = LastLevelP6P7(bottom_up.out_channels[-1], out_channels) if p6p7 else None
        self.top_down = [stage - 2 for stage in reversed(self.in_stages)]  # the stages' indices, deepest first
        last = self.in_stages[-1]
        self.names = [f"p{s}" for s in self.in_stages] + ([f"p{last + 1}", f"p{last + 2}"] if p6p7 else [f"p{last + 1}"])

    @property
    def laterals(self) -> List[nn.Module]:
        """The lateral 1x1 convolutions, from the top (the deepest stage) down."""
        return [getattr(self, f"fpn_lateral{stage}") for stage in reversed(self.in_stages)]

    @property
    def outputs(self) -> List[nn.Module]:
        """The output 3x3 convolutions, from the top down."""
        return [getattr(self, f"fpn_output{stage}") for stage in reversed(self.in_stages)]

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        stages = self.bottom_up(x)  # res2..res5
        results: List[Tensor] = []
        prev = stages[-1]  # (TorchScript wants it defined before the loop)
        for i, (lateral, output) in enumerate(zip(self.laterals, self.outputs)):  # top-down
            features = lateral(stages[self.top_down[i]])
            prev = features if i == 0 else features + F.interpolate(prev, scale_factor=2.0, mode="nearest")
            results.insert(0, output(prev))
        if self.top_block is None:
            results.append(F.max_pool2d(results[-1], kernel_size=1, stride=2, padding=0))
        else:
            results.extend(self.top_block(stages[-1]))
        levels: Dict[str, Tensor] = OrderedDict()
        for name, level in zip(self.names, results):
            levels[name] = level
        return levels

    def __prepare_scriptable__(self) -> "ScriptableFPN":
        return ScriptableFPN(self)


class ScriptableFPN(nn.Module):
    """What ``torch.jit.script`` compiles for an ``FPN``: its convolutions in module lists, which TorchScript loops
    over (it cannot look attributes up by computed names), and ``FPN.forward`` itself."""

    def __init__(self, fpn: FPN):
        super().__init__()
        self.bottom_up = fpn.bottom_up
        self.out_channels = fpn.out_channels
        self.laterals = nn.ModuleList(fpn.laterals)
        self.outputs = nn.ModuleList(fpn.outputs)
        self.top_block = fpn.top_block
        self.top_down = fpn.top_down
        self.names = fpn.names

    forward = FPN.forward
