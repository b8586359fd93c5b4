import base64
import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from bridge.config.secrets import Secret
from bridge.signature import bearer_token, sign, signature_matches, token_matches

# The known answer from W&B's scheme: the body is exactly these 146 bytes.
KA_SECRET = "whsec-test-0001"
KA_BODY = (
    b'{"event_type": "BUILD_AND_DEPLOY", "client_payload": {"event_author": "alice", '
    b'"artifact_version_string": "acme/model-registry/churn:production"}}'
)
KA_SIGNATURE = "evjrO31AxeEWpWcc6IJtlaKYA+kC4geO+yQVNhCodM0="


def test_known_answer():
    assert len(KA_BODY) == 146
    assert sign(KA_SECRET, KA_BODY) == KA_SIGNATURE
    assert signature_matches([Secret(KA_SECRET)], KA_SIGNATURE, KA_BODY)


def test_matches_openssl_recipe():
    # printf %s "$PAYLOAD" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
    digest = hmac.new(b"k", b"payload", hashlib.sha256).digest()
    assert sign("k", b"payload") == base64.b64encode(digest).decode()


def test_any_of_several_secrets_and_rotation():
    old, new = Secret("old-secret"), Secret("new-secret")
    sig_old = sign("old-secret", KA_BODY)
    assert signature_matches([new, old], sig_old, KA_BODY)
    assert not signature_matches([new], sig_old, KA_BODY)  # rotated out


def test_signature_is_over_raw_bytes_not_reserialized_json():
    reformatted = KA_BODY.replace(b", ", b",")
    assert not signature_matches([Secret(KA_SECRET)], KA_SIGNATURE, reformatted)


def test_prefixed_or_hex_signatures_do_not_match():
    hexsig = hmac.new(KA_SECRET.encode(), KA_BODY, hashlib.sha256).hexdigest()
    for bad in (f"sha256={KA_SIGNATURE}", hexsig, KA_SIGNATURE.rstrip("="), ""):
        assert not signature_matches([Secret(KA_SECRET)], bad, KA_BODY)


def test_bearer_token_parsing():
    assert bearer_token("Bearer abc") == b"abc"
    assert bearer_token("bearer  abc ") == b"abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None
    assert token_matches([Secret("a"), Secret("abc")], b"abc")
    assert not token_matches([Secret("abcd")], b"abc")


@given(st.binary(max_size=512), st.text(max_size=64), st.text(min_size=1, max_size=40))
def test_verify_accepts_only_its_own_signature(body, header, secret):
    s = Secret(secret)
    assert signature_matches([s], sign(secret, body), body)
    if header != sign(secret, body):
        assert not signature_matches([s], header, body)


def test_secret_repr_hides_value():
    s = Secret("very-secret-value", "env:X")
    assert "very-secret-value" not in repr(s)
    assert "very-secret-value" not in str(s)
