"""Train the classic small CNN on handwritten digits, evaluate it, save it, reload it.

Run: python examples/mnist.py                      (scikit-learn's 8x8 digits, about 15 s on 2 CPU cores)
     python examples/mnist.py --data ~/data/mnist  (MNIST, from the four IDX files you have there)

Everything below is written exactly as it would be for PyTorch (``import tracenn as torch``): the
network, the Adadelta optimizer and the StepLR schedule are those of PyTorch's ``examples/mnist``.

Flags: --epochs, --batch-size, --lr, --mode {eager,compiled}, --data DIR, --max-steps N (cap the steps
of each epoch, for quick checks), --seed, --checkpoint PATH, --quiet (no progress bar). ``main(argv)``
returns the run's figures as a dict (the tests call it in-process).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import tracenn as torch
from tracenn import nn
from tracenn.nn import functional as F
from tracenn.optim.lr_scheduler import StepLR
from tracenn.utils.data import DataLoader
from tracenn.vision import datasets, transforms


class Net(nn.Module):
    """Conv-ReLU-Conv-ReLU-MaxPool-Dropout-Flatten-Linear-ReLU-Dropout-Linear (PyTorch's example).

    The flatten size follows from ``image_size``: the two 3x3 convolutions without padding take 2
    pixels each, the 2x2 pool halves what is left (28 -> 12, so 64 * 12 * 12 = 9216 features for
    MNIST; 8 -> 2, so 256 for the digits).
    """

    def __init__(self, image_size: int = 28, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        side = (image_size - 4) // 2
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return self.fc2(x)  # logits: cross_entropy applies log_softmax


def parse_args(argv=None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    p = argparse.ArgumentParser(description="Train the classic small CNN on handwritten digits with tracenn.")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set (default: 10)")
    p.add_argument("--batch-size", type=int, default=64, help="training batch size (default: 64)")
    p.add_argument("--lr", type=float, default=1.0, help="Adadelta learning rate (default: 1.0)")
    p.add_argument("--mode", choices=["eager", "compiled"], default="eager",
                   help="run op by op, or compile each training step (forward, backward, update) into one XLA "
                        "program with tracenn.compile (default: eager)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="a folder with the MNIST IDX files (default: scikit-learn's 8x8 handwritten digits)")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="stop each epoch after N steps")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="where to save the trained model (default: a file in a new temporary folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for flag in ("epochs", "batch_size", "max_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if args.mode == "compiled" and not hasattr(torch, "compile"):
        p.error("--mode compiled needs tracenn.compile, which this version of tracenn does not have yet: "
                "run with --mode eager")
    if args.data is not None:
        args.data = os.path.expanduser(args.data)
        if not os.path.isdir(args.data):
            p.error(f"--data {args.data}: no such folder (pass the folder that holds the MNIST IDX files)")
    return p, args


def load_data(p: argparse.ArgumentParser, args: argparse.Namespace):
    """The training and held-out splits, as datasets of (1 x H x W float tensor, int label)."""
    if args.data is None:
        try:
            train_set, test_set = datasets.Digits(train=True), datasets.Digits(train=False)
        except ImportError:
            p.error("the default data, scikit-learn's handwritten digits, needs scikit-learn: "
                    "pip install -e '.[digits]' or pass --data DIR with MNIST IDX files")
    else:
        try:
            train_set, test_set = datasets.MNIST(args.data, train=True), datasets.MNIST(args.data, train=False)
        except FileNotFoundError as e:
            p.error(f"--data {args.data}: {e}")
    # Normalize by the training images' mean and standard deviation (0.1307 and 0.3081 for MNIST).
    pixels = train_set.data.float() / 255
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((pixels.mean().item(),), (pixels.std().item(),))])
    train_set.transform = test_set.transform = transform
    return train_set, test_set


def make_train_step(model, optimizer):
    """One training step: forward, loss, backward, update (PyTorch's loop body, as a function)."""
    def train_step(data, target):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        return loss
    return train_step


def train_epoch(model, train_step, loader, epoch: int, max_steps, progress) -> list[float]:
    """One pass over ``loader`` (at most ``max_steps`` steps); returns each step's loss."""
    model.train()
    steps = len(loader) if max_steps is None else min(len(loader), max_steps)
    task = progress.add_task(f"epoch {epoch}", total=steps, loss=float("nan"), rate=0.0)
    losses, seen, start = [], 0, time.perf_counter()
    for data, target in loader:
        loss = train_step(data, target)
        losses.append(loss.item())
        seen += len(target)
        progress.update(task, advance=1, loss=losses[-1], rate=seen / (time.perf_counter() - start))
        if len(losses) == steps:
            break
    return losses


def evaluate(model, loader) -> float:
    """The fraction of ``loader``'s samples that ``model`` classifies correctly."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for data, target in loader:
            correct += (model(data).argmax(dim=1) == target).sum().item()
            total += len(target)
    return correct / total


def main(argv=None) -> dict:
    p, args = parse_args(argv)
    torch.manual_seed(args.seed)
    train_set, test_set = load_data(p, args)
    image_size = train_set.data.shape[-1]
    # drop_last: every step sees the same batch shape, so eager mode compiles each op's kernel once.
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    test_loader = DataLoader(test_set, batch_size=1000)
    if len(train_loader) == 0:
        p.error(f"--batch-size {args.batch_size} is larger than the training set ({len(train_set)} images)")

    model = Net(image_size)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    train_step = make_train_step(model, optimizer)
    eval_model = model
    if args.mode == "compiled":
        # One XLA program per training step (forward, backward and the Adadelta update), and one
        # for evaluation; the learning rate the scheduler sets is an input, so no recompiles.
        train_step = torch.compile(train_step)
        eval_model = torch.compile(model)

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]:.4f}"),
                        TextColumn("{task.fields[rate]:>6,.0f} samples/s"), TimeElapsedColumn(),
                        disable=args.quiet)
    losses, epoch_seconds = [], []
    with progress:
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            losses += train_epoch(model, train_step, train_loader, epoch, args.max_steps, progress)
            epoch_seconds.append(time.perf_counter() - start)
            scheduler.step()
    accuracy = evaluate(eval_model, test_loader)

    # Save the weights, load them into a fresh model, and check that it scores the same.
    path = args.checkpoint or os.path.join(tempfile.mkdtemp(prefix="tracenn-mnist-"), "mnist_cnn.pt")
    torch.save(model.state_dict(), path)
    reloaded = Net(image_size)
    reloaded.load_state_dict(torch.load(path))
    if args.mode == "compiled":
        reloaded = torch.compile(reloaded)
    reloaded_accuracy = evaluate(reloaded, test_loader)
    if reloaded_accuracy != accuracy:
        raise RuntimeError(f"the model reloaded from {path} scores {reloaded_accuracy:.2%}, the trained model "
                           f"{accuracy:.2%}: saving or loading the state_dict lost something")

    train_seconds = sum(epoch_seconds)
    steps_per_epoch = len(losses) // args.epochs
    print(f"{'MNIST' if args.data else 'digits (scikit-learn, 8x8)'}: {len(train_set)} training and "
          f"{len(test_set)} held-out images, {args.mode} mode")
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} in {len(losses)} steps, {train_seconds:.1f} s "
          f"(first epoch {epoch_seconds[0]:.1f} s, including kernel compilation"
          + (f"; then {steps_per_epoch * (args.epochs - 1) / sum(epoch_seconds[1:]):.0f} steps/s)"
             if args.epochs > 1 else ")"))
    print(f"held-out accuracy {accuracy:.2%}; the model reloaded from {path} scores the same")
    return {"first_loss": losses[0], "last_loss": losses[-1], "losses": losses, "accuracy": accuracy,
            "reloaded_accuracy": reloaded_accuracy, "train_seconds": train_seconds,
            "epoch_seconds": epoch_seconds, "checkpoint": path}


if __name__ == "__main__":
    main()
