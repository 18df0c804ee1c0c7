"""The ledger: blocks, their canonical encoding, signatures, chain state, verification, storage.

Sans-IO except `store` (SQLite): no torch, no network, no clock.
"""
from tclearn.ledger.block import EMPTY_ROOT, KINDS, ZERO_HASH, Block
from tclearn.ledger.genesis import GenesisConfig, MemberInfo, build_genesis, load_config, parse_config
from tclearn.ledger.records import BlockVote, Proposal, QualityVote
from tclearn.ledger.state import ChainState
from tclearn.ledger.verify import CertificateCheck, check_signatures_only, verify_block, verify_chain

__all__ = [
    "Block", "BlockVote", "CertificateCheck", "ChainState", "EMPTY_ROOT", "GenesisConfig", "KINDS",
    "MemberInfo", "Proposal", "QualityVote", "ZERO_HASH", "build_genesis", "check_signatures_only",
    "load_config", "parse_config", "verify_block", "verify_chain",
]
