"""Physical and astronomical constants in SI units, each with its source.

Sources: CODATA 2018 (via NIST, https://physics.nist.gov/cuu/Constants/), IAU 2015 Resolution B3
(nominal solar and planetary values), IAU 2012 Resolution B2 (astronomical unit).
"""

# --- fundamental (CODATA 2018, exact or recommended values) ---
G = 6.67430e-11  # m^3 kg^-1 s^-2, Newtonian constant of gravitation (CODATA 2018)
K_B = 1.380649e-23  # J K^-1, Boltzmann constant (exact, SI 2019)
SIGMA_SB = 5.670374419e-8  # W m^-2 K^-4, Stefan-Boltzmann constant (CODATA 2018)
H_PLANCK = 6.62607015e-34  # J s, Planck constant (exact, SI 2019)
C_LIGHT = 299792458.0  # m s^-1, speed of light (exact)
N_A = 6.02214076e23  # mol^-1, Avogadro constant (exact, SI 2019)
R_GAS = 8.314462618  # J mol^-1 K^-1, molar gas constant (CODATA 2018)
AMU = 1.66053906660e-27  # kg, atomic mass constant m_u (CODATA 2018)

# --- astronomical (IAU 2015 B3 nominal values; IAU 2012 B2 for the AU) ---
AU = 1.495978707e11  # m, astronomical unit (IAU 2012 B2, exact)
PARSEC = 3.0856775814913673e16  # m (IAU 2015 B2: 648000/pi AU)
R_SUN = 6.957e8  # m, nominal solar radius (IAU 2015 B3)
L_SUN = 3.828e26  # W, nominal solar luminosity (IAU 2015 B3)
GM_SUN = 1.3271244e20  # m^3 s^-2, nominal solar mass parameter (IAU 2015 B3)
M_SUN = GM_SUN / G  # kg
TEFF_SUN = 5772.0  # K, nominal solar effective temperature (IAU 2015 B3)
S_EARTH = 1361.0  # W m^-2, total solar irradiance at 1 AU (IAU 2015 B3; Kopp & Lean 2011)
R_EARTH = 6.3781e6  # m, nominal equatorial Earth radius (IAU 2015 B3)
GM_EARTH = 3.986004e14  # m^3 s^-2, nominal terrestrial mass parameter (IAU 2015 B3)
M_EARTH = GM_EARTH / G  # kg
R_JUP = 7.1492e7  # m, nominal equatorial Jupiter radius (IAU 2015 B3)
GM_JUP = 1.2668653e17  # m^3 s^-2, nominal Jovian mass parameter (IAU 2015 B3)
M_JUP = GM_JUP / G  # kg
DAY = 86400.0  # s
YEAR = 365.25 * DAY  # s, Julian year

# --- Earth reference values (for ESI and sanity anchors) ---
RHO_EARTH = 5513.0  # kg m^-3, mean density (NASA Earth fact sheet)
V_ESC_EARTH = 11186.0  # m s^-1, escape velocity (NASA Earth fact sheet)
G_EARTH = 9.80665  # m s^-2, standard gravity (CGPM 1901)
P_EARTH = 101325.0  # Pa, standard atmosphere
T_EARTH_MEAN = 288.0  # K, global mean surface temperature (Schulze-Makuch et al. 2011 ESI reference)

# --- water (IAPWS) ---
T_TRIPLE_WATER = 273.16  # K, triple point of water (IAPWS-95)
P_TRIPLE_WATER = 611.657  # Pa, triple-point pressure of water (IAPWS-95)
T_FREEZE = 273.15  # K, freezing point at 1 atm
T_CRIT_WATER = 647.096  # K, critical temperature (IAPWS-95)
P_CRIT_WATER = 22.064e6  # Pa, critical pressure (IAPWS-95)
L_VAP_WATER = 2.501e6  # J kg^-1, latent heat of vaporisation at 0 C (Wallace & Hobbs 2006)
R_VAPOUR = 461.5  # J kg^-1 K^-1, gas constant of water vapour (Wallace & Hobbs 2006)
EPSILON_WATER = 0.622  # M_H2O / M_dry_air (Earth air), ratio used in specific humidity

# --- molar masses, g mol^-1 (IUPAC 2013 standard atomic weights) ---
MOLAR_MASS = {
    "N2": 28.014, "O2": 31.998, "CO2": 44.009, "CH4": 16.043, "H2O": 18.015,
    "O3": 47.997, "N2O": 44.013, "CO": 28.010, "H2": 2.016, "Ar": 39.948, "He": 4.003,
}
