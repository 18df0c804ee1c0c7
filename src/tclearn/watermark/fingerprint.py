"""Keyed spread-spectrum fingerprints in a model's weights, and their non-blind detection.

Theory of operation. A download gets a fresh secret key. The key seeds, for
every marked tensor (float, at least 2-D, at least `MIN_MARKED_NUMEL` values:
the convolution and linear weights), a pseudo-random ±1 code c of the
tensor's shape; the copy handed out is ``w + alpha * std(w) * c``
(spread-spectrum watermarking, Cox et al., IEEE TIP 1997, applied to weights
as Uchida et al., ICMR 2017, do with a projection; one key per recipient as in
FedTracker, Shao et al. 2023). The perturbation is a tiny fraction of each
layer's spread, spread over every weight, so the model barely changes.

Detection is non-blind: the supervisor keeps the clean version, so it looks
at the residual r = suspect − clean. Fine-tuning, noise and quantisation add
to r a drift that does not depend on the key; pruning zeroes weights, and a
zero weight carries no information, so those positions are left out. The
statistic for a key is

    z = sum_i a_i c_i / sqrt(sum_i a_i^2),   a_i = g_t * r_i   (tensor t of i)

with g_t = std_t / mean(r_t^2) (weights the tensors by signal over drift).
For a key that did not mark the suspect, c is a Rademacher vector independent
of a, so by Hoeffding's inequality P(z >= x) <= exp(-x^2 / 2) whatever the
suspect is (a rigorous bound, not a normal approximation). Testing K keys at
threshold ``sqrt(2 ln(K / p))`` accuses an innocent key with probability at
most p (union bound). Two members who average their copies leave each code
at half strength: both stay detectable while the mark is strong enough.

Nothing here reads the clock or draws an unseeded random number: keys come in.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from tclearn.learning.errors import InvalidModelError
from tclearn.learning.serialize import State, canonical_state

__all__ = ["SCHEME", "DEFAULT_ALPHA", "DEFAULT_FALSE_ACCUSATION", "MIN_MARKED_NUMEL", "KEY_BYTES",
           "key_id", "marked_names", "code_for", "embed", "threshold_for", "false_accusation_bound", "Detector"]

SCHEME = "tclearn-ss/1"
DEFAULT_ALPHA = 0.03  # mark amplitude, in units of each tensor's standard deviation (see bench/watermark.py)
DEFAULT_FALSE_ACCUSATION = 1e-6  # probability of accusing anyone, over all keys tested
MIN_MARKED_NUMEL = 64
KEY_BYTES = 32
_CODE_TAG = b"tclearn-watermark-code/1\x00"
_ID_TAG = b"tclearn-watermark-key-id/1\x00"


def key_id(key: bytes) -> str:
    """Public name of a secret key (a hash: it reveals nothing of the code)."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a watermark key is {KEY_BYTES} bytes")
    return hashlib.sha256(_ID_TAG + key).hexdigest()


def marked_names(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The tensors a fingerprint lives in: float weights of at least 2 dimensions and `MIN_MARKED_NUMEL` values."""
    return [n for n in sorted(state)
            if state[n].is_floating_point() and state[n].ndim >= 2 and state[n].numel() >= MIN_MARKED_NUMEL]


def code_for(key: bytes, name: str, numel: int) -> np.ndarray:
    """The ±1 code (int8, flat) that `key` gives tensor `name`."""
    digest = hashlib.sha256(_CODE_TAG + key + name.encode()).digest()
    rng = np.random.default_rng(list(np.frombuffer(digest, dtype=np.uint32)))
    return (rng.integers(0, 2, size=numel, dtype=np.int8) * 2 - 1).astype(np.int8)


def _scale(t: torch.Tensor) -> float:
    return float(t.to(torch.float64).std()) if t.numel() > 1 else 0.0


def embed(state: Mapping[str, torch.Tensor], key: bytes, alpha: float = DEFAULT_ALPHA) -> State:
    """A canonical copy of `state` carrying `key`'s fingerprint."""
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie in (0, 1)")
    out = canonical_state(state)
    for name in marked_names(out):
        t = out[name]
        code = torch.from_numpy(code_for(key, name, t.numel()).astype(np.float32)).view(t.shape)
        out[name] = (t + float(alpha * _scale(t)) * code).contiguous()
    return out


def threshold_for(n_keys: int, p_false: float = DEFAULT_FALSE_ACCUSATION) -> float:
    """The score above which a key is accused, for at most `p_false` chance of accusing any of `n_keys` innocents."""
    if n_keys < 1 or not 0.0 < p_false < 1.0:
        raise ValueError("need n_keys >= 1 and p_false in (0, 1)")
    return math.sqrt(2.0 * math.log(n_keys / p_false))


def false_accusation_bound(z: float, n_keys: int) -> float:
    """Upper bound on the chance that an innocent key among `n_keys` scores `z` or more (Hoeffding + union)."""
    if z <= 0:
        return 1.0
    return min(1.0, n_keys * math.exp(-0.5 * z * z))


@dataclass(frozen=True)
class _Marked:
    name: str
    reference: torch.Tensor  # flat, float32
    scale: float
    codes: torch.Tensor  # [K, numel] float32 (±1)


class Detector:
    """The clean reference of one version and the keys of its downloads, ready to score suspects."""

    def __init__(self, reference: Mapping[str, torch.Tensor], keys: Sequence[bytes]) -> None:
        ref = canonical_state(reference)
        self.shapes = {n: tuple(t.shape) for n, t in ref.items()}
        self.n_keys = len(keys)
        self._marked = []
        for name in marked_names(ref):
            flat = ref[name].reshape(-1)
            codes = np.stack([code_for(k, name, flat.numel()) for k in keys]) if keys else \
                np.zeros((0, flat.numel()), np.int8)
            self._marked.append(_Marked(name, flat, _scale(ref[name]), torch.from_numpy(codes.astype(np.float32))))

    def fits(self, suspect: Mapping[str, torch.Tensor]) -> bool:
        """Whether `suspect` has this reference's tensors and shapes (else it cannot be one of its copies)."""
        return set(suspect) == set(self.shapes) and all(tuple(suspect[n].shape) == s for n, s in self.shapes.items())

    def scores(self, suspect: Mapping[str, torch.Tensor]) -> np.ndarray:
        """z for each key (float64 [K]); zeros when the suspect is the clean reference itself."""
        if not self.fits(suspect):
            raise InvalidModelError("the suspect does not have this model's tensors and shapes")
        num = torch.zeros(self.n_keys, dtype=torch.float64)
        den = 0.0
        for m in self._marked:
            s = suspect[m.name].detach().to(torch.float32).reshape(-1)
            keep = s != 0  # a pruned weight carries no information
            if not bool(torch.isfinite(s[keep]).all()):
                raise InvalidModelError(f"the suspect's {m.name} holds NaN or infinite values")
            r = (s - m.reference)[keep]
            power = float((r.to(torch.float64) ** 2).sum())
            if r.numel() == 0 or power == 0.0:
                continue
            gain = m.scale / (power / r.numel())
            num += gain * (m.codes[:, keep] @ r).to(torch.float64)
            den += gain * gain * power
        if den == 0.0:
            return np.zeros(self.n_keys)
        return (num / math.sqrt(den)).numpy()
