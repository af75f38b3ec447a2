"""Field metadata shared by the master-data forms, the bill forms and the query engine."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    TEXT = "text"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATE = "date"
    BASE = "base"  # a reference to a record of another form (base data, org, lot)
    ENUM = "enum"  # a combo value kept as its code string ("BD_OwnerOrg", "A")


@dataclass(frozen=True)
class Field:
    key: str  # canonical spelling; payload and query keys match it case-insensitively
    caption: str  # Chinese caption used in must-input messages
    kind: Kind
    ref_form: str | None = None  # for Kind.BASE
    # For Kind.BASE: only records of this scope are found (``master.in_scope``): the bill form of a bill
    # type (BOS_BillType.FBillFormID), the category of assistant data (BOS_ASSISTANTDATA_DETAIL.FId).
    scope: str | None = None


@dataclass(frozen=True)
class Ref:
    """A resolved base-data reference: the record's internal id and its number."""

    id: int | str
    number: str

    def as_json(self) -> dict[str, Any]:
        return {"Id": self.id, "Number": self.number}

    @staticmethod
    def from_json(value: Any) -> Ref | None:
        if not isinstance(value, dict):
            return None
        return Ref(value["Id"], value["Number"])


def field_index(fields: tuple[Field, ...] | list[Field]) -> dict[str, Field]:
    """Fields by lower-cased key, for case-insensitive lookups."""
    return {f.key.lower(): f for f in fields}
