"""A member: one driver that runs the protocol core against storage, learning, network and clock.

`MemberDriver` is the one code path that commits blocks, in the simulator and
in a node; `Evaluator`, `Trainer`, `Transport`, `Clock` are what it is handed.
"""
from tclearn.member.driver import MemberDriver
from tclearn.member.interfaces import Candidate, Clock, Evaluator, Trainer, Transport
from tclearn.member.safety_store import FileSafetyStore, MemorySafetyStore, SafetyStore

__all__ = ["Candidate", "Clock", "Evaluator", "FileSafetyStore", "MemberDriver", "MemorySafetyStore",
           "SafetyStore", "Trainer", "Transport"]
