"""CT-like 3-D pelvic phantoms with a bladder to segment, per-scanner profiles.

Why phantoms: the demo and the tests need a bladder segmentation task that
runs anywhere in seconds, without patient data. Each phantom is drawn in
Hounsfield-like units (air −1000, fat ≈ −100, urine ≈ 10, soft tissue ≈ 45,
bone 300 to 1000): a body outline with a layer of subcutaneous fat, a pelvic
ring and femoral heads, a rectum, and a bladder whose size, shape and position
vary from patient to patient. A `ScannerProfile` then plays the hospital's
scanner: calibration drift, slice thickness and in-plane blur, noise, and the
intensity window used to normalise the volume to [0, 1] for the network. Each
partner gets its own profile, so the partners' data are not identically
distributed, as in a real coalition.

Axes are (D, H, W) = (z inferior→superior, y posterior→anterior, x left→right),
on a grid spanning [−1, 1] in each direction. Every function takes its own
`numpy.random.Generator`; sample j of a data set drawn with seed s uses the
generator seeded with (s, j), so a sample does not depend on how many others
were drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage  # type: ignore[import-untyped]

from tclearn.data.dataset import Dataset
from tclearn.data.segmentation import segmentation_dataset
from tclearn.data.split import CoalitionData
from tclearn.errors import DataError

__all__ = [
    "ScannerProfile",
    "SCANNER_PROFILES",
    "DEFAULT_PHANTOM_SHAPE",
    "partner_profile",
    "phantom_hu",
    "apply_scanner",
    "make_phantom",
    "phantom_dataset",
    "phantom_test_set",
    "HELD_OUT_STREAM",
    "phantom_coalition",
]

DEFAULT_PHANTOM_SHAPE = (32, 32, 32)

HU_AIR = -1000.0
HU_FAT = -100.0
HU_SOFT = 45.0
HU_URINE = 8.0
HU_MARROW = 300.0
HU_CORTEX = 900.0


@dataclass(frozen=True)
class ScannerProfile:
    """How one hospital's scanner and preprocessing turn anatomy into a volume."""

    name: str
    noise_hu: float = 15.0
    window_level: float = 40.0
    window_width: float = 400.0
    gain: float = 1.0
    offset_hu: float = 0.0
    blur_sigma: float = 0.0
    slice_factor: int = 1

    def __post_init__(self) -> None:
        if self.window_width <= 0 or self.noise_hu < 0 or self.blur_sigma < 0 or self.slice_factor < 1:
            raise DataError(f"scanner profile {self.name!r} has an out-of-range setting")


SCANNER_PROFILES: tuple[ScannerProfile, ...] = (
    ScannerProfile("sharp-soft-window", noise_hu=12.0, window_level=40.0, window_width=400.0),
    ScannerProfile("noisy-thick-slices", noise_hu=25.0, window_level=50.0, window_width=500.0, slice_factor=2),
    ScannerProfile("smooth-drifted", noise_hu=15.0, window_level=30.0, window_width=350.0,
                   gain=1.05, offset_hu=15.0, blur_sigma=0.8),
    ScannerProfile("wide-window", noise_hu=18.0, window_level=0.0, window_width=700.0, blur_sigma=0.5),
    ScannerProfile("low-dose", noise_hu=32.0, window_level=40.0, window_width=450.0, offset_hu=-10.0),
    ScannerProfile("narrow-window", noise_hu=10.0, window_level=35.0, window_width=300.0,
                   gain=0.95, blur_sigma=0.6, slice_factor=2),
)


def partner_profile(index: int) -> ScannerProfile:
    """The scanner of partner `index` (profiles are reused cyclically)."""
    return SCANNER_PROFILES[index % len(SCANNER_PROFILES)]


