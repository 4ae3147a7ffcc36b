import base64

import pytest

from shared.ids import TOKEN_BYTES, hash_api_key, new_token, token_key

# 24 bytes whose urlsafe spelling has both '-' and '_': their standard spelling differs.
SECRET = bytes([0xFB, 0xEF, 0xBE, 0xFF, 0xFF, 0xFF]) * 4
TOKEN = base64.urlsafe_b64encode(SECRET).decode()


def test_a_new_token_is_its_own_canonical_spelling():
    for _ in range(100):
        token = new_token()
        assert base64.urlsafe_b64encode(token_key(token)).decode() == token


def test_the_key_is_the_secret_bytes():
    assert "-" in TOKEN and "_" in TOKEN
    assert token_key(TOKEN) == SECRET and len(SECRET) == TOKEN_BYTES


@pytest.mark.parametrize(
    "spelling",
    [
        base64.b64encode(SECRET).decode(),  # standard alphabet: + and /
        TOKEN.replace("-", "+", 1),  # one character from each alphabet
        TOKEN[:-1] + "=",  # padding where a character belongs
        TOKEN + "=",
        TOKEN[:16] + " " + TOKEN[17:],  # a stray character the lenient decoder skips
        TOKEN[:16] + "\n" + TOKEN[17:],
        TOKEN[:-1] + "\u0661",  # a non-ASCII character
        TOKEN[:-1],
        "",
    ],
)
def test_every_other_spelling_is_no_token(spelling):
    assert token_key(spelling) is None


def test_a_key_with_bytes_that_were_not_utf8_hashes_to_no_key_instead_of_raising():
    assert hash_api_key("\udcff\udcfe") != hash_api_key("")
