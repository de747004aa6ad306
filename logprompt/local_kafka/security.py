"""TLS material and a SASL/SCRAM-over-TLS listener for the local broker (security tests).

The broker gets three listeners: CONTROLLER and INTERNAL (plaintext, loopback, for the broker
itself) and SASL_SSL for clients, with SCRAM users written into KRaft's metadata at format
time. Certificates are made here with ``cryptography``: a CA and a server certificate for
``localhost`` / ``127.0.0.1``, as PEM files Kafka reads directly.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from logprompt.local_kafka.broker import LocalKafkaBroker, free_port

MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: Path  # clients trust this (ssl.ca.location)
    keystore_pem: Path  # the broker's private key and certificate, in one PEM file


def make_tls_files(folder: Path) -> TlsFiles:
    """A throw-away CA and a server certificate for localhost, valid for two days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "logprompt test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path, keystore = folder / "ca.pem", folder / "broker-keystore.pem"
    ca_path.write_bytes(ca_cert.public_bytes(pem))
    keystore.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(pem) + ca_cert.public_bytes(pem)
    )
    keystore.chmod(0o600)
    return TlsFiles(ca_path, keystore)


def sasl_ssl_broker(data_dir: Path, users: dict[str, str]) -> tuple[LocalKafkaBroker, TlsFiles]:
    """A broker whose client port speaks SASL_SSL with SCRAM-SHA-512 for ``users``."""
    tls = make_tls_files(data_dir / "tls")
    port, internal, controller = free_port(), free_port(), free_port()
    jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    broker = LocalKafkaBroker(
        data_dir=data_dir, port=port, controller_port=controller,
        listeners=(f"SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal},"
                   f"CONTROLLER://127.0.0.1:{controller}"),
        advertised_listeners=f"SASL_SSL://localhost:{port},INTERNAL://127.0.0.1:{internal}",
        protocol_map="CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL",
        inter_broker_listener="INTERNAL",
        scram_users={name: password for name, password in users.items()},
        extra_properties={
            "sasl.enabled.mechanisms": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(tls.keystore_pem),
        },
    )
    return broker, tls
