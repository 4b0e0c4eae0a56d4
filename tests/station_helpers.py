"""Station tables for the tests of ``workbench.inversion.stations`` (no mirror needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.inversion import stations as st


def table(n: int = 12, seed: int = 0) -> pd.DataFrame:
    """A station table of plausible soil spectra with FeO/TiO2 that follow Lucey 2000."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.06, 0.2, (n, 1)) * np.array([0.7, 1.0, 1.06, 1.08, 1.12]) * rng.uniform(0.97, 1.03, (n, 5))
    df = pd.DataFrame(X, columns=st.BANDS)
    return df.assign(FeO_wt_pct=st.lucey_prior(X)[:, 0], TiO2_wt_pct=st.lucey_prior(X)[:, 1].clip(0))


def sites(offsets=(0.0, 3.0, -3.0, 1.5), per_site: int = 6, seed: int = 1) -> pd.DataFrame:
    """Lucey-like stations at len(offsets) landing sites 300 km apart (stations within 3 km), FeO shifted by each
    site's offset: what the spectra cannot tell, as between real Apollo sites."""
    rows = []
    for k, off in enumerate(offsets):
        t = table(per_site, seed=seed + k)
        rng = np.random.default_rng(seed + 10 * k)
        rows.append(t.assign(FeO_wt_pct=t["FeO_wt_pct"] + off, site=[f"Mission {k} - S{i}" for i in range(per_site)],
                             lat_deg=10.0 * k + rng.uniform(0, 0.1, per_site), lon_deg_east_0_360=20.0))
    return pd.concat(rows, ignore_index=True)
