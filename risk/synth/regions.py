"""A 永州市-like region tree (4311xx) and the supervisors who answer for its units."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from risk.synth.names import person_names, place_stem, village_stem

CITY = ("431100000000", "永州市")
COUNTIES = [  # the sample's five first, then the rest of the real city
    ("431102", "零陵区"), ("431103", "冷水滩区"), ("431122", "东安县"), ("431125", "江永县"),
    ("431126", "宁远县"), ("431181", "祁阳市"), ("431123", "双牌县"), ("431124", "道县"),
    ("431127", "蓝山县"), ("431128", "新田县"), ("431129", "江华瑶族自治县"),
]
# Address codes of people born elsewhere or registered under abolished codes (valid per §3).
FOREIGN_ADDRESS = ["432925", "432901", "432922", "430102", "440106", "450103"]
# Counties outside the city where card events happen sometimes (Changsha, Guangzhou, Nanning, Hengyang).
OUTSIDE_COUNTIES = ["430102000000", "440106000000", "450103000000", "430405000000"]
NIGHT_COUNTIES = ["440103000000", "440104000000", "440105000000", "440111000000"]  # 广州 districts


@dataclass
class Regions:
    table: pd.DataFrame  # code, name, level, parent_code
    villages: np.ndarray  # village codes
    village_county: np.ndarray  # index into counties for each village
    counties: list[str]  # 6-digit county codes in use
    townships: list[str]


def build_regions(rng: np.random.Generator, people: int) -> Regions:
    """About one village per 37 recipients (the sample's density), 5 to 11 counties."""
    n_villages = int(np.clip(round(people / 37), 40, 4000))
    n_counties = int(np.clip(n_villages // 16, 5, len(COUNTIES)))
    n_townships = max(n_counties * 3, int(np.ceil(n_villages / 6.5)))
    rows: list[tuple[str, str, str, str]] = [(CITY[0], CITY[1], "city", "")]
    villages: list[str] = []
    village_county: list[int] = []
    townships: list[str] = []
    per_county = np.full(n_counties, n_townships // n_counties)
    per_county[: n_townships % n_counties] += 1
    left = n_villages
    left_townships = n_townships
    for ci in range(n_counties):
        ccode, cname = COUNTIES[ci]
        county = ccode + "000000"
        rows.append((county, cname, "county", CITY[0]))
        counters = {"street": 0, "town": 100, "township": 200}
        for _ in range(int(per_county[ci])):
            kind = "street" if rng.random() < 0.15 else ("town" if rng.random() < 0.7 else "township")
            counters[kind] += 1
            stem = place_stem(rng)
            suffix = {"street": "街道", "town": "镇", "township": "乡"}[kind]
            tcode = f"{ccode}{counters[kind]:03d}000"
            rows.append((tcode, stem + suffix, "township", county))
            townships.append(tcode)
            share = int(round(left / left_townships))
            left_townships -= 1
            n_here = max(1, share if left_townships else left)
            left -= n_here
            community, village = 0, 200
            for _v in range(n_here):
                if kind == "street" or (kind == "town" and rng.random() < 0.2):
                    community += 1
                    vcode, vname = f"{tcode[:9]}{community:03d}", stem[:2] + village_stem(rng) + "社区"
                else:
                    village += 1
                    vcode, vname = f"{tcode[:9]}{village:03d}", stem[:2] + village_stem(rng) + "村"
                rows.append((vcode, vname, "village", tcode))
                villages.append(vcode)
                village_county.append(ci)
    table = pd.DataFrame(rows, columns=["code", "name", "level", "parent_code"])
    return Regions(
        table=table,
        villages=np.array(villages, dtype=object),
        village_county=np.array(village_county),
        counties=[c for c, _ in COUNTIES[:n_counties]],
        townships=townships,
    )


def build_supervisors(rng: np.random.Generator, regions: Regions) -> pd.DataFrame:
    """One supervisor per village, township and county, one for the city and one auditor."""
    t = regions.table
    units = pd.concat([t[t.level == "village"], t[t.level == "township"], t[t.level == "county"]])
    role = units.level.to_numpy()
    prefix = np.array([{"village": "v", "township": "t", "county": "c"}[r] for r in role])
    n = len(units)
    user_id = [f"{p}{i + 1:04d}" for i, p in enumerate(prefix)]
    names = person_names(rng, rng.random(n + 2) < 0.5)
    out = pd.DataFrame({
        "user_id": user_id + ["city01", "audit01"],
        "name": list(names),
        "role": list(role) + ["city", "auditor"],
        "region_code": list(units.code) + [CITY[0], CITY[0]],
    })
    out["email"] = out.user_id + "@example.org"
    out.loc[rng.random(len(out)) < 0.05, "email"] = ""
    out["notify_url"] = ""
    return out
