"""Pose smoothing: the One-Euro filter on SE(3), and the pass-through used when smoothing is off.

One-Euro (Casiez, Roussel, Vogel, "1 Euro Filter: A Simple Speed-based Low-pass Filter for Noisy
Input in Interactive Systems", CHI 2012) on SE(3): translation filtered per axis, rotation filtered
on the tangent space (``R_hat <- exp(a log(R R_hat^T)) R_hat``), each with a cutoff that rises
with its speed. The tracker predicts from the unsmoothed poses, so smoothing adds no lag to the
crop.
"""

from __future__ import annotations

import math

import numpy as np

from tracker.geometry import so3_exp, so3_log


class OneEuroPose:
    """One-Euro filter on SE(3) (see the module docstring). Call with (R, t, timestamp s)."""

    def __init__(self, min_cutoff_hz: float, beta_t: float, beta_r: float, d_cutoff_hz: float):
        self.min_cutoff, self.beta_t, self.beta_r, self.d_cutoff = min_cutoff_hz, beta_t, beta_r, d_cutoff_hz
        self.reset()

    def reset(self) -> None:
        self._R = self._t = None
        self._dt_hat = np.zeros(3)
        self._dw_hat = np.zeros(3)
        self._ts = None

    @staticmethod
    def _alpha(dt: float, cutoff: float) -> float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, R: np.ndarray, t: np.ndarray, timestamp: float) -> tuple[np.ndarray, np.ndarray]:
        if self._R is None:
            self._R, self._t, self._ts = R.copy(), t.copy(), timestamp
            return R, t
        dt = timestamp - self._ts
        if not dt > 0:
            dt = 1.0 / 30.0
        self._ts = timestamp
        ad = self._alpha(dt, self.d_cutoff)
        # translation
        dx = (t - self._t) / dt
        self._dt_hat = ad * dx + (1 - ad) * self._dt_hat
        a = self._alpha(dt, self.min_cutoff + self.beta_t * float(np.linalg.norm(self._dt_hat)))
        self._t = self._t + a * (t - self._t)
        # rotation, on the tangent space at the filtered rotation
        w = so3_log(R @ self._R.T)
        self._dw_hat = ad * (w / dt) + (1 - ad) * self._dw_hat
        a = self._alpha(dt, self.min_cutoff + self.beta_r * float(np.linalg.norm(self._dw_hat)))
        self._R = so3_exp(a * w) @ self._R
        return self._R.copy(), self._t.copy()


class NoSmoothing:
    """The identity filter (``smoothing=False``)."""

    def reset(self) -> None:
        pass

    def __call__(self, R, t, timestamp):
        return R, t
