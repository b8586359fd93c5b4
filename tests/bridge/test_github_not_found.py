"""A 404 from GitHub names its usual causes, as a 403 names the permission."""

from __future__ import annotations

import pytest

from bridge.delivery.github import classify
from bridge.errors import PermanentDeliveryError


def test_a_404_keeps_githubs_words_and_names_the_usual_causes():
    with pytest.raises(PermanentDeliveryError) as exc:
        classify(404, {}, '{"message": "Not Found"}', 0.0)
    message = exc.value.message
    assert message.startswith("GitHub answered 404: Not Found; ")
    for cause in ("typo", "token may access that repository", "GitHub App is installed"):
        assert cause in message
