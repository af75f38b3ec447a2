"""Value maps: the user's mapping tables, kept as CSV files in ``include/maps/``.

WDT and Kingdee number the same things differently (a shop is a sales organisation, a customer and a
settlement organisation; a warehouse is a stock organisation, an owner and a stock). A map file says
how, one row per source value::

    include/maps/shop_org.csv
    shop_no,sale_org,customer,settle_org
    FENXIAO004,100,CUST0004,100

The first column's header names the source field the map is keyed on (an order field such as
``shop_no``, or a line field such as ``batch_details.spec_no``); the others are the values it gives.
A mapping row uses ``{{maps.shop_org.sale_org}}``, in a template or inside ``_function``. Cells are
exact text (``03`` stays ``03``); an empty cell means "no value" (the field is not sent). A source
value the map has no row for stops that order, with a reason naming the map and the value: never a
wrong bill.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PREFIX = "maps"  # placeholder names maps.<map>.<column>


class MapMiss(ValueError):
    """A source value a map has no row for (turned into the order's mapping error)."""


@dataclass(frozen=True)
class ValueMap:
    name: str
    path: Path
    key: str  # the source field of the first column
    columns: tuple[str, ...]
    rows: Mapping[str, Mapping[str, str | None]]

    def lookup(self, value: str | None, column: str) -> str | None:
        row = self.rows.get(value) if value is not None else None
        if row is None:
            raise MapMiss(f"map {self.name!r} ({self.path.name}) has no row for {self.key} {value!r}")
        return row[column]


def load_maps(folder: Path) -> dict[str, ValueMap]:
    """Every ``*.csv`` of ``folder``; a malformed file raises ``ValueError`` naming the file and line."""
    maps: dict[str, ValueMap] = {}
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            if len(header) < 2 or not all(header) or len(set(header)) != len(header):
                raise ValueError(f"{path}:1: the header needs the key field then one or more distinct value columns")
            rows: dict[str, dict[str, str | None]] = {}
            for line, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    raise ValueError(f"{path}:{line}: {len(cells)} cells, the header has {len(header)}")
                key = cells[0].strip()
                if key in rows:
                    raise ValueError(f"{path}:{line}: {header[0]} {key!r} has a row already")
                rows[key] = {h: (c.strip() or None) for h, c in zip(header[1:], cells[1:], strict=True)}
        maps[path.stem] = ValueMap(path.stem, path, header[0], tuple(header[1:]), rows)
    return maps
