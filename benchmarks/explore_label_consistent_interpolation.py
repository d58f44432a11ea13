"""R6 exploration, part 2: Turner et al.'s other way of making poisons hard, latent interpolation.

Turner, Tsipras & Madry (2019), section 4.1, embed each target-class image in a GAN's latent
space and move it a fraction tau towards the latent code of an image of another class,
``z_tau = (1 - tau) z_target + tau z_other``; the decoded image keeps its label but carries
features of the other class, so a model finds it hard. There is no GAN of MNIST here, so this
script trains a small convolutional VAE on R6's 50,000 training digits (the attacker's copy of
the data) and uses its encoder's mean as the embedding. Variants, all in R6's setting (R1's CNN
10 epochs, 500 poisons of class 7, the four-corner checkerboard):

  vae recon tau0        the VAE's reconstruction of the 7 (tau 0): the control for the
                        decoder's blur, which a victim could learn as a feature of its own.
  vae decoded tau0.3    the decoded interpolation, 30% of the way to a random non-7.
  vae decoded tau0.5    the same, halfway.
  vae residual tau0.5   the original 7 plus the decoder's change, D(z_tau) - D(z_7), clipped to
                        [0, 1]: the interpolation's shift with the original's crisp strokes.
  vae nearest tau0.3/0.5
                        decoded, towards the non-7 whose latent code is nearest the 7's (a 1,
                        9 or 2 that looks most like this 7) instead of a random one: the
                        mildest change of look for the same tau.

Each row: ASR (non-7 test digits with the trigger -> 7), clean accuracy, the share of poisons
(trigger removed) that a clean reference CNN misclassifies (how hard they are), and the share of
them the victim calls 7 (near 1: fitted through content, not the trigger).

Run:  POISONLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/explore_label_consistent_interpolation.py
Variants can be named on the command line (by default all run); the JSON keeps those of
earlier calls. Writes benchmarks/results/explore_label_consistent_interpolation.json and 16 poisons per
variant as .npy under benchmarks/results/explore_label_consistent/.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from common import RESULTS, data_dir, environment, write_json
from explore_label_consistent import _remove_corners

LATENT = 16


class ConvVAE(nn.Module):
    """A two-convolution VAE for 1x28x28 images in [0, 1] (Bernoulli decoder)."""

    def __init__(self, latent: int = LATENT):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 64 * 7 * 7), nn.ReLU(),
                                 nn.Unflatten(1, (64, 7, 7)), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(32, 1, 4, 2, 1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z))


def train_vae(X: np.ndarray, *, epochs: int = 10, seed: int = 0) -> ConvVAE:
    """The evidence lower bound, Bernoulli likelihood summed over pixels, Adam 1e-3, batch 128."""
    torch.manual_seed(seed)
    vae = ConvVAE()
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(Xt), generator=g).split(128):
            x = Xt[idx]
            mu, logvar = vae.encode(x)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            rec = F.binary_cross_entropy_with_logits(vae.dec(z).view_as(x), x, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp())
            opt.zero_grad()
            ((rec + kl) / len(x)).backward()
            opt.step()
    return vae.eval()


@torch.no_grad()
def interpolate(vae: ConvVAE, X: np.ndarray, X_other: np.ndarray, tau: float, *, residual: bool) -> np.ndarray:
    """Turner et al.'s ``z_tau = (1 - tau) z(x) + tau z(x_other)``, decoded; with ``residual`` the
    decoder's change ``D(z_tau) - D(z(x))`` added to ``x`` instead."""
    z, _ = vae.encode(torch.as_tensor(X, dtype=torch.float32))
    zo, _ = vae.encode(torch.as_tensor(X_other, dtype=torch.float32))
    out = vae.decode((1 - tau) * z + tau * zo).view(X.shape)
    if residual:
        out = (torch.as_tensor(X, dtype=torch.float32) + out - vae.decode(z).view(X.shape)).clamp(0, 1)
    return out.numpy().astype(X.dtype)


