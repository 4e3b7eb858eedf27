"""Orbits: Kepler's third law, equilibrium temperature, tidal locking and seasonal insolation.

Insolation follows the standard daily-mean top-of-atmosphere formula (Berger 1978, J. Atmos. Sci. 35,
2362; e.g. Hartmann 2016 "Global Physical Climatology" eq. 2.15):
    Q = S (a/r)^2 / pi * (h0 sin(phi) sin(delta) + cos(phi) cos(delta) sin(h0)),  cos(h0) = -tan(phi) tan(delta)
with the solar declination sin(delta) = sin(obliquity) sin(lambda) and lambda the true longitude from
the northern vernal equinox. The eccentric orbit is solved with Kepler's equation M = E - e sin E.
Time origin: the northern vernal equinox; "months" are 12 equal-time slices of the orbit.
"""

from __future__ import annotations

import numpy as np

from astrobio.constants import AU, DAY, G, M_EARTH, M_SUN, R_EARTH, S_EARTH, SIGMA_SB
from astrobio.world.stars import validated_array

ECC_MAX = 0.95  # Kepler solver and the diurnal-mean approximation are tested to here
LON_PERIHELION_EARTH_DEG = 282.9  # Earth's present longitude of perihelion from the vernal equinox (Berger 1978)
# Gladman et al. (1996, Celest. Mech. 64, 209) eq. (9) terrestrial-planet parameters:
TIDAL_Q = 100.0  # specific dissipation function Q of a rocky planet
TIDAL_K2 = 0.3  # Love number k2
MOMENT_OF_INERTIA = 0.3307  # I / (M R^2), Earth's value (Williams 1994)
INITIAL_SPIN_PERIOD_HOURS = 12.0  # primordial rotation period assumed before despinning


def orbital_period_days(a_au, mstar_msun):
    """Kepler's third law, P = 2 pi sqrt(a^3 / (G M)) [days] (planet mass neglected)."""
    a = validated_array("a_au", a_au, positive=True) * AU
    m = validated_array("mstar_msun", mstar_msun, positive=True) * M_SUN
    return 2 * np.pi * np.sqrt(a**3 / (G * m)) / DAY


def semimajor_axis_au(period_days, mstar_msun):
    """Inverse of `orbital_period_days`: a = (G M P^2 / 4 pi^2)^(1/3) [AU]."""
    p = validated_array("period_days", period_days, positive=True) * DAY
    m = validated_array("mstar_msun", mstar_msun, positive=True) * M_SUN
    return np.cbrt(G * m * p**2 / (4 * np.pi**2)) / AU


def equilibrium_temperature_k(instellation_searth, albedo=0.3):
    """T_eq = [S (1 - A) / (4 sigma)]^(1/4): full redistribution, Bond albedo A [K]."""
    s = validated_array("instellation_searth", instellation_searth, lo=0.0) * S_EARTH
    a = validated_array("albedo", albedo, 0.0, 1.0)
    return (s * (1 - a) / (4 * SIGMA_SB)) ** 0.25


def despinning_timescale_gyr(a_au, mstar_msun, planet_mass_earth, planet_radius_earth):
    """Gladman et al. (1996) eq. (9): t = w a^6 I Q / (3 G M*^2 k2 R^5), I = alpha m R^2 [Gyr]."""
    a = validated_array("a_au", a_au, positive=True) * AU
    ms = validated_array("mstar_msun", mstar_msun, positive=True) * M_SUN
    mp = validated_array("planet_mass_earth", planet_mass_earth, positive=True) * M_EARTH
    rp = validated_array("planet_radius_earth", planet_radius_earth, positive=True) * R_EARTH
    omega = 2 * np.pi / (INITIAL_SPIN_PERIOD_HOURS * 3600.0)
    t = omega * a**6 * MOMENT_OF_INERTIA * mp * TIDAL_Q / (3 * G * ms**2 * TIDAL_K2 * rp**3)
    return t / (1e9 * 365.25 * DAY)


def tidal_locking(a_au, mstar_msun, planet_mass_earth, planet_radius_earth, age_gyr):
    """True where the despinning timescale is shorter than the system age (bool array)."""
    age = validated_array("age_gyr", age_gyr, lo=0.0)
    return despinning_timescale_gyr(a_au, mstar_msun, planet_mass_earth, planet_radius_earth) < age


def solve_kepler(mean_anomaly, ecc, n_iter: int = 30):
    """Eccentric anomaly E with M = E - e sin E (Newton's method from E = pi for e > 0.8)."""
    m = np.mod(mean_anomaly, 2 * np.pi)
    e = np.asarray(ecc, dtype=float)
    E = np.where(e > 0.8, np.pi, m + e * np.sin(m))
    for _ in range(n_iter):
        E = E - (E - e * np.sin(E) - m) / (1 - e * np.cos(E))
    return E


