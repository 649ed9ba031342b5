from __future__ import annotations

import math
import os
import stat
import string
from pathlib import Path

import keyring
import pytest
from keyring.backends import chainer

from m365archive import secrets
from tests.keyrings import MemoryKeyring


def test_catchall_password_round_trip(memory_keyring: MemoryKeyring) -> None:
    tenant, upn = "11111111-2222-3333-4444-555555555555", "thirdparty@contoso.com"
    assert secrets.get_secret(tenant, upn) is None

    secrets.store_secret(tenant, upn, "s3cret!")

    assert memory_keyring.items == {("m365archive", f"{tenant}/{upn}"): "s3cret!"}
    assert secrets.get_secret(tenant, upn) == "s3cret!"
    assert secrets.delete_secret(tenant, upn) is True
    assert secrets.delete_secret(tenant, upn) is False
    assert secrets.get_secret(tenant, upn) is None


def test_client_secret_lives_under_its_own_username(memory_keyring: MemoryKeyring) -> None:
    secrets.store_client_secret("tid", "app-id", "value")
    assert memory_keyring.items == {("m365archive", "tid/app/app-id"): "value"}
    assert secrets.client_secret("tid", "app-id") == "value"
    assert secrets.client_secret("tid", "other") is None


@pytest.mark.usefixtures("no_keyring")
def test_no_backend_names_the_remedies() -> None:
    with pytest.raises(secrets.NoKeyringError) as caught:
        secrets.get_secret("tid", "a@b.c")
    message = str(caught.value)
    assert "pip install keyrings.alt" in message
    assert "libsecret" in message
    assert "--password-file FILE" in message
    assert "0600" in message
    with pytest.raises(secrets.NoKeyringError):
        secrets.store_secret("tid", "a@b.c", "x")


def test_an_empty_chainer_counts_as_no_backend() -> None:
    class EmptyChainer(chainer.ChainerBackend):
        backends = []  # what keyring's chainer holds when it found no usable backend

    previous = keyring.get_keyring()
    keyring.set_keyring(EmptyChainer())
    try:
        with pytest.raises(secrets.NoKeyringError, match="EmptyChainer"):
            secrets.client_secret("tid", "app")
    finally:
        keyring.set_keyring(previous)


def test_password_file_is_written_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "catchall.pw"
    secrets.write_password_file(path, "pa$$ word")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets.read_password_file(path) == "pa$$ word"


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700])
def test_password_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "pw"
    path.write_text("secret\n")
    path.chmod(mode)
    with pytest.raises(secrets.PasswordFileError, match=f"mode {mode:04o}.*chmod 600"):
        secrets.read_password_file(path)
    with pytest.raises(secrets.PasswordFileError):
        secrets.write_password_file(path, "new")
    assert path.read_text() == "secret\n"


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_read_only_owner_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("secret\n")
    path.chmod(0o400)
    assert secrets.read_password_file(path) == "secret"


def test_missing_or_empty_password_file(tmp_path: Path) -> None:
    with pytest.raises(secrets.PasswordFileError, match="no such file"):
        secrets.read_password_file(tmp_path / "absent")
    empty = tmp_path / "empty"
    secrets.write_password_file(empty, "")
    with pytest.raises(secrets.PasswordFileError, match="is empty"):
        secrets.read_password_file(empty)


def test_generated_passwords_have_all_four_classes_and_only_safe_characters() -> None:
    allowed = set(string.ascii_letters + string.digits + "-_")  # survives web forms, shells, Markdown
    for _ in range(200):
        password = secrets.generate_password()
        assert len(password) == 28
        assert set(password) <= allowed
        assert password[0].isalnum() and password[-1].isalnum()
        assert any(c.isupper() for c in password)
        assert any(c.islower() for c in password)
        assert any(c.isdigit() for c in password)
        assert any(c in secrets.SYMBOLS for c in password)
    assert len({secrets.generate_password() for _ in range(50)}) == 50


def test_generated_password_avoids_the_upn() -> None:
    for _ in range(100):
        password = secrets.generate_password(8, avoid="abc@contoso.com").lower()
        assert "abc" not in password


def test_the_stated_entropy_is_at_least_what_the_old_alphabet_gave() -> None:
    old = 24 * math.log2(90)  # 24 characters from 90 symbols
    new = secrets.DEFAULT_LENGTH * math.log2(len(secrets.ALPHABET))
    edges = 2 * (math.log2(len(secrets.ALPHABET)) - math.log2(62))  # first and last are alphanumeric
    assert new + edges >= secrets.ENTROPY_BITS >= old


@pytest.mark.parametrize("length", [7, 257])
def test_generated_password_length_bounds(length: int) -> None:
    with pytest.raises(ValueError, match="8 to 256"):
        secrets.generate_password(length)