@torch.no_grad()
def nearest_codes(vae: ConvVAE, X: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Index into ``pool`` of the latent mean nearest (Euclidean) each row of ``X``'s."""
    z, _ = vae.encode(torch.as_tensor(X, dtype=torch.float32))
    zp = torch.cat([vae.encode(torch.as_tensor(b, dtype=torch.float32))[0] for b in np.array_split(pool, 20)])
    return torch.cdist(z, zp).argmin(dim=1).numpy()


VARIANTS = {
    "vae recon tau0": {"tau": 0.0, "residual": False},
    "vae decoded tau0.3": {"tau": 0.3, "residual": False},
    "vae decoded tau0.5": {"tau": 0.5, "residual": False},
    "vae residual tau0.5": {"tau": 0.5, "residual": True},
    "vae nearest tau0.3": {"tau": 0.3, "residual": False, "partner": "nearest"},
    "vae nearest tau0.5": {"tau": 0.5, "residual": False, "partner": "nearest"},
}


def main() -> None:
    torch.set_num_threads(1)
    from poisonlab.attacks.data import LabelConsistent
    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.models import TorchClassifier
    from poisonlab.reproductions.common import mnist_splits, train_config, victim_run

    train, _, test = mnist_splits(data_dir())
    t0 = time.perf_counter()
    vae = train_vae(train.X, seed=0)
    out: dict = {"vae_seconds": time.perf_counter() - t0, "variants": {}}
    t0 = time.perf_counter()
    ref = TorchClassifier(model_factory("strip-mnist-cnn", "image"), config=train_config(1, 3)).fit(train.X, train.y)
    out["reference_clean_accuracy"] = float(np.mean(ref.predict(test.X) == test.y))
    out["reference_seconds"] = time.perf_counter() - t0
    others = np.flatnonzero(train.y != 7)

    class Interpolated(LabelConsistent):
        needs = ()

        def __init__(self, *, tau=0.0, residual=False, partner="random", **kw):
            super().__init__(**kw)
            self.tau, self.residual, self.partner = tau, residual, partner

        def _prepare(self, X, y, idx, rng, **_):
            if self.partner == "nearest":
                partner = X[others[nearest_codes(vae, X[idx], X[others])]]
            else:
                partner = X[rng.choice(others, len(idx), replace=False)]
            return interpolate(vae, X[idx], partner, self.tau, residual=self.residual)

    (RESULTS / "explore_label_consistent").mkdir(parents=True, exist_ok=True)
    for name in sys.argv[1:] or VARIANTS:
        t0 = time.perf_counter()
        atk = Interpolated(target=7, n_poison=500, random_state=0, pattern="checkerboard",
                           location="four-corners", **VARIANTS[name])
        run = victim_run(train, test, atk, 0, 10, None)
        res, victim = run["poison_result"], run["models"]["poisoned"]
        P = _remove_corners(res.X[res.indices])
        row = {"attack_success_rate": run["poisoned"]["attack_success_rate"],
               "clean_accuracy": run["poisoned"]["clean_accuracy"],
               "poisons_the_reference_misclassifies": float(np.mean(ref.predict(P) != 7)),
               "untriggered_poisons_the_victim_calls_7": float(np.mean(victim.predict(P) == 7)),
               "mean_l2_change": float(np.mean(np.linalg.norm((P - _remove_corners(train.X[res.indices]))
                                                              .reshape(len(P), -1), axis=1))),
               "seconds": time.perf_counter() - t0}
        np.save(RESULTS / "explore_label_consistent" / f"{name.replace(' ', '_')}.npy", res.X[res.indices][:16])
        out["variants"][name] = row
        print(name, row, flush=True)
    out["environment"] = environment()
    # variants run by an earlier call (named on its command line) are kept unless rerun here
    path = RESULTS / "explore_label_consistent_interpolation.json"
    if path.exists():
        out["variants"] = {**json.loads(path.read_text())["variants"], **out["variants"]}
    write_json(path.name, out)


if __name__ == "__main__":
    main()
