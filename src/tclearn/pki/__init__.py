"""Coalition PKI: the CA, member certificates and their fingerprints.

`certs` builds and checks certificates (pure); `store` keeps them in a PKI
directory. The transport (`tclearn.transport`) turns them into TLS 1.3 contexts.
"""

from tclearn.pki.certs import (
    DEFAULT_HOSTS,
    CertLike,
    build_ca_cert,
    build_member_cert,
    cert_fingerprint,
    generate_key,
    load_cert,
    member_id_from_cert,
    normalize_fingerprint,
    parse_host,
    verify_member_cert,
)
from tclearn.pki.errors import (
    AlreadyExistsError,
    BadPassphraseError,
    CANotFoundError,
    InvalidCertificateError,
    InvalidNameError,
    KeyFileError,
    MemberNotFoundError,
    PKIError,
)
from tclearn.pki.store import (
    MemberFiles,
    ca_cert_path,
    ca_key_path,
    check_owner_only,
    init_ca,
    issue_member,
    list_members,
    load_ca,
    load_private_key,
    member_files,
    write_owner_only,
)

__all__ = [
    "DEFAULT_HOSTS",
    "AlreadyExistsError",
    "BadPassphraseError",
    "CANotFoundError",
    "CertLike",
    "InvalidCertificateError",
    "InvalidNameError",
    "KeyFileError",
    "MemberFiles",
    "MemberNotFoundError",
    "PKIError",
    "build_ca_cert",
    "build_member_cert",
    "ca_cert_path",
    "ca_key_path",
    "cert_fingerprint",
    "check_owner_only",
    "generate_key",
    "init_ca",
    "issue_member",
    "list_members",
    "load_ca",
    "load_cert",
    "load_private_key",
    "member_files",
    "member_id_from_cert",
    "normalize_fingerprint",
    "parse_host",
    "verify_member_cert",
    "write_owner_only",
]
