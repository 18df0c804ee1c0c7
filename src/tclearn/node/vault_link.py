"""A level-B node's models: fetched from and published to the supervisor's vault over mutual TLS, kept in memory.

At level A a node keeps every model in its model directory and serves it to
its peers. At level B the model is private to the coalition: the node keeps
no model on disk, serves none to its peers (`GET /v1/models/…` answers 404),
and reaches every model through the supervisor's vault service (`tclearn
vault serve`, `tclearn.vault.service`), where the policy decides and the
audit journal records each request (the caller is its TLS certificate):

- `VaultModelCache`: the node's `ModelStore`, in memory only (an LRU of
  `CACHE_MODELS` models); the fetcher threads fill it, training and
  evaluation read it; `publish_candidate` publishes a trained increment and
  candidate to the vault and returns the journal head to anchor in the
  proposal (`Proposal.vault_head`);
- `VaultFetchClient`: what the node's `ModelFetcher` asks for a model,
  answered from the vault (``GET /v1/vault/objects/{h}?action=use``) within
  the fetcher's size cap and deadline;
- `VaultSettings`: the ``[vault]`` section of ``node.toml`` (the service's
  URL, the supervisor's member id and certificate fingerprint).

Where plaintext exists: in this process's memory (the cache, the tensors
while training or evaluating), never in a file. The chain, the safety
snapshot, `trained.json` (sample ids) and the log hold no model bytes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from tclearn.errors import ConfigError, RemoteProtocolError, TransportError
from tclearn.learning.errors import ModelNotFoundError
from tclearn.learning.model_store import ModelStore, check_model_hash
from tclearn.learning.serialize import State, increment_hash, state_to_bytes
from tclearn.transport import MemberAllowList, PeerClient
from tclearn.transport.schema import OCTET

__all__ = ["CACHE_MODELS", "NODE_LEVELS", "VaultFetchClient", "VaultLink", "VaultModelCache", "VaultSettings",
           "vault_settings"]

CACHE_MODELS = 8  # models a level-B node holds in memory (the head, candidates being judged, a prefetched head)
NODE_LEVELS = ("A", "B")  # what a node runs: B with a [vault] section
_MODEL_PATH = re.compile(r"^/v1/models/([0-9a-f]{64})$")


@dataclass(frozen=True)
class VaultSettings:
    """``[vault]`` in node.toml: where the supervisor's vault service is and how to recognise it."""

    url: str
    member_id: str  # the supervisor's id, as its TLS certificate names it
    fingerprint: str  # its certificate's fingerprint (sha256:…)

    def to_toml(self) -> str:
        return (f'[vault]\nurl = "{self.url}"\nmember_id = "{self.member_id}"\n'
                f'fingerprint = "{self.fingerprint}"\n')


def vault_settings(section: Any, path: Path | str) -> VaultSettings | None:
    """Parse the ``[vault]`` table of a node config (None when absent: a level-A node)."""
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(f"{path}: [vault] must be a table")
    values = {}
    for key in ("url", "member_id", "fingerprint"):
        value = section.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: [vault] needs {key} (a string)")
        values[key] = value
    if not values["url"].startswith("https://"):
        raise ConfigError(f"{path}: vault.url must be an https:// URL (the service speaks mutual TLS only)")
    unknown = set(section) - set(values)
    if unknown:
        raise ConfigError(f"{path}: unknown keys in [vault]: {sorted(unknown)}")
    return VaultSettings(**values)


class VaultLink:
    """This node's mutual-TLS client of the vault service."""

    def __init__(self, settings: VaultSettings, ca_cert: Path, tls_cert: Path, tls_key: Path,
                 timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.client = PeerClient(settings.url, ca_cert, tls_cert, tls_key,
                                 MemberAllowList({settings.fingerprint: settings.member_id}),
                                 expected_member=settings.member_id, timeout_s=timeout_s, retries=1)

    def fetch(self, model_hash: str, *, max_bytes: int | None = None, deadline_s: float | None = None) -> bytes:
        """A model to *use* (validate, train); the policy decides, the journal records. HTTPStatusError on 4xx."""
        return self.client.get_model(f"/v1/vault/objects/{check_model_hash(model_hash)}", {"action": "use"},
                                     max_bytes=max_bytes, deadline_s=deadline_s)

    def publish(self, object_id: str, data: bytes, kind: str, ref: str = "") -> None:
        query = {"kind": kind, **({"ref": ref} if ref else {})}
        self.client.request("PUT", f"/v1/vault/objects/{check_model_hash(object_id)}", data, OCTET,
                            query).raise_for_status()

    def head(self) -> str:
        """SEQ:HASH of the journal's last entry (to anchor in a proposal)."""
        doc = self.client.get_json("/v1/vault/journal/head")
        seq, digest = int(doc["entries"]) - 1, str(doc["hash"])
        return f"{seq}:{digest}"


class VaultFetchClient:
    """Stands in for a peer in the node's `ModelFetcher`: ``/v1/models/{h}`` answered by the vault."""

    def __init__(self, link: VaultLink) -> None:
        self.link = link

    def get_model(self, path: str, query: Mapping[str, str] | None = None, *, max_bytes: int | None = None,
                  deadline_s: float | None = None) -> bytes:
        m = _MODEL_PATH.match(path)
        if m is None:
            raise ValueError(f"not a model path: {path}")
        return self.link.fetch(m.group(1), max_bytes=max_bytes, deadline_s=deadline_s)


class VaultModelCache(ModelStore):
    """A level-B node's models: an in-memory LRU filled from the vault; candidates published to it."""

    def __init__(self, link: VaultLink | None, capacity: int = CACHE_MODELS) -> None:
        self.link = link
        self.capacity = max(2, capacity)
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.last_error = ""  # why the last publish failed (the node logs it)

    def has(self, model_hash: str) -> bool:
        with self._lock:
            return model_hash in self._blobs

    def _write(self, model_hash: str, data: bytes) -> None:
        with self._lock:
            self._blobs[model_hash] = data
            self._blobs.move_to_end(model_hash)
            while len(self._blobs) > self.capacity:
                self._blobs.popitem(last=False)

    def _read(self, model_hash: str) -> bytes:
        with self._lock:
            data = self._blobs.get(model_hash)
            if data is not None:
                self._blobs.move_to_end(model_hash)
        if data is None:
            raise ModelNotFoundError(f"model {model_hash} is not in memory (fetch it from the vault)")
        return data

    def publish_candidate(self, parent_model_hash: str, candidate: State, inc: State) -> tuple[str, str] | None:
        """Publish the increment and the candidate through the vault; (candidate hash, journal head to anchor).

        None when the vault refuses or cannot be reached (the trainer then passes its turn: a candidate
        nobody can fetch would only be voted down).
        """
        if self.link is None:
            raise ConfigError("no vault to publish to")
        data = state_to_bytes(candidate)
        h = self.put(data)
        try:
            self.link.publish(increment_hash(inc), state_to_bytes(inc), "increment", ref=parent_model_hash[:16])
            self.link.publish(h, data, "model", ref=parent_model_hash[:16])
            return h, self.link.head()
        except (TransportError, RemoteProtocolError, ValueError, KeyError, TypeError) as exc:
            self.last_error = f"vault publish failed: {exc}"[:300]
            return None
