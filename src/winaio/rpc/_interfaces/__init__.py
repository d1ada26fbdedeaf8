"""Built-in interfaces: Samba's rpcecho and the DCE/RPC remote management interface (mgmt),
and their wiring to the server runtime together with the endpoint mapper (``rpc._epm``).

- ``_echo_idl`` / ``_echo``: rpcecho's descriptors and managers (Samba's answers);
- ``_mgmt_idl`` / ``_mgmt``: mgmt's descriptors and managers over a server's state;
- TestSleep completes its calls from timers of winaio's default thread pool;
- ``_services``: ``Interface`` objects, ``register_*`` helpers, ``publish_endpoints`` and
  ``DemoServices`` (what ``python -m winaio serve`` runs).
"""

from __future__ import annotations

from ._echo_idl import ECHO_PROCEDURES, RPCECHO
from ._mgmt_idl import MGMT, MGMT_PROCEDURES

__all__ = ["ECHO_PROCEDURES", "MGMT", "MGMT_PROCEDURES", "RPCECHO"]
