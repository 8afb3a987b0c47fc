"""The phantom's simulator: B-mode-like apical four-chamber frames with known anatomy and phase.

This module draws frames in memory; :mod:`echolib.data.phantom` writes a
dataset of them (frames, LV masks, manifest) through the shared dataset writer.

Why a phantom: the real EchoNet-Dynamic frames are licensed and absent on a fresh
machine, yet every model, metric and notebook must run (and be tested) end to end.
The phantom also knows what real data never states exactly: the cardiac phase
of each frame and the left-ventricle (LV) outline, so preprocessing heuristics
can be scored against the truth and Pix2Pix can be conditioned on LV masks.

How a frame is made (mirroring a scanner's pipeline rather than painting pixels):

1. *Anatomy* as a label map drawn with polygons (so edges are sub-pixel exact
   and drawing is cheap): four chambers as (half-)ellipses with wavy outlines, in
   a per-heart frame whose long axis points away from the transducer; myocardium
   around the ventricles plus the septum, thin atrial walls, mitral and tricuspid
   leaflets and annulus, a bright pericardium, chest-wall bands. Labels become
   scatterer amplitudes, modulated by a smooth log-normal tissue texture.
2. *Speckle*: circular complex Gaussian scatterers weighted by that amplitude and
   convolved with a Gaussian point-spread function, narrow along the beam and
   wide across it, rotated with the beam as the fan opens. The envelope of a sum
   of many random phasors is Rayleigh distributed (fully developed speckle) and
   spatially correlated over the PSF.
3. *Display*: net depth attenuation after time-gain compensation, lateral
   fall-off, per-heart gain and a log compression to 8 bits with a per-heart
   dynamic range; a slight blur standing in for EchoNet's downsampling of finer
   scans; everything outside the fan (apex at the top) is exactly 0. Finally the
   bilateral filter the study applied to the real frames (d=5, sigmaColor=15,
   sigmaSpace=15).

The cardiac phase runs from 0 (end-diastole, ED) to 1 (end-systole, ES): the base
descends towards the fixed apex, ventricles narrow, walls and septum thicken,
atria fill; the atrioventricular valves open in diastole. Every heart is drawn
from a ``numpy`` Generator seeded by ``(seed, heart)``, so the same seed gives
byte-identical frames whatever the batching or worker count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np
import scipy.fft

FRAMES_PER_HEART = 4  # f0 first, f1 ES, f2 ED, f3 last: the study's four frames per video
SYSTOLE = 0.35  # fraction of the beat from ED to ES


# -- anatomy and acquisition of one heart ---------------------------------------
@dataclass(frozen=True, eq=False)
class Heart:
    """Anatomy and scanner settings of one heart; lengths are fractions of the image side.

    Heart coordinates: ``u`` runs from the LV apex towards the base along the long
    axis, ``w`` across it towards the LV's lateral wall (image right, as in EchoNet).
    """

    apex_x: float = 0.535  # transducer (fan apex) position, x
    apex_y: float = 0.045  # transducer position, y (near the top)
    half_angle: float = 0.77  # half opening angle of the fan, radians
    lv_apex_x: float = 0.57  # LV epicardial apex, x
    lv_apex_y: float = 0.1  # LV epicardial apex, y
    tilt: float = 0.05  # long-axis angle from vertical, radians (positive: base swings left)
    lv_length: float = 0.56  # apex to mitral annulus at ED
    lv_width: float = 0.16  # LV cavity half-width at ED
    rv_width: float = 0.11  # RV cavity half-width at ED
    rv_length: float = 0.8  # RV cavity length as a fraction of the LV's
    wall: float = 0.032  # LV wall thickness at ED
    septum: float = 0.035  # septum thickness at ED
    la_length: float = 0.12  # LA half-length along the axis at ED
    la_width: float = 0.13  # LA half-width
    ra_length: float = 0.11  # RA half-length
    ra_width: float = 0.11  # RA half-width
    shortening: float = 0.28  # fractional shortening of the LV half-width at ES
    mapse: float = 0.11  # base descent towards the apex at ES, fraction of LV length
    leaflet: float = 0.8  # leaflet length as a fraction of the valve's half-width
    myo: float = 0.2  # myocardial scatterer amplitude
    septum_gain: float = 1.8  # septal amplitude relative to the walls
    blood: float = 0.015  # blood amplitude
    tissue: float = 0.1  # surrounding tissue amplitude
    pericardium: float = 1.5  # pericardial amplitude
    floor_curve: float = 0.8  # how steeply the pericardium beneath the atria rises at the sides
    floor_thickness: float = 0.05  # thickness of that band
    valve: float = 0.4  # leaflet amplitude
    clutter: float = 0.08  # near-field haze inside the cavities
    chest_wall: float = 0.06  # depth of the bright chest-wall band
    attenuation: float = 0.4  # net attenuation after time-gain compensation, nepers per image side
    lateral_falloff: float = 0.5  # brightness loss at the fan edges
    gain_db: float = -12.0  # gain before log compression
    dynamic_range_db: float = 45.0  # dB mapped onto 0..255
    psf_axial: float = 0.6  # PSF sigma along the beam, pixels at 128x128
    psf_lateral: float = 0.7  # PSF sigma across the beam near the transducer, pixels at 128x128; x1.8 at the far edge
    texture: tuple[float, ...] = ()  # random Fourier field of the log-amplitude: (fx, fy, phase, amp) x 8
    wobble: tuple[float, ...] = ()  # random Fourier field that bends chamber outlines: (fx, fy, phase, amp) x 4


def sample_heart(rng: np.random.Generator) -> Heart:
    """Draw one plausible heart and scanner setting (anatomical and acquisition variety)."""
    u = rng.uniform
    apex_x = u(0.50, 0.57)
    lv_width = u(0.125, 0.19)
    myo = u(0.1, 0.3)
    return Heart(
        apex_x=apex_x,
        apex_y=u(0.03, 0.06),
        half_angle=math.radians(u(40.0, 47.0)),
        lv_apex_x=apex_x + u(0.0, 0.08),
        lv_apex_y=u(0.06, 0.14),
        tilt=rng.normal(0.06, 0.08),
        lv_length=u(0.5, 0.62),
        lv_width=lv_width,
        rv_width=lv_width * u(0.55, 0.85),
        rv_length=u(0.68, 0.88),
        wall=u(0.018, 0.035),
        septum=u(0.02, 0.045),
        la_length=u(0.09, 0.15),
        la_width=u(0.10, 0.15),
        ra_length=u(0.08, 0.14),
        ra_width=u(0.08, 0.13),
        shortening=u(0.15, 0.38),
        mapse=u(0.07, 0.15),
        leaflet=u(0.65, 0.95),
        myo=myo,
        septum_gain=u(1.5, 3.5),
        blood=u(0.006, 0.025),
        tissue=myo * u(0.3, 0.9),
        pericardium=u(1.0, 2.5),
        floor_curve=u(0.3, 2.0),
        floor_thickness=u(0.03, 0.08),
        valve=u(0.25, 0.6),
        clutter=u(0.0, 0.1),
        chest_wall=u(0.04, 0.09),
        attenuation=u(0.0, 0.8),
        lateral_falloff=u(0.3, 0.8),
        gain_db=u(-17.0, -7.0),
        dynamic_range_db=u(40.0, 52.0),
        psf_axial=u(0.45, 0.7),
        psf_lateral=u(0.5, 0.9),
        texture=_waves(rng, 8, 5.0, 0.55),
        wobble=_waves(rng, 4, 2.5, 0.12),
    )


def _waves(rng: np.random.Generator, k: int, freq: float, amp: float) -> tuple[float, ...]:
    """``k`` random plane waves (cycles per image side ~ N(0, freq)) whose sum has std ``amp``."""
    f = rng.normal(0.0, freq, (k, 2))
    ph = rng.uniform(0.0, 2.0 * np.pi, (k, 1))
    a = np.full((k, 1), amp * math.sqrt(2.0 / k))
    return tuple(np.concatenate([f, ph, a], axis=1).ravel().tolist())


def _field(waves: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Wave sums at image points; ``waves`` is ``[B, 4k]`` (one row per heart, broadcast over x and y's other axes)."""
    w = np.asarray(waves, np.float32)
    w = w.reshape(w.shape[0], -1, 4)
    ndim = max(np.ndim(x), np.ndim(y))
    out = np.zeros((), np.float32)
    for k in range(w.shape[1]):
        fx, fy, ph, a = (w[:, k, j].reshape((-1,) + (1,) * (ndim - 1)) for j in range(4))
        out = out + a * np.cos(2.0 * np.pi * (fx * x + fy * y) + ph)
    return out


