"""Reflection off a one-port resonator, fitted to complex VNA data (physics.md §1.2).

Model (Probst et al., RSI 86, 024706 (2015), reflection form; engineering convention
``exp(+j w t)``, as a VNA measures)::

    S11(f) = A e^{-2 pi i (f - f_ref) tau} (2 kappa_ex/kappa - 1 + 2i (f_r - f)/kappa)
                                           / (1 - 2i (f_r - f)/kappa)

which is Probst's ``(2Q_L/Q_c - 1 + 2iQ_L(f_r - f)/f_r) / (1 - 2iQ_L(f_r - f)/f_r)`` with
``Q_L = f_r/kappa`` and ``Q_c = f_r/kappa_ex``. ``A = a e^{i alpha}`` (complex) is the line's
gain and phase, ``tau`` its electrical delay (``e^{-2 pi i f_ref tau}`` is absorbed in A, with
``f_ref`` the middle of the sweep). Rates are full widths in Hz; ``kappa_0 = kappa - kappa_ex``.

Why complex data: on resonance the reflection is ``2 kappa_ex/kappa - 1``, whose magnitude is the
same for ``kappa_ex`` and ``kappa - kappa_ex``. Only its sign (the phase: does the circle enclose
the origin, i.e. does the phase wind by 2 pi across the resonance?) tells over- from
under-coupling, and at critical coupling the dip reaches zero, so the magnitude alone cannot
place ``kappa_ex`` at all. Fitting real and imaginary parts together does.

A VNA in the physics convention (``exp(-i w t)``) would show the conjugate, i.e. the circle
traversed the other way; every VNA we drive (and the twin, see ``hil.twin.lines``) uses the
engineering one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from hil.analysis.data import paired
from hil.results import FitError

#: A resonance must stand this many times its trace's scatter (rms residual) above it.
SIGNIFICANCE = 10.0




@dataclass(frozen=True)
class ReflectionFit:
    """Best-fit resonance (Hz), environment, and one-sigma uncertainties."""

    f_r: float
    f_r_err: float
    kappa: float
    kappa_err: float
    kappa_ex: float
    kappa_ex_err: float
    kappa_0: float
    kappa_0_err: float
    eta: float  # kappa_ex / kappa
    eta_err: float
    amplitude: complex  # A at f_ref
    amplitude_err: float  # on |A|
    delay: float  # tau (s)
    delay_err: float
    f_ref: float
    residual_rms: float  # |S| units

    @property
    def coupling(self) -> str:
        """``over``, ``under`` or ``critical`` (within one sigma of kappa_ex = kappa_0)."""
        if abs(self.eta - 0.5) <= self.eta_err:
            return "critical"
        return "over" if self.eta > 0.5 else "under"

    @property
    def line_gain_db(self) -> float:
        """Off-resonant |S11| in dB: the round trip of the line (in x out)."""
        return float(20 * np.log10(abs(self.amplitude)))

    def model(self, f):
        """The fitted S11 at frequencies ``f`` (Hz)."""
        return reflection_model(np.asarray(f, float), self.amplitude, self.delay, self.f_ref,
                                self.f_r, self.kappa, self.kappa_ex)

    def core(self, f):
        """The resonator's own reflection at ``f``, the line's gain, phase and delay removed."""
        f = np.asarray(f, float)
        return self.model(f) / (self.amplitude * np.exp(-2j * np.pi * (f - self.f_ref) * self.delay))


def reflection_model(f, amplitude: complex, delay: float, f_ref: float, f_r: float, kappa: float,
                     kappa_ex: float):
    """S11(f) of the module docstring."""
    x = 2j * (f_r - np.asarray(f, float)) / kappa
    core = (2 * kappa_ex / kappa - 1 + x) / (1 - x)
    return amplitude * np.exp(-2j * np.pi * (np.asarray(f, float) - f_ref) * delay) * core


def fit_reflection(f, s) -> ReflectionFit:
    """Fit one resonance in a complex reflection trace ``s`` taken at frequencies ``f`` (Hz).

    Starting values: the delay from the phase slope at both ends of the trace; the line's
    amplitude from the average of the two ends (where the resonator reflects ``-1``); the
    resonance where the trace moves fastest along its circle (the speed ``|dS/df|`` is a
    Lorentzian of full width kappa); the coupling from the on-resonance value. Then a
    least-squares fit of real and imaginary parts together, from a few couplings, keeping the
    best. Raises :class:`FitError` when there is no resonance to fit.
    """
    f, s = paired(f, s, names="frequencies and trace", at_least=20, of="points to fit a resonance",
                  y_dtype=complex)
    order = np.argsort(f)
    f, s = f[order], s[order]
    span = f[-1] - f[0]
    if span <= 0:
        raise FitError("all points are at the same frequency")
    if not np.all(np.isfinite(s)) or np.max(np.abs(s)) == 0:
        raise FitError("the trace is empty (no signal on the receiver)")
    f_ref = 0.5 * (f[0] + f[-1])
    u = (f - f_ref) / span  # scaled frequency, -0.5 .. 0.5
    level = float(np.median(np.abs(s)))
    z = s / level  # scaled trace, |z| ~ 1 off resonance

    edge = max(3, f.size // 10)
    tau0 = _edge_delay(u, z, edge)  # in turns per span
    zc = z * np.exp(2j * np.pi * u * tau0)
    a0 = -0.5 * (zc[:edge].mean() + zc[-edge:].mean())
    if abs(a0) < 1e-6:
        raise FitError("no off-resonant level at the ends of the trace")
    w = zc / a0  # ~ the resonator's own reflection: -1 far off, 2 eta - 1 on resonance
    speed = np.abs(np.diff(w)) / np.diff(u)
    speed = np.convolve(speed, np.ones(3) / 3, mode="same")
    i_peak = int(np.argmax(speed))
    u_mid = 0.5 * (u[:-1] + u[1:])
    above = speed >= speed[i_peak] / 2
    lo, hi = i_peak, i_peak
    while lo > 0 and above[lo - 1]:
        lo -= 1
    while hi < above.size - 1 and above[hi + 1]:
        hi += 1
    step = 1.0 / (f.size - 1)
    u_r0 = float(u_mid[i_peak])
    width0 = max(float(u_mid[hi] - u_mid[lo]), 2 * step)
    if width0 > 0.8:
        raise FitError("no resonance: the trace does not move faster anywhere than at its ends")
    on_res = w[int(np.argmin(np.abs(u - u_r0)))]
    eta0 = float(np.clip((on_res.real + 1) / 2, 0.05, 0.95))

    def residual(p):
        ar, ai, tau, ur, width, eta = p
        x = 2j * (ur - u) / width
        m = (ar + 1j * ai) * np.exp(-2j * np.pi * u * tau) * (2 * eta - 1 + x) / (1 - x)
        r = m - z
        return np.concatenate([r.real, r.imag])

    def jacobian(p):
        # The model's derivatives in closed form: finite differences cost six more model
        # evaluations per iteration, which dominate on a wide search trace of 100k points.
        ar, ai, tau, ur, width, eta = p
        x = 2j * (ur - u) / width
        line = np.exp(-2j * np.pi * u * tau)
        core = (2 * eta - 1 + x) / (1 - x)
        gain = (ar + 1j * ai) * line
        d_core_dx = gain * 2 * eta / (1 - x) ** 2
        columns = (line * core, 1j * line * core, -2j * np.pi * u * gain * core,
                   d_core_dx * 2j / width, d_core_dx * (-x / width), gain * 2 / (1 - x))
        j = np.stack(columns, axis=1)
        return np.concatenate([j.real, j.imag])

    lower = [-np.inf, -np.inf, -np.inf, -0.5, step / 20, 0.0]
    upper = [np.inf, np.inf, np.inf, 0.5, 2.0, 1.0]
    best = None
    for eta_start in sorted({round(eta0, 3), 0.2, 0.5, 0.8}):
        p0 = [a0.real, a0.imag, tau0, u_r0, width0, eta_start]
        try:
            sol = least_squares(residual, p0, jac=jacobian, bounds=(lower, upper), x_scale="jac",
                                max_nfev=2000)
        except ValueError as exc:
            raise FitError(f"the reflection fit failed: {exc}") from None
        if best is None or sol.cost < best.cost:
            best = sol
    if best is None or not best.success:
        raise FitError("the reflection fit did not converge")

    p = best.x
    rms = float(np.sqrt(2 * best.cost / f.size))  # per point, |S| / level units
    diameter = 2 * p[5] * float(np.hypot(p[0], p[1]))
    if diameter < SIGNIFICANCE * rms:
        raise FitError(f"no resonance: the best circle (diameter {diameter * level:.3g}) is within "
                       f"{SIGNIFICANCE:g} x the scatter of the trace ({rms * level:.3g})")
    if p[4] < step / 2:
        raise FitError(f"no resolved resonance: the best width ({p[4] * span:.3g} Hz) is below "
                       f"half a frequency step ({step * span:.3g} Hz)")
    if not -0.5 < p[3] < 0.5:
        raise FitError("no resonance inside the trace")
    n_res, n_par = 2 * f.size, p.size
    dof = max(n_res - n_par, 1)
    variance = 2 * best.cost / dof
    jac = best.jac
    cov = np.linalg.pinv(jac.T @ jac) * variance
    ar, ai, tau, ur, width, eta = p
    amp = complex(ar, ai) * level
    kappa = width * span
    kappa_ex = eta * kappa
    # Linear error propagation with the covariance of (width, eta).
    c_we = cov[np.ix_([4, 5], [4, 5])]
    g_ex = np.array([eta * span, width * span])
    g_0 = np.array([(1 - eta) * span, -width * span])
    amp_grad = np.array([ar, ai]) / max(np.hypot(ar, ai), 1e-300)
    return ReflectionFit(
        f_r=float(ur * span + f_ref), f_r_err=_sd(cov[3, 3]) * span,
        kappa=float(kappa), kappa_err=_sd(cov[4, 4]) * span,
        kappa_ex=float(kappa_ex), kappa_ex_err=_sd(g_ex @ c_we @ g_ex),
        kappa_0=float(kappa - kappa_ex), kappa_0_err=_sd(g_0 @ c_we @ g_0),
        eta=float(eta), eta_err=_sd(cov[5, 5]),
        amplitude=amp, amplitude_err=_sd(amp_grad @ cov[:2, :2] @ amp_grad) * level,
        delay=float(tau / span), delay_err=_sd(cov[2, 2]) / span, f_ref=float(f_ref),
        residual_rms=rms * level,
    )


def _edge_delay(u, z, edge: int) -> float:
    """Common phase slope (turns per unit u) of the two ends, each unwrapped on its own (so a
    2 pi winding across an over-coupled resonance does not bias it)."""
    num = den = 0.0
    for part in (slice(None, edge), slice(-edge, None)):
        uu = u[part]
        phase = np.unwrap(np.angle(z[part]))
        du = uu - uu.mean()
        num += float(du @ (phase - phase.mean()))
        den += float(du @ du)
    return -num / den / (2 * np.pi) if den > 0 else 0.0


def _sd(variance) -> float:
    return float(np.sqrt(max(float(variance), 0.0)))
