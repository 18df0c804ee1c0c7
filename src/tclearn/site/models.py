"""`tclearn model get --block N OUT`: the model a block recorded, out of a node's directory, hash-checked.

A node's directory holds its chain (`chain.sqlite`) and its content-addressed
model store (`models/`). The chain is verified from genesis first; the model
of block N is the one whose hash block N records, read from the store (which
checks the bytes against that hash) or from a file the member names — a file
whose hash is not the one block N records is refused, and if its hash is not
on the chain at all, that is said too. Any past block works: the paper's
"perform prediction from old weights".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tclearn.errors import ConfigError, LearningError, StoreError
from tclearn.ledger.block import Block
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.ledger.verify import verify_chain
from tclearn.learning import DirectoryModelStore
from tclearn.learning.errors import HashMismatchError, ModelNotFoundError
from tclearn.learning.serialize import hash_bytes
from tclearn.node.config import NodeConfig
from tclearn.node.layout import NodeLayout

__all__ = ["ChainModels", "MAX_MODEL_FILE_BYTES", "open_node_dir", "resolve_node_dir", "write_model"]

MAX_MODEL_FILE_BYTES = 2 << 30  # a model file a member names is read whole: refuse anything absurd first


def resolve_node_dir(path: Path) -> Path:
    """The node's data directory from a node.toml, a folder holding one (a site), or the directory itself."""
    path = Path(path)
    if path.is_file():
        return NodeConfig.load(path).data_dir
    if (path / "node.toml").is_file():
        return NodeConfig.load(path / "node.toml").data_dir
    if NodeLayout(path).chain.is_file():
        return path
    raise ConfigError(f"{path} is neither a node.toml, a folder with node.toml, nor a node directory "
                      f"(chain.sqlite and models/)")


@dataclass
class ChainModels:
    """A node's verified chain and its model store."""

    blocks: list[Block]
    store: DirectoryModelStore

    @property
    def genesis_payload(self) -> dict[str, Any]:
        return dict(self.blocks[0].payload["config"])

    def block(self, index: int) -> Block:
        if not 0 <= index < len(self.blocks):
            raise StoreError(f"no block {index} on this chain (height {len(self.blocks)})")
        return self.blocks[index]

    def model_bytes(self, index: int, model_file: Path | None = None) -> tuple[str, bytes]:
        """(hash, safetensors bytes) of block `index`'s model, from the store or from `model_file`."""
        block = self.block(index)
        if model_file is None:
            try:
                return block.model_hash, self.store.get(block.model_hash)
            except ModelNotFoundError:
                raise StoreError(f"this node does not hold block {index}'s model {block.model_hash[:16]}… "
                                 f"(it never fetched it)") from None
            except HashMismatchError:
                raise StoreError(f"the stored file of block {index}'s model {block.model_hash[:16]}… is "
                                 f"corrupted: its hash is no longer the one on the chain") from None
        try:
            if model_file.stat().st_size > MAX_MODEL_FILE_BYTES:
                raise LearningError(f"{model_file} is over {MAX_MODEL_FILE_BYTES} bytes: not a model of this chain")
            data = model_file.read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read model file {model_file}: {exc.strerror or exc}") from None
        found = hash_bytes(data)
        if found != block.model_hash:
            on_chain = [b.index for b in self.blocks if b.model_hash == found]
            where = f"it is the model of block {on_chain[0]}" if on_chain else "that hash is on no block of this chain"
            raise LearningError(f"model file {model_file} has hash {found}, not block {index}'s {block.model_hash} "
                                f"({where}): refused")
        return found, data


def open_node_dir(path: Path) -> ChainModels:
    """Open a node's directory read-only and verify its chain from genesis."""
    layout = NodeLayout(resolve_node_dir(path))
    if not layout.chain.is_file():
        raise StoreError(f"no chain in {layout.root} ({layout.chain} missing)")
    with SQLiteChainStore(layout.chain, create=False, read_only=True) as chain:
        blocks = list(chain)
    if not blocks:
        raise StoreError(f"the chain in {layout.chain} is empty")
    verify_chain(blocks)
    return ChainModels(blocks, DirectoryModelStore(layout.models))


def write_model(data: bytes, out: Path) -> None:
    """Write the model file atomically (a temporary name, then rename); never half a file."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {out}: {exc.strerror or exc}") from None
