"""A member at its own site: its own keys, its own data, the model in its hands.

* `enrol`: `tclearn site init` — the site's identity, TLS key and enrolment request.
* `kits`: `tclearn init` in kit mode — genesis and one kit per member, no private key made.
* `join`: `tclearn site join` — a kit checked against the site's own keys and data, node.toml written.
* `models`: `tclearn model get` — a block's model, hash-checked against the chain.
* `predict`: `tclearn predict` — a block's model applied to a digit image or a NIfTI volume.
"""