def orbital_state(mean_anomaly, ecc, obliquity_deg, lon_perihelion_deg=LON_PERIHELION_EARTH_DEG):
    """(a/r)^2 and solar declination [rad] at the given mean anomalies (arrays broadcast).

    Mean anomalies count from the northern vernal equinox: pass `M + M_equinox(...)` via
    `equinox_mean_anomaly` to measure time from the equinox.
    """
    e = np.asarray(ecc, dtype=float)
    E = solve_kepler(mean_anomaly, e)
    nu = 2 * np.arctan2(np.sqrt(1 + e) * np.sin(E / 2), np.sqrt(1 - e) * np.cos(E / 2))
    true_lon = nu + np.deg2rad(lon_perihelion_deg)
    decl = np.arcsin(np.sin(np.deg2rad(obliquity_deg)) * np.sin(true_lon))
    return 1.0 / (1 - e * np.cos(E)) ** 2, decl


def equinox_mean_anomaly(ecc, lon_perihelion_deg=LON_PERIHELION_EARTH_DEG):
    """Mean anomaly at the northern vernal equinox (true longitude 0, so true anomaly = -varpi)."""
    e = np.asarray(ecc, dtype=float)
    nu = -np.deg2rad(lon_perihelion_deg)
    E = 2 * np.arctan2(np.sqrt(1 - e) * np.sin(nu / 2), np.sqrt(1 + e) * np.cos(nu / 2))
    return E - e * np.sin(E)


def daily_mean_insolation(s0, lat_rad, decl):
    """Diurnal-mean TOA flux [W m^-2] for flux s0 at the planet (arrays broadcast)."""
    x = np.clip(-np.tan(lat_rad) * np.tan(decl), -1.0, 1.0)
    h0 = np.arccos(x)  # half-day length (0 = polar night, pi = polar day)
    return s0 / np.pi * (h0 * np.sin(lat_rad) * np.sin(decl) + np.cos(lat_rad) * np.cos(decl) * np.sin(h0))


def daytime_mean_cos_zenith(lat_rad, decl):
    """Cosine of the zenith angle averaged over the daylit hours, Q / (S h0 / pi); 0 in polar night.

    The zenith angle a 1-D radiative model of the daytime column sees (as in Williams & Kasting 1997).
    """
    x = np.clip(-np.tan(lat_rad) * np.tan(decl), -1.0, 1.0)
    h0 = np.arccos(x)
    num = h0 * np.sin(lat_rad) * np.sin(decl) + np.cos(lat_rad) * np.cos(decl) * np.sin(h0)
    return np.where(h0 > 0, num / np.maximum(h0, 1e-12), 0.0)


def locked_insolation(s0, lat_rad, lon_rad):
    """Fixed substellar point at (0, 0): S cos(zenith) on the dayside, zero at night."""
    return s0 * np.maximum(np.cos(lat_rad) * np.cos(lon_rad), 0.0)


def insolation(luminosity_lsun, a_au, ecc, obliquity_deg, tidally_locked, lat_deg, lon_deg, n_months: int = 12,
               lon_perihelion_deg=LON_PERIHELION_EARTH_DEG, samples_per_month: int = 10):
    """Monthly-mean top-of-atmosphere insolation [W m^-2], shape (P, n_months, lat, lon).

    Rotating planets: diurnal mean (zonally uniform). Tidally locked planets: fixed substellar point at
    lat 0, lon 0 and zero obliquity (tides damp it, Gladman et al. 1996). Each month averages
    `samples_per_month` equal-time samples, so the annual global mean is S/4 / sqrt(1 - e^2).
    """
    lum = validated_array("luminosity_lsun", luminosity_lsun, positive=True)
    a = validated_array("a_au", a_au, positive=True)
    e = validated_array("ecc", ecc, 0.0, ECC_MAX)
    obl = validated_array("obliquity_deg", obliquity_deg, 0.0, 180.0)
    locked = np.asarray(tidally_locked, dtype=bool)
    lat = np.deg2rad(validated_array("lat_deg", lat_deg, -90.0, 90.0))
    lon = np.deg2rad(validated_array("lon_deg", lon_deg))
    lum, a, e, obl, locked = (np.atleast_1d(v) for v in np.broadcast_arrays(lum, a, e, obl, locked))
    s0 = (S_EARTH * lum / a**2)[:, None, None]  # (P, 1, 1)
    n_t = n_months * samples_per_month
    frac = (np.arange(n_t) + 0.5) / n_t  # (T,) sample mid-times as orbit fractions
    m = equinox_mean_anomaly(e, lon_perihelion_deg)[:, None] + 2 * np.pi * frac[None, :]  # (P, T)
    dist2, decl = orbital_state(m, e[:, None], np.where(locked, 0.0, obl)[:, None], lon_perihelion_deg)
    s_t = s0 * dist2[:, :, None]  # (P, T, 1)
    q_rot = daily_mean_insolation(s_t, lat[None, None, :], decl[:, :, None])  # (P, T, lat)
    q_rot = np.broadcast_to(q_rot[..., None], q_rot.shape + (lon.size,))
    q_lock = locked_insolation(s_t[..., None], lat[None, None, :, None], lon[None, None, None, :])
    q = np.where(locked[:, None, None, None], q_lock, q_rot)  # (P, T, lat, lon)
    return q.reshape(q.shape[0], n_months, samples_per_month, lat.size, lon.size).mean(axis=2)
