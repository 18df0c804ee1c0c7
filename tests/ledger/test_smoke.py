from tclearn.identity import Identity
from tclearn.ledger import Block, build_genesis, verify_block, verify_chain
from tclearn.ledger.genesis import GenesisConfig, MemberInfo
from tclearn.ledger.store import MemoryChainStore


def test_genesis_and_hyperparams_block_verify() -> None:
    ids = [Identity.from_seed(f"m{i}", b"s") for i in range(4)]
    cfg = GenesisConfig(
        coalition_id="c", level="A", members=tuple(MemberInfo(i.member_id, i.public_key) for i in ids),
        task="digits", architecture="cnn", model_config={}, model_seed=0,
        hyperparams={"learning_rate": 0.1, "optimizer": "sgd", "epochs": 1, "min_batch_size": 8},
        lam=0.95, committee_size=3, test_set_hash="a" * 64,
    )
    g = build_genesis(cfg, "b" * 64, ids[0], 1000)
    st = verify_chain([g])
    blk = Block(index=1, timestamp=2000, kind="hyperparams", prev_hash=g.block_hash, model_hash=g.model_hash,
                contributor=None, strengths=st.strengths(), data_ids_root=g.data_ids_root, quality_votes=(),
                block_votes=(), general="m1", payload={"hyperparams": {"learning_rate": 0.05}}).signed_by(ids[1])
    blk = blk.with_votes([blk.vote(ids[2]), blk.vote(ids[3])])
    st2 = verify_block(st, blk)
    assert st2.hyperparams["learning_rate"] == 0.05
    store = MemoryChainStore()
    store.append(g)
    store.append(blk)
    assert [b.index for b in store] == [0, 1]


def _config(**kw: object) -> GenesisConfig:
    ids = [Identity.from_seed(f"m{i}", b"s") for i in range(4)]
    base: dict[str, object] = dict(
        coalition_id="c", level="A", members=tuple(MemberInfo(i.member_id, i.public_key) for i in ids),
        task="digits", architecture="cnn", model_config={}, model_seed=0,
        hyperparams={"learning_rate": 0.1, "optimizer": "sgd", "epochs": 1, "min_batch_size": 8},
        lam=0.95, committee_size=3, test_set_hash="a" * 64,
    )
    base.update(kw)
    return GenesisConfig(**base)  # type: ignore[arg-type]


def test_max_drop_is_recorded_only_when_set_and_round_trips() -> None:
    import pytest

    from tclearn.errors import ConfigError
    from tclearn.quality import DEFAULT_MAX_DROP

    default = _config()
    assert "max_drop" not in default.to_payload()["consensus"]  # old chains keep their genesis hash
    assert default.floor == DEFAULT_MAX_DROP
    set_ = _config(max_drop=0.01)
    again = GenesisConfig.from_payload(set_.to_payload())
    assert again.max_drop == 0.01 and again.floor == 0.01
    ids = [Identity.from_seed(f"m{i}", b"s") for i in range(4)]
    state = verify_chain([build_genesis(set_, "b" * 64, ids[0], 1000)])
    assert state.config.floor == 0.01
    with pytest.raises(ConfigError, match="max_drop"):
        _config(max_drop=2.0)