def _grid(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    return z, y, x


def _bladder(rng: np.random.Generator, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A deformed, rotated ellipsoid: empty-ish to full bladders, varied position."""
    cz, cy, cx = rng.uniform(-0.30, 0.15), rng.uniform(0.02, 0.18), rng.uniform(-0.10, 0.10)
    a, b, c = rng.uniform(0.20, 0.40), rng.uniform(0.16, 0.30), rng.uniform(0.18, 0.38)
    theta = rng.uniform(-0.4, 0.4)
    xr = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
    yr = -(x - cx) * np.sin(theta) + (y - cy) * np.cos(theta)
    zr = z - cz
    phi = np.arctan2(yr, xr)
    lobes = 1.0 + rng.uniform(0, 0.12) * np.cos(2 * phi + rng.uniform(0, 2 * np.pi)) \
        + rng.uniform(0, 0.08) * np.cos(3 * phi + rng.uniform(0, 2 * np.pi))
    # The dome is pressed flat by the bowel above it by a patient-specific amount.
    dome = np.where(zr > 0, rng.uniform(1.0, 1.6), 1.0)
    r = np.sqrt((xr / a) ** 2 + (yr / b) ** 2 + (dome * zr / c) ** 2)
    inside: np.ndarray = r <= lobes
    return inside


def _bones(rng: np.random.Generator, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cortex, marrow) masks of the femoral heads, the pelvic ring and the sacrum."""
    cortex = np.zeros(z.shape, dtype=bool)
    marrow = np.zeros(z.shape, dtype=bool)
    fz, fx, fr = rng.uniform(-0.75, -0.5), rng.uniform(0.55, 0.65), rng.uniform(0.14, 0.19)
    for side in (-1.0, 1.0):
        d = np.sqrt((z - fz) ** 2 + (y + 0.02) ** 2 + (x - side * fx) ** 2)
        marrow |= d <= fr * 0.75
        cortex |= (d <= fr) & (d > fr * 0.75)
    # Iliac wings: the lateral-posterior part of an elliptic ring in the upper slices.
    ry, rx = rng.uniform(0.42, 0.50), rng.uniform(0.60, 0.68)
    ring = np.sqrt((x / rx) ** 2 + ((y + 0.05) / ry) ** 2)
    cortex |= (np.abs(ring - 1.0) < 0.07) & (y < 0.10) & (z > rng.uniform(-0.35, -0.2))
    # Sacrum, posterior and high; pubic symphysis, anterior and low.
    sac = np.sqrt((x / 0.16) ** 2 + ((y + 0.52) / 0.10) ** 2)
    marrow |= (sac <= 1.0) & (z > -0.05)
    pub = np.sqrt((x / 0.22) ** 2 + ((y - 0.52) / 0.06) ** 2 + ((z + 0.62) / 0.12) ** 2)
    cortex |= pub <= 1.0
    return cortex, marrow & ~cortex


def phantom_hu(
    rng: np.random.Generator, shape: tuple[int, int, int] = DEFAULT_PHANTOM_SHAPE
) -> tuple[np.ndarray, np.ndarray]:
    """One patient's anatomy: (Hounsfield-like volume float32 [D,H,W], bladder mask uint8)."""
    if len(shape) != 3 or min(shape) < 8:
        raise DataError(f"a phantom needs a 3-D shape of at least 8 voxels per axis, got {shape}")
    z, y, x = _grid(tuple(int(s) for s in shape))  # type: ignore[arg-type]
    ax, ay = rng.uniform(0.82, 0.95), rng.uniform(0.60, 0.74)
    taper = 1.0 + 0.05 * z
    body = (x / (ax * taper)) ** 2 + (y / ay) ** 2 <= 1.0
    fat_t = rng.uniform(0.08, 0.18)
    inner = (x / (ax * taper * (1 - fat_t))) ** 2 + (y / (ay * (1 - fat_t))) ** 2 <= 1.0
    hu = np.full(z.shape, HU_AIR, dtype=np.float32)
    hu[body] = HU_FAT + rng.normal(0.0, 8.0)
    hu[inner] = HU_SOFT + rng.normal(0.0, 5.0)
    bladder = _bladder(rng, z, y, x) & inner
    # Perivesical fat: a shell around the bladder, thicker on a random side.
    grown = ndimage.binary_dilation(bladder, iterations=1)
    side = np.cos(np.arctan2(y, x) - rng.uniform(0, 2 * np.pi)) > rng.uniform(-0.6, 0.3)
    hu[grown & ~bladder & inner & side] = HU_FAT * rng.uniform(0.5, 0.9)
    rect = ((x - rng.uniform(-0.05, 0.05)) / 0.09) ** 2 + ((y + 0.30) / 0.08) ** 2 <= 1.0
    rect &= (z < 0.5) & ~bladder
    hu[rect & inner] = HU_AIR * 0.6 if rng.random() < 0.5 else 25.0
    cortex, marrow = _bones(rng, z, y, x)
    hu[marrow & body] = HU_MARROW
    hu[cortex & body] = HU_CORTEX
    bladder &= ~(cortex | marrow)
    hu[bladder] = HU_URINE + rng.normal(0.0, 4.0)
    return hu, bladder.astype(np.uint8)


def apply_scanner(hu: np.ndarray, profile: ScannerProfile, rng: np.random.Generator) -> np.ndarray:
    """The volume this scanner produces from `hu`, windowed to [0, 1] (float32)."""
    vol = hu.astype(np.float32) * profile.gain + profile.offset_hu
    if profile.slice_factor > 1:
        k = profile.slice_factor
        d = vol.shape[0] - vol.shape[0] % k
        thick = vol[:d].reshape(d // k, k, *vol.shape[1:]).mean(axis=1)
        vol = ndimage.zoom(thick, (vol.shape[0] / thick.shape[0], 1, 1), order=1, mode="nearest")
    if profile.blur_sigma > 0:
        vol = ndimage.gaussian_filter(vol, sigma=(0.0, profile.blur_sigma, profile.blur_sigma), mode="nearest")
    vol = vol + rng.normal(0.0, profile.noise_hu, size=vol.shape).astype(np.float32)
    lo = profile.window_level - profile.window_width / 2
    out: np.ndarray = np.clip((vol - lo) / profile.window_width, 0.0, 1.0).astype(np.float32)
    return out


def make_phantom(
    rng: np.random.Generator,
    shape: tuple[int, int, int] = DEFAULT_PHANTOM_SHAPE,
    profile: ScannerProfile = SCANNER_PROFILES[0],
) -> tuple[np.ndarray, np.ndarray]:
    """One scanned phantom: (volume float32 [D,H,W] in [0, 1], bladder mask uint8 [D,H,W])."""
    hu, mask = phantom_hu(rng, shape)
    return apply_scanner(hu, profile, rng), mask


def phantom_dataset(
    n: int,
    *,
    seed: int,
    shape: tuple[int, int, int] = DEFAULT_PHANTOM_SHAPE,
    profile: ScannerProfile = SCANNER_PROFILES[0],
    stream: int = 0,
) -> Dataset:
    """`n` phantoms as a two-channel segmentation data set (see `segmentation_dataset`).

    Sample j is drawn from the generator seeded with (seed, stream, j): two
    streams of one seed never share a patient.
    """
    if n < 1:
        raise DataError("a phantom data set needs at least one sample")
    vols, masks = [], []
    for j in range(n):
        v, m = make_phantom(np.random.default_rng([seed, stream, j]), shape, profile)
        vols.append(v)
        masks.append(m)
    return segmentation_dataset(vols, masks)


def phantom_coalition(
    n_partners: int,
    *,
    seed: int,
    per_partner: int | Sequence[int] = 96,
    test_size: int = 32,
    shape: tuple[int, int, int] = DEFAULT_PHANTOM_SHAPE,
) -> CoalitionData:
    """Phantom pools for `n_partners`, each scanned with its own profile, and a shared G.

    Partner k's patients come from stream k + 1 and its scanner
    `partner_profile(k)`; G's sample j comes from stream 0 and the scanner of
    partner j mod n, so G covers every hospital equally.
    """
    sizes = [per_partner] * n_partners if isinstance(per_partner, int) else [int(n) for n in per_partner]
    if n_partners < 1 or len(sizes) != n_partners or min(sizes) < 1 or test_size < 1:
        raise DataError("a phantom coalition needs partners, samples per partner and test samples")
    partners = tuple(
        phantom_dataset(sizes[k], seed=seed, shape=shape, profile=partner_profile(k), stream=k + 1)
        for k in range(n_partners)
    )
    return CoalitionData(partners=partners, test=phantom_test_set(test_size, seed=seed, n_partners=n_partners,
                                                                  shape=shape))


HELD_OUT_STREAM = 0x7E570000  # far above the partners' streams (1 … n)


def phantom_test_set(
    n: int,
    *,
    seed: int,
    n_partners: int,
    shape: tuple[int, int, int] = DEFAULT_PHANTOM_SHAPE,
    stream: int = 0,
) -> Dataset:
    """A test set covering every hospital: sample j from (seed, `stream`, j), scanned by partner j mod `n_partners`.

    Stream 0 is the coalition's G. `HELD_OUT_STREAM` draws a test set that
    neither the coalition nor a centralised reference ever sees: the
    coalition accepts increments on G, so G flatters it; benchmarks compare
    the two on this one.
    """
    if n < 1 or n_partners < 1:
        raise DataError("a phantom test set needs samples and partners")
    vols, masks = [], []
    for j in range(n):
        v, m = make_phantom(np.random.default_rng([seed, stream, j]), shape, partner_profile(j % n_partners))
        vols.append(v)
        masks.append(m)
    return segmentation_dataset(vols, masks)
