"""Level B: the supervisor's encrypted vault, its access policy, audit journal and S/MIME exchange.

- `storage`: encrypted, content-addressed objects (AES-256-GCM, wrapped data keys, atomic writes);
- `policy`: who may use, download or publish which version (pure decisions, quotas by strength);
- `journal`: the hash-chained, signed audit journal and its queries;
- `supervisor`: the three composed: every request decided, journaled, then served;
- `smime`: offline requests and replies as CMS (RFC 8551 / 5652);
- `service`: the supervisor online, over the nodes' mutual-TLS stack (`tclearn vault serve`).
"""

from tclearn.vault.errors import AccessDenied, IntegrityError, ObjectNotFound, RequestError, VaultError, VaultLockedError
from tclearn.vault.journal import Entry, Journal, read_journal, verify_journal, who_held
from tclearn.vault.policy import ACTIONS, Decision, check_policy, decide, default_policy, policy_at
from tclearn.vault.storage import ObjectInfo, Vault
from tclearn.vault.supervisor import Supervisor

__all__ = [
    "ACTIONS", "AccessDenied", "Decision", "Entry", "IntegrityError", "Journal", "ObjectInfo", "ObjectNotFound",
    "RequestError", "Supervisor", "Vault", "VaultError", "VaultLockedError", "check_policy", "decide",
    "default_policy", "policy_at", "read_journal", "verify_journal", "who_held",
]
