import base64

import pytest

from apikeys.keys import generate_key, hash_key, key_hint, parse_key


def b64(text: str) -> str:
    return "mmc_" + base64.b64encode(text.encode()).decode()


def test_generated_key_has_the_documented_shape():
    raw, random_part = generate_key("tenant_3f9a1c2b7d4e", "agent_8b2e6f1a9c30")
    assert len(raw) == 104 and raw.startswith("mmc_") and raw.endswith("=")
    assert len(random_part) == 32 and int(random_part, 16) >= 0 and random_part == random_part.lower()
    payload = base64.b64decode(raw[4:]).decode()
    assert payload == f"tenant_3f9a1c2b7d4e_agent_8b2e6f1a9c30_{random_part}_v1"
    assert key_hint(random_part) == "mmc_\u2026" + random_part[-4:]
    assert hash_key(raw) == __import__("hashlib").sha256(raw.encode()).hexdigest()


def test_two_keys_differ():
    assert generate_key("tenant_a", "agent_b")[0] != generate_key("tenant_a", "agent_b")[0]


def test_parse_current_format():
    parsed = parse_key("  " + b64("tenant_3f9a1c2b7d4e_agent_8b2e6f1a9c30_5d41402abc4b2a76b9719d911017c592_v1") + "\n")
    assert parsed.as_dict() == {
        "format_valid": True, "format": "current", "tenant_id": "tenant_3f9a1c2b7d4e",
        "agent_id": "agent_8b2e6f1a9c30", "random_hash": "5d41402abc4b2a76b9719d911017c592", "version": "v1",
    }


@pytest.mark.parametrize("payload, expected", [
    ("x_y_z_w_q_v1_extra", ("x_y", "z_w", "q", "v1", "current")),
    ("a_b_c_d_e", ("a", "b", "c", "d", "legacy")),
    ("a_b_c_d", ("a", "b", "c", "d", "legacy")),
])
def test_parse_part_rules(payload, expected):
    parsed = parse_key(b64(payload))
    assert (parsed.tenant_id, parsed.agent_id, parsed.random_hash, parsed.version, parsed.format) == expected


@pytest.mark.parametrize("value", [
    "mmc_!!!",                      # decodes to an empty string
    b64("a_b_c"),                   # fewer than 4 parts
    "MMC_" + b64("a_b_c_d")[4:],    # prefix is case-sensitive
    "abc",
    "mmc_YWJj=",                    # wrong padding
    "mmc_" + base64.b64encode(b"\xff\xfe_a_b_c").decode(),  # not UTF-8
    b64("a_b_c_d") + "A" * 600,     # longer than 512: not decoded
    "",
    None,
    123,
])
def test_parse_invalid(value):
    assert parse_key(value) is None


def test_parse_discards_characters_outside_the_alphabet():
    raw = b64("a_b_c_d")
    assert parse_key(raw[:6] + "!" + raw[6:]).tenant_id == "a"
