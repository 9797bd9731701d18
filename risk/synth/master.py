"""Master data deliveries (upsert sources): regions, supervisors and recipients on the first day,
then quarterly recipient re-deliveries with new people and changes (moves, phones, certification
dates), a regions/supervisors update, and a few rows that break the contract."""
from __future__ import annotations

import numpy as np
import pandas as pd

from risk.synth.names import village_stem
from risk.synth.quirks import add
from risk.synth.tables import Files, dates, render_recipients
from risk.synth.timeline import iso
from risk.synth.world import World


def _meta(df: pd.DataFrame, key: str) -> pd.DataFrame:
    df = df.copy()
    df["_reject"] = False
    df["_key"] = df[key]
    return df


def master_data(w: World, files: Files, supervisors: pd.DataFrame, certs: pd.DataFrame) -> None:
    """certs: the background certification events (pi, ts, file_month); the bureau records some of
    the first month's in a recipients re-delivery."""
    cal, p = w.cal, w.pop
    d0 = iso(cal.first_day)
    files[(d0, "regions")] = _meta(w.regions.table, "code")
    files[(d0, "supervisors")] = _meta(supervisors, "user_id")
    files[(d0, "recipients")] = _meta(render_recipients(w, np.flatnonzero(p.recip_month == 0)), "person_id")
    months = cal.recipient_months()
    if not months:
        return
    new_village = _regions_update(w, files, iso(cal.first(months[0])), supervisors)
    _recipients(w, files, months, certs, new_village)


def _regions_update(w: World, files: Files, day: str, supervisors: pd.DataFrame) -> str:
    """A renamed village, a new village (someone moves there the same day), two broken rows."""
    rng, table = w.rng, w.regions.table
    codes = set(table.code)
    villages = table[table.level == "village"]
    renamed = villages.iloc[[int(rng.integers(len(villages)))]].copy()
    renamed["name"] = renamed.name.str[:2] + village_stem(rng) + "村"
    township = w.regions.townships[int(rng.integers(len(w.regions.townships)))]
    new_code = next(f"{township[:9]}{n:03d}" for n in range(299, 100, -1) if f"{township[:9]}{n:03d}" not in codes)
    county = township[:6]
    new = pd.DataFrame({"code": [new_code], "name": [table.set_index("code").name[township][:2] + "新村"],
                        "level": ["village"], "parent_code": [township]})
    add(w, files, day, "regions", pd.concat([renamed, new], ignore_index=True))
    orphan = pd.DataFrame({"code": [f"{county}998201"], "name": ["无名村"], "level": ["village"],
                           "parent_code": [f"{county}998000"]})  # its township was never delivered
    bad_level = pd.DataFrame({"code": [f"{county}997000"], "name": ["某某乡"], "level": ["province"],
                              "parent_code": [county + "000000"]})
    add(w, files, day, "regions", orphan, reject=True)
    add(w, files, day, "regions", bad_level, reject=True)
    changed = supervisors.iloc[[0]].copy()
    changed["email"] = changed.user_id + "@yz.example.org"
    n = len(supervisors)
    fresh = pd.DataFrame({"user_id": [f"v{n + 1:04d}"], "name": ["新专干"], "role": ["village"],
                          "region_code": [new_code], "email": [f"v{n + 1:04d}@example.org"], "notify_url": [""]})
    add(w, files, day, "supervisors", pd.concat([changed, fresh], ignore_index=True))
    unknown = fresh.assign(user_id=f"v{n + 2:04d}", region_code=f"{county}999999", email="")
    bad_role = fresh.assign(user_id=f"x{n + 3:04d}", role="admin", region_code=county + "000000", email="")
    add(w, files, day, "supervisors", unknown, reject=True)
    add(w, files, day, "supervisors", bad_role, reject=True)
    return new_code


def _recipients(w: World, files: Files, months: list[int], certs: pd.DataFrame, new_village: str) -> None:
    cal, p, rng = w.cal, w.pop, w.rng
    outliers = [i for i, _ in w.outliers]
    clean = ~p.planted & np.isnat(p.death) & (p.spouse < 0) & ~np.isin(np.arange(p.n), outliers)
    used = np.zeros(p.n, dtype=bool)
    k = max(2, int(round(p.n * 0.002)))
    county = p.county_of(w.regions)
    villages_by_county = {c: np.flatnonzero(w.regions.village_county == c) for c in np.unique(county)}
    cert0 = certs[certs.file_month == 0].sort_values(["pi", "ts"]).drop_duplicates("pi").set_index("pi").ts
    broken = ["unknown village", "gender disagrees with ID", "birth date disagrees with ID", "card_no shape"]
    for n, r in enumerate(months):
        day = iso(cal.first(r))
        overrides: dict[int, dict] = {}
        for m, i, changes in w.recipient_updates:
            if m == r:
                overrides[i] = {c: iso(v) if isinstance(v, np.datetime64) else v for c, v in changes.items()}
        pool = np.flatnonzero(clean & (p.recip_month < r) & ~used)
        pick = rng.permutation(pool)
        movers, phones, same = pick[:k], pick[k: 2 * k], pick[2 * k: 3 * k]
        for j, i in enumerate(movers):
            options = villages_by_county[county[i]]
            v = options[int(rng.integers(len(options)))]
            code = new_village if (n == 0 and j == 0) else w.regions.villages[v]
            overrides[int(i)] = {"village_code": code}
        for i in phones:
            overrides[int(i)] = {"phone": "139" + f"{int(rng.integers(0, 10**8)):08d}"}
        chosen = list(movers) + list(phones) + list(same)
        if n == 0:  # the bureau records certifications of the first month
            taken = set(chosen)
            cands = np.array([i for i in cert0.index if clean[i] and not used[i] and i not in taken
                              and p.recip_month[i] < r])
            for i in rng.permutation(cands)[:k] if len(cands) else []:
                overrides[int(i)] = {"last_certified_on": dates(np.array([cert0[i]]).astype("datetime64[D]"))[0]}
                chosen.append(i)
        used[chosen] = True
        idx = np.unique(np.concatenate([np.flatnonzero(p.recip_month == r), np.array(chosen, dtype=int),
                                        np.array(list(overrides), dtype=int)]))
        add(w, files, day, "recipients", render_recipients(w, idx, overrides))
        for reason in broken[n::len(months)]:
            i = int(rng.choice(np.flatnonzero(clean & (p.recip_month < r) & ~used)))
            used[i] = True
            row = render_recipients(w, np.array([i]))
            if reason == "unknown village":
                row["village_code"] = row.village_code.str[:9] + "999"
            elif reason == "gender disagrees with ID":
                row["gender"] = "F" if p.male[i] else "M"
            elif reason == "birth date disagrees with ID":
                row["birth_date"] = iso(p.birth[i] + 1)
            else:
                row["card_no"] = row.card_no.str[:8]
            add(w, files, day, "recipients", row, reject=True)
