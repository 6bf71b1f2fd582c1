"""PyTorch's DCGAN tutorial, small: a ConvTranspose2d + BatchNorm2d + ReLU generator and a Conv2d +
LeakyReLU(inplace) + BatchNorm2d discriminator initialised by ``weights_init`` through
``model.apply``, ``BCELoss``, two Adam optimizers, ``fake.detach()`` for the discriminator's step
and ``label.fill_`` between the real and fake halves, as the tutorial's loop writes them."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn

NZ, NGF, NDF, NC = 8, 4, 4, 1


def program(torch, init=None, compiled=False, steps=4):
    nn = torch.nn

    def weights_init(m):
        classname = m.__class__.__name__
        if classname.find('Conv') != -1:
            nn.init.normal_(m.weight.data, 0.0, 0.02)
        elif classname.find('BatchNorm') != -1:
            nn.init.normal_(m.weight.data, 1.0, 0.02)
            nn.init.constant_(m.bias.data, 0)

    class Generator(nn.Module):
        def __init__(self, ngpu=1):
            super(Generator, self).__init__()
            self.ngpu = ngpu
            self.main = nn.Sequential(
                nn.ConvTranspose2d(NZ, NGF * 4, 4, 1, 0, bias=False),
                nn.BatchNorm2d(NGF * 4),
                nn.ReLU(True),
                nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NGF * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(NGF * 2, NC, 4, 2, 1, bias=False),
                nn.Tanh()
            )

        def forward(self, input):
            return self.main(input)

    class Discriminator(nn.Module):
        def __init__(self, ngpu=1):
            super(Discriminator, self).__init__()
            self.ngpu = ngpu
            self.main = nn.Sequential(
                nn.Conv2d(NC, NDF, 4, 2, 1, bias=False),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NDF * 2),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF * 2, 1, 4, 1, 0, bias=False),
                nn.Sigmoid()
            )

        def forward(self, input):
            return self.main(input).view(-1, 1).squeeze(1)

    torch.manual_seed(0)
    device = torch.device("cpu")
    netG = Generator().to(device)
    netG.apply(weights_init)
    netD = Discriminator().to(device)
    netD.apply(weights_init)
    both = nn.ModuleDict({"G": netG, "D": netD})
    if init:
        init(both)
    criterion = nn.BCELoss()
    rng = np.random.default_rng(0)
    fixed_noise = torch.tensor(rng.standard_normal((4, NZ, 1, 1), dtype=np.float32))
    real_label, fake_label = 1., 0.
    optimizerD = torch.optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))

    def train_step(real_cpu, noise):
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        b_size = real_cpu.size(0)
        label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
        output = netD(real_cpu).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean()
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean()
        errD = errD_real + errD_fake
        optimizerD.step()
        # (2) Update G: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean()
        optimizerG.step()
        return errD, errG, D_x, D_G_z1, D_G_z2

    step = tracenn.compile(train_step) if compiled else train_step
    G_losses, D_losses, stats = [], [], []
    for i in range(steps):
        real = torch.tensor(rng.uniform(-1, 1, (6, NC, 16, 16)).astype(np.float32))
        noise = torch.tensor(rng.standard_normal((6, NZ, 1, 1), dtype=np.float32))
        errD, errG, D_x, D_G_z1, D_G_z2 = step(real, noise)
        G_losses.append(errG.item())
        D_losses.append(errD.item())
        stats.append([D_x.item(), D_G_z1.item(), D_G_z2.item()])
    with torch.no_grad():
        fake = netG(fixed_noise).detach().cpu()
    return {"G_losses": G_losses, "D_losses": D_losses, "stats": stats, "fake": fake.numpy(), "model": both}


@pytest.mark.slow
def test_trains_eager_equal_to_compiled():
    eager = program(tracenn)
    assert eager["fake"].shape == (4, NC, 16, 16) and np.abs(eager["fake"]).max() <= 1
    compiled = program(tracenn, compiled=True)
    for key in ("G_losses", "D_losses", "stats", "fake"):
        np.testing.assert_allclose(compiled[key], eager[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.slow
def test_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program))


@pytest.mark.slow
def test_compiled_step_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program, compiled=True))
