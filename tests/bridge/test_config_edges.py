"""Secrets and config files as operators really hand them over: with a trailing newline,
in the wrong encoding, too big, open to everyone, or not what they claim to be."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from bridge.config.load import load_config, parse_config
from bridge.config.secrets import Redactor, Secret
from bridge.errors import ConfigError
from tests.fakes.keys import new_key_pair

ENV = {"SECRET": "s3cr3t-value"}


def minimal(github=None, secrets=None):
    return {
        "sources": {"w": {"secrets": secrets or [{"env": "SECRET"}]}},
        "github": github or {"dry_run": True},
    }


def test_an_env_secret_with_a_trailing_newline_is_stripped_with_a_warning():
    token = "ghp_" + "a" * 36
    cfg = parse_config(minimal({"token": {"env": "GH"}}), {**ENV, "GH": token + "\n"})
    assert cfg.github.token is not None and cfg.github.token.value == token
    (warning,) = cfg.warnings
    assert warning.startswith("github.token:") and "GH" in warning and token not in warning


def test_an_env_secret_of_only_whitespace_is_empty():
    with pytest.raises(ConfigError, match=r"github\.token: environment variable GH is not set"):
        parse_config(minimal({"token": {"env": "GH"}}), {**ENV, "GH": " \n"})


def secret_file(tmp_path, data: bytes, mode: int = 0o600) -> str:
    path = tmp_path / "secret"
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def test_a_secret_file_that_is_not_utf8_is_a_problem_at_its_path(tmp_path):
    path = secret_file(tmp_path, b"caf\xe9-secret\n")
    with pytest.raises(ConfigError) as exc:
        parse_config(minimal(secrets=[{"file": path}]), ENV)
    (problem,) = exc.value.problems
    assert problem.startswith("sources.w.secrets[0]:") and "not UTF-8" in problem
    assert "caf" not in problem.replace(path, "")


def test_an_endless_or_huge_secret_file_is_refused_without_reading_it_whole(tmp_path):
    for path in ("/dev/zero", secret_file(tmp_path, b"x" * (64 * 1024 + 1))):
        with pytest.raises(ConfigError, match=r"sources\.w\.secrets\[0\]: .*larger than 64 KiB"):
            parse_config(minimal(secrets=[{"file": path}]), ENV)


def test_a_secret_file_others_can_read_warns_with_the_fix(tmp_path):
    path = secret_file(tmp_path, b"from-file\n", 0o644)
    cfg = parse_config(minimal(secrets=[{"file": path}]), ENV)
    (warning,) = cfg.warnings
    assert warning.startswith("sources.w.secrets[0]:") and f"chmod 600 {path}" in warning
    os.chmod(path, 0o600)
    assert parse_config(minimal(secrets=[{"file": path}]), ENV).warnings == ()


def test_a_config_file_that_is_not_utf8_or_endless_is_a_config_error(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"sources: {w: {secrets: ['caf\xe9']}}\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(str(latin1), ENV)
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_config("/dev/zero", ENV)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("  token: *s3cr3t-token", "alias"),  # an unquoted value that starts with *
        ("  token: @s3cr3t-token", "quote the value"),
        ('  token: "s3cr3t\\q-token"', "quote"),
        ("  token: !s3cr3t-token x", "tag"),
    ],
)
def test_yaml_errors_give_the_key_path_and_never_the_text(tmp_path, line, problem):
    path = tmp_path / "c.yaml"
    path.write_text("sources: {w: {secrets: [x]}}\ngithub:\n  dry_run: true\n" + line + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(str(path), ENV)
    text = str(exc.value)
    assert "s3cr3t" not in text and exc.value.__cause__ is None
    assert "line 4" in text and "(under github.token)" in text and problem in text


def test_yaml_that_nests_too_deeply_is_a_config_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 5000)
    with pytest.raises(ConfigError, match="nests too deeply"):
        load_config(str(path), ENV)


def app(tmp_path, pem: bytes):
    path = tmp_path / "app.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    return {"app": {"id": 1, "private_key": {"file": str(path)}}}


def test_an_app_key_that_is_not_an_rsa_pem_is_a_config_error(tmp_path):
    good = new_key_pair().private_pem.encode()
    cfg = parse_config(minimal(app(tmp_path, good)), ENV)
    assert cfg.github.app is not None and cfg.github.app.private_key.value == good.decode().strip()
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cases = [
        (b"ghp_" + b"k" * 36 + b"\n", "is not a PEM private key"),  # a token in the key's place
        (good.replace(b"\nM", b"\nX", 1), "is not a PEM private key"),  # damaged on the way
        (ec_key, "is not an RSA key"),
    ]
    for pem, says in cases:
        with pytest.raises(ConfigError) as exc:
            parse_config(minimal(app(tmp_path, pem)), ENV)
        (problem,) = exc.value.problems
        assert problem.startswith("github.app.private_key: the key from file:") and says in problem
        assert "kkkk" not in problem and "BEGIN" not in problem.split(";")[0]


API_KEY = "local-0123456789abcdef0123456789abcdef01234567"


def test_a_credential_echoed_in_base64_is_redacted():
    redact = Redactor([Secret(API_KEY)])
    basic = base64.b64encode(f"api:{API_KEY}".encode()).decode()  # W&B's HTTP Basic
    alone = base64.b64encode(API_KEY.encode()).decode()
    out = redact(f'{{"got": "{basic}", "alone": "{alone}"}}')
    assert basic[6:-4] not in out and alone[2:-4] not in out and out.count("***") == 2


@given(prefix=st.binary(max_size=12), suffix=st.binary(max_size=12), urlsafe=st.booleans())
def test_a_secret_inside_any_base64_text_leaves_at_most_two_characters_each_side(
    prefix, suffix, urlsafe
):
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    data = prefix + API_KEY.encode() + suffix
    text = encode(data).decode()
    out = Redactor([Secret(API_KEY)])(text)
    before, stars, after = out.partition("***")
    assert stars
    # what is left is the neighbours' characters and at most two mixed ones each side
    assert len(before) <= -(-len(prefix) * 8 // 6) + 1
    assert len(after.rstrip("=")) <= -(-len(suffix) * 8 // 6) + 2
