"""The Kingdee target connector: the exactly-once save of a window's bills (:class:`KingdeeTarget`, in
:mod:`erpsync.kingdee.save`) on the scheme's Kingdee connection. The load step hands it the bills and
writes what it decides."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager

from erpsync.connections import ConnectionConfigError
from erpsync.kingdee.client import KingdeeConfigError
from erpsync.kingdee.save import KingdeeTarget
from erpsync.scheme import Target

# a connection, credential or form that no retry can fix: the task fails at once
CONFIG_ERRORS: tuple[type[Exception], ...] = (ConnectionConfigError, KingdeeConfigError)


@contextmanager
def open_writer(target: Target, connection_id: str | None = None) -> Iterator[KingdeeTarget]:
    """A writer on the scheme's Kingdee connection (or ``connection_id``), closed afterwards."""
    from erpsync.kingdee.hook import KingdeeHook

    with closing(KingdeeHook(connection_id or target.connection).get_conn()) as client:
        yield KingdeeTarget(client)