class _Batch:
    """Heart fields stacked for broadcasting: scalars as ``[B, 1, ...]`` (``ndim`` axes), wave tuples as ``[B, 4k]``."""

    def __init__(self, hearts: Sequence[Heart], ndim: int = 3) -> None:
        for f in fields(Heart):
            values = np.asarray([getattr(h, f.name) for h in hearts], np.float32)
            setattr(self, f.name, values if values.ndim == 2 else values.reshape((-1,) + (1,) * (ndim - 1)))

    def __getattr__(self, name: str) -> np.ndarray:
        """Only reached for names that are not fields of :class:`Heart` (and tells a type checker what fields are)."""
        raise AttributeError(name)


# -- the cardiac cycle ------------------------------------------------------------
def cycle_phase(t: np.ndarray | float) -> np.ndarray:
    """Phase (0 = ED, 1 = ES) at time ``t`` in beats since an ED.

    Systole is a smooth contraction over the first :data:`SYSTOLE` of the beat;
    diastole relaxes fast first (early filling) and slowly later (diastasis, atrial kick).
    """
    s = np.round(np.mod(np.asarray(t, dtype=np.float64), 1.0), 12)  # beat 2.35 is exactly ES, not 1 ulp past it
    x = np.clip((s - SYSTOLE) / (1.0 - SYSTOLE), 0.0, 1.0)
    systole = 0.5 - 0.5 * np.cos(np.pi * s / SYSTOLE)
    diastole = 0.5 + 0.5 * np.cos(np.pi * np.sqrt(x))
    return np.where(s < SYSTOLE, systole, diastole)


