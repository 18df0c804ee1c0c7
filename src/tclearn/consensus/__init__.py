"""Who validates, how votes become a decision and a certified block (sans-IO).

`MemberCore` is one member's protocol state machine; `check_certificate`
plugs into `tclearn.ledger.verify.verify_chain`; `committee_for` draws a
height's committee. No torch, no network, no clock, no global randomness.
"""
from tclearn.consensus.actions import (
    Action, AppendBlock, Committed, Evaluate, PersistSafety, RecordEvidence, Send, ServeBlocks, ServeHead, Train,
)
from tclearn.consensus.certificate import check_certificate, make_certificate_check
from tclearn.consensus.committee import Committee, committee_for, proposer_of
from tclearn.consensus.core import MemberCore
from tclearn.consensus.evidence import Evidence
from tclearn.consensus.governance import GovernanceRequest
from tclearn.consensus.candidate import Candidate
from tclearn.consensus.messages import Message
from tclearn.consensus.wire import decode_message, encode_message
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.snapshot import SafetySnapshot
from tclearn.consensus.verifier import SignatureVerifier

__all__ = [
    "Action", "AppendBlock", "Candidate", "Committed", "Committee", "ConsensusParams", "Evaluate", "Evidence",
    "GovernanceRequest", "MemberCore", "Message", "PersistSafety", "RecordEvidence", "SafetySnapshot", "Send",
    "ServeBlocks", "ServeHead", "SignatureVerifier", "Train", "check_certificate", "committee_for",
    "decode_message", "encode_message", "make_certificate_check", "proposer_of",
]
