"""The Kingdee target connector: the exactly-once save of a window's bills (:mod:`erpsync.kingdee.save`)
on the scheme's Kingdee connection. The load step hands it the bills and writes what it decides."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from typing import Any

from erpsync.connections import ConnectionConfigError
from erpsync.kingdee.client import KingdeeConfigError
from erpsync.kingdee.save import KingdeeWriter, Record, save_bills
from erpsync.scheme import LoadSettings, Target

# a connection, credential or form that no retry can fix: the task fails at once
CONFIG_ERRORS: tuple[type[Exception], ...] = (ConnectionConfigError, KingdeeConfigError)


class KingdeeTarget:
    """Saves bills into one Kingdee connection, each exactly once."""

    def __init__(self, client: KingdeeWriter) -> None:
        self.client = client

    @property
    def recorder(self) -> Any:
        return getattr(self.client, "recorder", None)

    def save(
        self,
        bills: Sequence[dict[str, Any]],
        request: Mapping[str, Any],
        settings: LoadSettings,
        record: Record,
        dry_run: bool = False,
    ) -> int:
        return save_bills(self.client, bills, request, settings, record, dry_run)


@contextmanager
def open_writer(target: Target, connection_id: str | None = None) -> Iterator[KingdeeTarget]:
    """A writer on the scheme's Kingdee connection (or ``connection_id``), closed afterwards."""
    from erpsync.kingdee.hook import KingdeeHook

    with closing(KingdeeHook(connection_id or target.connection).get_conn()) as client:
        yield KingdeeTarget(client)