def valve_opening(t: np.ndarray | float) -> np.ndarray:
    """How far the atrioventricular valves are open (0 closed, 1 open) at time ``t`` in beats.

    Closed through systole and isovolumic relaxation; open through filling; closing at ED.
    """
    s = np.mod(np.asarray(t, dtype=np.float64), 1.0)
    x = np.clip((s - SYSTOLE - 0.08) / (1.0 - SYSTOLE - 0.12), 0.0, 1.0)
    return np.sin(np.pi * x) ** 0.5


def phase_label(phase: float) -> str:
    """ED/ES for frames at the extremes of the cycle, ``other`` in between."""
    if phase <= 0.02:
        return "ED"
    if phase >= 0.98:
        return "ES"
    return "other"


# -- rendering ----------------------------------------------------------------------
@dataclass(frozen=True)
class Rendered:
    frames: np.ndarray  # uint8 [B, H, W]
    lv_masks: np.ndarray  # bool [B, H, W]


def draw_noise(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Circular complex Gaussian scatterers of unit power, one ``[size, size]`` field per frame (``complex64``)."""
    pairs = rng.standard_normal((n, size, size, 2), dtype=np.float32)
    pairs *= np.float32(math.sqrt(0.5))
    return pairs.view(np.complex64)[..., 0]


def render(
    hearts: Sequence[Heart],
    phases: Sequence[float] | np.ndarray,
    valves: Sequence[float] | np.ndarray,
    noise: np.ndarray,
    size: int = 128,
    *,
    smooth: bool = True,
) -> Rendered:
    """Render one frame per ``(heart, phase, valve opening, noise)``, vectorised over the batch.

    ``noise`` comes from :func:`draw_noise`; passing it in (rather than a
    Generator) keeps each heart's random stream independent of how frames are
    batched. Frames of the same :class:`Heart` object share what does not move
    (fan, texture, depth gain), computed once.
    """
    b = len(hearts)
    if not (len(phases) == len(valves) == len(noise) == b):
        raise ValueError("render: hearts, phases, valves and noise must have the same length")
    if noise.shape[1:] != (size, size):
        raise ValueError(f"render: noise is {noise.shape[1:]}, expected ({size}, {size})")
    slot: dict[int, int] = {}
    which = np.array([slot.setdefault(id(h), len(slot)) for h in hearts])
    distinct = list({id(h): h for h in hearts}.values())  # insertion order matches ``slot``
    q = _Batch(distinct)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = grid[None, None, :], grid[None, :, None]
    dx, dy = x - q.apex_x, y - q.apex_y
    r, theta = np.hypot(dx, dy), np.arctan2(dx, dy)  # depth and beam angle of every pixel
    fan = _fan(q, x, y, theta)
    texture = np.exp(_field(q.texture, x, y))
    gain = np.exp(-q.attenuation * r) * (1.0 - q.lateral_falloff * np.minimum(np.abs(theta / q.half_angle), 1.0) ** 2)
    chest = np.exp(-(((r - q.chest_wall) / 0.012) ** 2)) + 0.6 * np.exp(-(((r - 1.8 * q.chest_wall) / 0.01) ** 2))
    haze = q.clutter * np.exp(-r / 0.15)

    p = _Batch(hearts)
    labels, lv = _draw_anatomy(_Batch(hearts, ndim=2), np.asarray(phases, np.float32), np.asarray(valves, np.float32), size)
    amp = _amplitude(p, labels, texture[which], 0.4 * chest[which], haze[which]) * gain[which]
    scale = size / 128.0  # PSF sigmas are given in pixels at 128x128
    envelope = speckle(amp, noise, p.psf_axial * scale, p.psf_lateral * scale, theta[which], p.half_angle, r[which])
    db = 20.0 * np.log10(envelope + 1e-6)

    frames = np.empty((b, size, size), np.uint8)
    for i, heart in enumerate(hearts):
        inside = fan[which[i]]
        img = np.clip((db[i] + (heart.gain_db + heart.dynamic_range_db)) * (255.0 / heart.dynamic_range_db), 0, 255)
        # EchoNet's videos were downsampled from finer scans: each pixel averages a few speckle cells
        img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.6 * scale)
        img = np.where(inside, np.rint(img), 0).astype(np.uint8)
        if smooth:  # the study's bilateral filter, applied to the real frames too
            img = cv2.bilateralFilter(img, 5, 15, 15)
            img[~inside] = 0
        frames[i] = img
    return Rendered(frames, lv & fan[which])


def speckle(amplitude, noise, sigma_axial, sigma_lateral, beam_angle=None, half_angle=None, depth=None) -> np.ndarray:
    """Envelope ``|PSF * (amplitude * noise)|``: Rayleigh where the amplitude is uniform.

    The PSF is a Gaussian, ``sigma_axial`` along the beam and ``sigma_lateral``
    across it (pixels; scalars or ``[B, 1, 1]``), applied in the Fourier domain and
    normalised to unit energy so the envelope's mean power equals the local
    amplitude squared. With ``beam_angle`` and ``half_angle`` the PSF turns with
    the beam (copies rotated to ``0`` and ``+-2/3 half_angle``); with ``depth``
    (fractions of the image side) the beam widens with depth, to 1.8 times
    ``sigma_lateral`` at depth 1. Copies are blended linearly per pixel; a linear
    blend of complex Gaussian fields is complex Gaussian, so the envelope stays Rayleigh.
    """
    ny, nx = noise.shape[-2:]
    sa, sl = np.asarray(sigma_axial, np.float32), np.asarray(sigma_lateral, np.float32)
    spectrum = scipy.fft.fft2(np.asarray(amplitude, np.float32) * noise, axes=(-2, -1))

    def blurred(angle, lateral) -> np.ndarray:
        return scipy.fft.ifft2(spectrum * _psf_spectrum(sa, lateral, angle, ny, nx), axes=(-2, -1))

    angles: list[tuple[Any, Any]]
    widths: list[tuple[Any, Any]]
    if beam_angle is None:
        angles = [(np.float32(0.0), np.float32(1.0))]
    else:
        steer = np.asarray(half_angle, np.float32) * np.float32(2.0 / 3.0)
        t = np.clip(np.asarray(beam_angle, np.float32) / steer, -1.0, 1.0)  # -1: left band, 0: centre, +1: right
        angles = [(np.zeros_like(steer), 1.0 - np.abs(t)), (-steer, np.maximum(-t, 0.0)), (steer, np.maximum(t, 0.0))]
    if depth is None:
        widths = [(sl, np.float32(1.0))]
    else:
        d = np.clip(np.asarray(depth, np.float32), 0.0, 1.0)
        widths = [(sl, 1.0 - d), (sl * np.float32(1.8), d)]
    out = sum(blurred(angle, lateral) * (wa * wd) for angle, wa in angles for lateral, wd in widths)
    return np.abs(out).astype(np.float32)


def _psf_spectrum(axial, lateral, angle, ny: int, nx: int) -> np.ndarray:
    """Spectra of unit-energy Gaussian PSFs, one per frame (``[B, ny, nx]`` or ``[1, ny, nx]``).

    Kernels are sampled in space, not in frequency (a Gaussian cut off at Nyquist
    rings along the image axes), and transformed once per distinct
    ``(axial, lateral, angle)``: frames of one heart share them.
    """
    params = np.stack(np.broadcast_arrays(*(np.asarray(v, np.float32).reshape(-1) for v in (axial, lateral, angle))), 1)
    distinct, index = np.unique(params, axis=0, return_inverse=True)
    sa, sl, ang = (distinct[:, j, None, None] for j in range(3))
    reach = 5  # kernel half-width in pixels: > 2.5 sigma for every PSF the phantom draws
    oy, ox = np.mgrid[-reach : reach + 1, -reach : reach + 1].astype(np.float32)
    c, s = np.cos(ang), np.sin(ang)
    along, across = ox * s + oy * c, ox * c - oy * s
    kernel = np.exp(-0.5 * ((along / sa) ** 2 + (across / sl) ** 2))
    kernel /= np.sqrt((kernel**2).sum(axis=(-2, -1), keepdims=True))
    placed = np.zeros((len(distinct), ny, nx), np.float32)
    placed[:, oy.astype(int) % ny, ox.astype(int) % nx] = kernel
    return scipy.fft.fft2(placed, axes=(-2, -1))[index.reshape(-1)]


def fan_mask(size: int, heart: Heart | None = None) -> np.ndarray:
    """The imaged sector of ``heart`` (default geometry without one) as a ``[size, size]`` bool map."""
    q = _Batch([heart or Heart()])
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = grid[None, None, :], grid[None, :, None]
    return _fan(q, x, y, np.arctan2(x - q.apex_x, y - q.apex_y))[0]


def _fan(q, x, y, theta) -> np.ndarray:
    """Within the fan's opening angle and above a flattened far edge.

    The far edge is a half-ellipse like the one in the study's sector mask, so
    the black corners of phantom frames look like those of the real frames.
    """
    far = (y < 0.70) | (((x - 0.495) / 0.63) ** 2 + ((y - 0.70) / 0.36) ** 2 < 1.0)
    return (np.abs(theta) < q.half_angle) & far & (y > q.apex_y)


# -- anatomy as a label map --------------------------------------------------------------
# labels in painting order; each maps to an amplitude and to how strongly the tissue texture modulates it
TISSUE, PERI_LV, PERI_BOTTOM, MYO, SEPTUM, ATRIAL_WALL, BLOOD, PAPILLARY, VALVE, RING = range(10)
_TEXTURE_POWER = np.array([1.0, 1.0, 1.0, 0.8, 1.0, 0.5, 0.0, 0.8, 0.0, 0.0], np.float32)


def _amplitude(p, labels, texture, chest, haze) -> np.ndarray:
    """Scatterer amplitude per pixel from the label map (muscle is more homogeneous than other tissue)."""
    table = np.stack(
        [p.tissue, 0.3 * p.pericardium, p.pericardium, p.myo, p.myo * p.septum_gain, 0.7 * p.myo, p.blood,
         p.myo, p.valve, 2.0 * p.valve],
        axis=1,
    ).reshape(len(labels), -1)
    amp = np.take_along_axis(table, labels.reshape(len(labels), -1), axis=1).reshape(labels.shape)
    power = _TEXTURE_POWER[labels]
    amp *= texture**power
    amp += np.where(labels == TISSUE, chest * texture, 0.0) + np.where(labels == BLOOD, haze, 0.0)
    return amp.astype(np.float32)


def _geometry(p, phase):
    """Phase-dependent sizes (``[B, 1]``): the base descends towards the fixed apex, the LV
    narrows with its centre line drifting towards the septum (so the septum thickens less
    than the lateral wall), walls thicken, the RV narrows less, the atria fill."""
    phase = phase.reshape(-1, 1)
    g = {}
    g["base"] = base = p.lv_length * (1.0 - p.mapse * phase)
    g["thick"] = thick = p.wall * (1.0 + 0.45 * phase)
    g["lv_b"] = lv_b = p.lv_width * (1.0 - p.shortening * phase)
    g["lv_c"] = lv_c = -0.5 * (p.lv_width - lv_b)
    g["lv_a"] = base - thick
    g["rv_b"] = rv_b = p.rv_width * (1.0 - 0.6 * p.shortening * phase)
    g["sept_edge"] = sept_edge = -(p.lv_width + p.septum)  # RV side of the septum
    g["rv_c"], g["rv_a"], g["rv_t"] = sept_edge - rv_b, p.rv_length * base, 0.6 * thick
    fill = 1.0 + 0.15 * phase
    g["la_a"], g["la_b"] = la_a, la_b = p.la_length * fill, p.la_width * fill
    g["ra_a"], g["ra_b"] = ra_a, ra_b = p.ra_length * fill, p.ra_width * fill
    g["la_c"] = la_c = 0.3 * lv_c
    g["ra_c"] = la_c - la_b - 0.35 * p.septum - ra_b
    g["la_u"], g["ra_u"] = base + 0.6 * la_a, base + 0.6 * ra_a
    return g


def _draw_anatomy(p, phase, valve, size):
    """Paint the label map and the LV cavity mask of every frame with sub-pixel polygons."""
    b = len(phase)
    g = _geometry(p, phase)
    base, thick = g["base"], g["thick"]
    half = np.linspace(0.5 * np.pi, 1.5 * np.pi, 41, dtype=np.float32)[None, :]  # apical half of an ellipse
    full = np.linspace(0.0, 2.0 * np.pi, 48, endpoint=False, dtype=np.float32)[None, :]

    def ellipse(cu, cw, a, b_, t, *, wobble=True, u_min=None, w_min=None):
        u, w = cu + a * np.cos(t), cw + b_ * np.sin(t)
        if wobble:  # bend the outline radially by the heart's smooth random field
            x, y = _to_image(p, u, w)
            k = np.sqrt(np.maximum(1.0 + _field(p.wobble, x, y), 0.3))
            u, w = cu + (u - cu) * k, cw + (w - cw) * k
        if u_min is not None:
            u = np.maximum(u, u_min)
        if w_min is not None:
            w = np.maximum(w, w_min)
        return u, w

    def quad(u0, u1, w0, w1):
        u0, u1, w0, w1 = (np.broadcast_to(v, (b, 1)) for v in (u0, u1, w0, w1))
        return np.concatenate([u0, u0, u1, u1], 1), np.concatenate([w0, w1, w1, w0], 1)

    lv_c, lv_b, rv_c, rv_b = g["lv_c"], g["lv_b"], g["rv_c"], g["rv_b"]
    la_c, la_b, la_a, ra_c, ra_b, ra_a = g["la_c"], g["la_b"], g["la_a"], g["ra_c"], g["ra_b"], g["ra_a"]
    at = 0.45 * p.wall
    ias = quad(base, g["la_u"] + 0.5 * la_a, ra_c + ra_b - 0.005, la_c - la_b + 0.005)
    span_c, span_b = 0.5 * (la_c + la_b + ra_c - ra_b), 0.5 * (la_c + la_b - ra_c + ra_b)
    sw = span_c + (span_b + 0.12) * np.linspace(-1.0, 1.0, 25, dtype=np.float32)[None, :]
    fx, fy = _to_image(p, base + 1.5 * np.maximum(la_a, ra_a), sw)
    floor = base + 1.5 * np.maximum(la_a, ra_a) + 0.02 - p.floor_curve * (sw - span_c) ** 2 + 0.15 * _field(p.wobble, fx, fy)
    shapes = [
        (PERI_LV, ellipse(base, lv_c, base + 0.03, lv_b + thick + 0.03, half, wobble=False, w_min=lv_c,
                          u_min=0.35 * base)),
        (PERI_BOTTOM, (np.concatenate([floor, floor[:, ::-1] + p.floor_thickness], 1), np.concatenate([sw, sw[:, ::-1]], 1))),
        (MYO, ellipse(base, lv_c, base, lv_b + thick, half)),
        (MYO, ellipse(base, rv_c, g["rv_a"] + g["rv_t"], rv_b + g["rv_t"], half)),
        (SEPTUM, quad(base - g["rv_a"], base, g["sept_edge"] - 0.01, lv_c - lv_b + 0.01)),
        (ATRIAL_WALL, ellipse(g["la_u"], la_c, la_a + at, la_b + at, full, u_min=base)),
        (ATRIAL_WALL, ellipse(g["ra_u"], ra_c, ra_a + at, ra_b + at, full, u_min=base)),
        (ATRIAL_WALL, ias),
        (BLOOD, lv := ellipse(base, lv_c, g["lv_a"], lv_b, half)),
        (BLOOD, ellipse(base, rv_c, g["rv_a"], rv_b, half)),
        (BLOOD, ellipse(g["la_u"], la_c, la_a, la_b, full, u_min=base)),
        (BLOOD, ellipse(g["ra_u"], ra_c, ra_a, ra_b, full, u_min=base)),
        (PAPILLARY, ellipse(0.62 * base, lv_c + 0.8 * lv_b, 0.07, 0.025, full)),
    ]
    # valves: leaflets hinged on the annulus, closed (meeting, tented apically) or open (pointing into the ventricle)
    mv_half, tv_half = np.minimum(lv_b, 0.8 * la_b), np.minimum(rv_b, 0.8 * ra_b)
    mv_c, tv_c = 0.5 * (lv_c + la_c), 0.5 * (rv_c + ra_c)
    v = valve.reshape(-1, 1)
    lines, rings = [], []
    for centre, halfw, anterior, hinges in ((mv_c, mv_half, -1.0, (-1.0, 1.0)), (tv_c, tv_half, 1.0, (-1.0,))):
        length = p.leaflet * halfw
        for side in (-1.0, 1.0):
            hinge = centre + side * halfw
            du = (1.0 - v) * (-0.25 * halfw) + v * (-length)
            dw = (1.0 - v) * (-side * halfw) + v * (-side * 0.15 * halfw)
            k = length * (1.15 if side == anterior else 1.0) / (np.hypot(du, dw) + 1e-9)
            lines.append((np.concatenate([base, base + du * k], 1), np.concatenate([hinge, hinge + dw * k], 1)))
            if side in hinges:  # fibrous annulus; the crux (tricuspid's septal hinge) is drawn once
                rings.append((base, hinge))

    one = 16.0  # cv2 fixed point: 4 fractional bits
    labels = np.zeros((b, size, size), np.uint8)
    masks = np.zeros((b, size, size), np.uint8)

    def points(uw):
        x, y = _to_image(p, *uw)
        return np.rint(np.stack([x * size - 0.5, y * size - 0.5], -1) * one).astype(np.int32)

    polys = [(label, points(uw)) for label, uw in shapes]
    segs = [points(uw) for uw in lines]
    dots = [points(uw) for uw in rings]
    lv_pts = points(lv)
    width = max(1, round(0.008 * size))
    radius = round(0.014 * size * one)
    for i in range(b):
        canvas = labels[i]
        for label, pts in polys:
            cv2.fillPoly(canvas, [pts[i]], label, cv2.LINE_8, 4)
        for seg in segs:
            cv2.line(canvas, tuple(map(int, seg[i, 0])), tuple(map(int, seg[i, 1])), VALVE, width, cv2.LINE_8, 4)
        for dot in dots:
            cv2.circle(canvas, tuple(map(int, dot[i, 0])), radius, RING, -1, cv2.LINE_8, 4)
        cv2.fillPoly(masks[i], [lv_pts[i]], 1, cv2.LINE_8, 4)
    return labels, masks.astype(bool)


def _to_image(p, u, w):
    """Heart coordinates -> image coordinates (fractions of the side)."""
    c, s = np.cos(p.tilt), np.sin(p.tilt)
    return p.lv_apex_x + w * c - u * s, p.lv_apex_y + u * c + w * s


# -- hearts, clips and datasets ---------------------------------------------------------
def heart_rng(seed: int, heart: int, stream: int = 0) -> np.random.Generator:
    """The random stream of one heart (``stream`` 0: dataset hearts, 1: clips), independent of batching."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(heart), int(stream)])))


@dataclass(frozen=True)
class Clip:
    """A short recording of one heart: frames, their true phases and LV masks."""

    frames: np.ndarray  # uint8 [T, H, W]
    phases: np.ndarray  # float [T], 0 = ED, 1 = ES
    lv_masks: np.ndarray  # bool [T, H, W]
    times: np.ndarray  # float [T], beats since an ED
    heart: Heart

    @property
    def ed_frames(self) -> list[int]:
        """The frame nearest to each end-diastole within the clip."""
        return _event_frames(self.times, 0.0)

    @property
    def es_frames(self) -> list[int]:
        """The frame nearest to each end-systole within the clip."""
        return _event_frames(self.times, SYSTOLE)


def _event_frames(times: np.ndarray, offset: float) -> list[int]:
    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    first = math.ceil(times[0] - offset - 0.5 * dt)
    last = math.floor(times[-1] - offset + 0.5 * dt)
    return [int(np.argmin(np.abs(times - (k + offset)))) for k in range(first, last + 1)]


def render_clip(
    n_frames: int,
    seed: int,
    size: int = 128,
    *,
    fps: float = 50.0,
    heart_rate: float | None = None,
    start: float | None = None,
    smooth: bool = True,
) -> Clip:
    """``n_frames`` of one heart sampled at ``fps`` (EchoNet's median frame rate is 50).

    ``heart_rate`` (beats per minute) and ``start`` (beats since an ED) default to
    seeded random values (60-100 bpm, uniform start); 50 frames at 50 fps and
    60 bpm span one beat.
    """
    if n_frames < 1:
        raise ValueError("render_clip: n_frames must be at least 1")
    rng = heart_rng(seed, 0, stream=1)
    heart = sample_heart(rng)
    bpm = heart_rate if heart_rate is not None else rng.uniform(60.0, 100.0)
    t0 = start if start is not None else rng.uniform(0.0, 1.0)
    times = t0 + np.arange(n_frames) * (bpm / 60.0) / fps
    phases, valves = cycle_phase(times), valve_opening(times)
    frames, masks = [], []
    for lo in range(0, n_frames, 32):
        hi = min(n_frames, lo + 32)
        out = render([heart] * (hi - lo), phases[lo:hi], valves[lo:hi], draw_noise(rng, hi - lo, size), size,
                     smooth=smooth)
        frames.append(out.frames)
        masks.append(out.lv_masks)
    return Clip(np.concatenate(frames), phases, np.concatenate(masks), times, heart)


def heart_times(rng: np.random.Generator) -> np.ndarray:
    """The times (beats since an ED) of a heart's four frames: first, an ES, an ED, last.

    Mirrors the study's four frames per video: a clip starts anywhere in the cycle
    and lasts 1.2-2.5 beats, so it holds at least one ES and one ED; f1 and f2
    are the first of each (the truth the study's "systole"/"diastole" heuristic
    looks for), f0 and f3 the clip's ends.
    """
    t0 = rng.uniform(0.0, 1.0)
    t3 = t0 + rng.uniform(1.2, 2.5)
    es = math.ceil(t0 - SYSTOLE) + SYSTOLE
    ed = float(math.ceil(t0))
    return np.array([t0, es, ed, t3])


def render_hearts(seed: int, hearts: Sequence[int], size: int = 128, *, smooth: bool = True,
                  speckle_seed: int | None = None):
    """The four frames of each heart index: ``(Rendered [4n], times [n, 4], phases [n, 4])``.

    ``speckle_seed`` re-draws the scatterers only: the same hearts at the same
    times with other speckle, the closest thing to a second recording of the
    same instant (the memorisation tests' hardest near-copy).
    """
    models, times, noises = [], [], []
    for h in hearts:
        rng = heart_rng(seed, h)
        models.append(sample_heart(rng))
        times.append(heart_times(rng))
        noise_rng = rng if speckle_seed is None else heart_rng(seed, h, stream=1000 + int(speckle_seed))
        noises.append(draw_noise(noise_rng, FRAMES_PER_HEART, size))
    t = np.asarray(times, np.float64).reshape(-1, FRAMES_PER_HEART)
    phases = cycle_phase(t)
    out = render(
        [m for m in models for _ in range(FRAMES_PER_HEART)],
        phases.ravel(),
        valve_opening(t).ravel(),
        np.concatenate(noises) if noises else np.empty((0, size, size), np.complex64),
        size,
        smooth=smooth,
    )
    return out, t, phases
