"""A small ResNet as torchvision writes it (BasicBlock with the residual ``out += identity``, a 1x1
downsample, kaiming init over ``self.modules()``), AdaptiveAvgPool2d and ``torch.flatten``,
CrossEntropyLoss with label smoothing, SGD (momentum, Nesterov, weight decay) under MultiStepLR
stepped per epoch or OneCycleLR stepped per batch, and the CIFAR example's accuracy bookkeeping
(``outputs.max(1)``, ``predicted.eq(targets).sum().item()``)."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn


def program(torch, init=None, compiled=False, sched="multistep"):
    nn = torch.nn

    def conv3x3(in_planes, out_planes, stride=1):
        return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = conv3x3(inplanes, planes, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(planes, planes)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        def __init__(self, num_classes=5):
            super().__init__()
            self.inplanes = 8
            self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = self._make_layer(8, 1)
            self.layer2 = self._make_layer(16, 1, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(16 * BasicBlock.expansion, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

        def _make_layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                           nn.BatchNorm2d(planes))
            layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * BasicBlock.expansion
            for _ in range(1, blocks):
                layers.append(BasicBlock(self.inplanes, planes))
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer2(self.layer1(x))
            x = self.avgpool(x)
            x = torch.flatten(x, 1)
            return self.fc(x)

    torch.manual_seed(0)
    device = "cpu"
    model = ResNet().to(device)
    if init:
        init(model)
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.standard_normal((24, 3, 8, 8)).astype(np.float32))
    Y = torch.from_numpy(rng.integers(0, 5, 24))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=8)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    if sched == "multistep":
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1, 2], gamma=0.1)
    else:
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, steps_per_epoch=len(loader), epochs=3)

    def train_step(inputs, targets):
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        if sched == "onecycle":
            scheduler.step()
        return loss, outputs

    step = tracenn.compile(train_step) if compiled else train_step
    losses, accs, lrs = [], [], []
    for epoch in range(3):
        model.train()
        correct, total = 0, 0
        for batch_idx, (inputs, targets) in enumerate(loader):
            inputs, targets = inputs.to(device), targets.to(device)
            loss, outputs = step(inputs, targets)
            _, predicted = outputs.max(1)
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()
            losses.append(loss.item())
            lrs.append(optimizer.param_groups[0]["lr"])
        if sched == "multistep":
            scheduler.step()
        accs.append(100. * correct / total)
    model.eval()
    with torch.no_grad():
        out = model(X)
        test_correct = (out.argmax(dim=1) == Y).sum().item()
    return {"losses": losses, "accuracy": accs, "lr": lrs, "test_correct": [test_correct], "logits": out.numpy(),
            "model": model}


@pytest.mark.slow
@pytest.mark.parametrize("sched", ["multistep", "onecycle"])
def test_trains_eager_equal_to_compiled(rw, sched):
    eager = program(tracenn, sched=sched)
    rw.assert_learns(eager["losses"])
    step_programs = []
    compile_ = tracenn.compile
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tracenn, "compile", lambda fn: step_programs.append(compile_(fn)) or step_programs[-1])
        compiled = program(tracenn, sched=sched, compiled=True)
    # OneCycleLR cycles the learning rate and SGD's momentum: both are program inputs, not recompiles
    assert len(step_programs[0]._entries) <= 2, step_programs[0].explain()
    for key in ("losses", "accuracy", "lr", "logits"):
        np.testing.assert_allclose(compiled[key], eager[key], rtol=2e-4, atol=2e-5, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("sched", ["multistep", "onecycle"])
def test_matches_pytorch(rw, sched):
    rw.assert_runs_close(*rw.with_torch(program, sched=sched))
