"""Emulator of the Kingdee K/3 Cloud (金蝶云星空) WebAPI for SAL_OUTSTOCK, SAL_RETURNSTOCK and STK_InStock.

It follows shared/protocols/kingdee-webapi.md and kingdee-returnstock-instock.md; where a spec marks a
point [INF], [?] or [UNCONFIRMED], the choice made is listed in the docstring of the module that
implements it.

Public interface:
- ``make_server(host, port, *, acct_id, username, app_id, app_secret, data_dir, seed, password=None,
  verify_api_signature=False, session_ttl_s=None, latency_ms=0, per_bill_ms=0, error_rate=0,
  lost_response_rate=0, max_concurrent=None, network_control_rate=0, call_limit_per_minute=None,
  response_error_rate=0, custom_fields=None, default_return_type=None, max_request_bytes=4194304,
  verbose=False)`` → a ThreadingHTTPServer with ``.url``
  (``http://host:port/k3cloud/``), ``.emulator``, ``serve_forever()``, ``shutdown()`` and
  ``server_close()``. The keyword arguments match the CLI flags of ``__main__``.
- ``server.emulator.read_bills(form_id)``: the ground truth, every saved bill of a bill form with its
  rows, shaped like its Model (``store.Store.read_bills``).
- ``python -m emulators.kingdee`` (see ``__main__``): prints the URL as its first stdout line.
- ``DEFAULT_CREDENTIALS``: what the CLI uses when no flag is given.

Module map: ``server`` (HTTP, routing, services), ``auth`` (signatures, logins, sessions), ``forms``
(the bill forms and the tenant's custom fields), ``form`` (what a bill form definition holds),
``outstock``/``returnstock``/``instock`` (the definitions of SAL_OUTSTOCK, SAL_RETURNSTOCK, STK_InStock),
``bills`` (reading a Model: validation, defaults, amounts), ``links`` (link rows to source bills),
``operations`` (View/Submit/Audit/UnAudit/Delete), ``inventory`` (stock levels, negative-stock check),
``basedata`` (Save on BD_MATERIAL/BD_Customer), ``tasks`` (BatchSaveQuery/QueryAsyncResult), ``faults``
(latency and injected faults), ``query`` (ExecuteBillQuery/BillQuery, number index), ``store``
(SQLite), ``master`` (seeded master data), ``wire``/``envelopes`` (JSON and response shapes). Each
module's docstring lists the decisions taken on the spec's [INF]/[?] points.
"""

from typing import TypedDict

from .server import KingdeeEmulator, KingdeeHTTPServer, make_server


class KingdeeIdentity(TypedDict):
    """The identity ``make_server`` takes (and a client's config holds)."""

    acct_id: str
    username: str
    app_id: str
    app_secret: str


# Defaults of the CLI. The AppId has the real shape <clientId>_<32 base64 chars> so the SDK can also
# build its X-Api-* headers; the password of ValidateUser defaults to the AppSecret.
DEFAULT_CREDENTIALS: KingdeeIdentity = {
    "acct_id": "66a9c1d2e3f405",
    "username": "webapi",
    "app_id": "300001_K3CloudEmulatorAppKey00000000001",
    "app_secret": "e3f1c0a97b5d4e2f8a6b1c9d0e7f3a25",
}

__all__ = ["DEFAULT_CREDENTIALS", "KingdeeIdentity", "KingdeeEmulator", "KingdeeHTTPServer", "make_server"]
