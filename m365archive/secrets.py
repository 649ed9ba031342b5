"""Secrets the tool keeps between runs: the operating system's keyring, or a file only you can read.

Keyring entries (service name ``m365archive``):

- ``<tenant_id>/<upn>``: the password of the catch-all third-party data account with that UPN.
- ``<tenant_id>/app/<client_id>``: the client secret of your own app registration, for app-only
  sign-in (``--auth secret``) without putting the secret on a command line.

Where no keyring backend exists (a headless server or CI runner), `NoKeyringError` says what to do:
install one, or keep the password in a file of mode 0600 (``--password-file``).

`keyring` is imported on first use: importing this module stays cheap for ``--help``.
"""

from __future__ import annotations

import os
import secrets
import stat
import string
from pathlib import Path
from typing import TYPE_CHECKING

from m365archive.engine.checks import Check

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

SERVICE = "m365archive"


class NoKeyringError(Exception):
    """No usable keyring backend on this machine."""

    def __init__(self, backend: str) -> None:
        super().__init__(
            f"no keyring backend is available on this machine (keyring chose {backend}). "
            "Install one: `pip install keyrings.alt` for a file backend, or run a Secret Service "
            "(libsecret, e.g. gnome-keyring) on a Linux desktop; "
            "or use --password-file FILE with a file of mode 0600."
        )


class PasswordFileError(Exception):
    """A password file that is unsafe or unusable."""


def catchall_username(tenant_id: str, upn: str) -> str:
    return f"{tenant_id}/{upn}"


def app_username(tenant_id: str, client_id: str) -> str:
    return f"{tenant_id}/app/{client_id}"


def _backend() -> KeyringBackend:
    """The active keyring backend, or NoKeyringError when it can't store anything."""
    import keyring
    from keyring.backends import chainer, fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or (isinstance(backend, chainer.ChainerBackend) and not backend.backends):
        raise NoKeyringError(f"{type(backend).__module__}.{type(backend).__name__}")
    return backend


def store_secret(tenant_id: str, upn: str, value: str) -> None:
    _backend().set_password(SERVICE, catchall_username(tenant_id, upn), value)


def get_secret(tenant_id: str, upn: str) -> str | None:
    return _backend().get_password(SERVICE, catchall_username(tenant_id, upn))


def delete_secret(tenant_id: str, upn: str) -> bool:
    """Remove the stored password; False when there was none."""
    from keyring.errors import PasswordDeleteError

    try:
        _backend().delete_password(SERVICE, catchall_username(tenant_id, upn))
    except PasswordDeleteError:
        return False
    return True


def client_secret(tenant_id: str, client_id: str) -> str | None:
    """The client secret stored for this app registration, if any."""
    return _backend().get_password(SERVICE, app_username(tenant_id, client_id))


def store_client_secret(tenant_id: str, client_id: str, value: str) -> None:
    _backend().set_password(SERVICE, app_username(tenant_id, client_id), value)


def password_store_check(password_file: str | os.PathLike[str] | None, *, blocking: bool) -> Check:
    """Where the catch-all password will be kept: blocking for an apply that needs it, advisory in a
    dry run (a CI runner without a keyring can still make the plan for the ticket)."""
    if password_file is not None:
        return Check("password-store", f"the catch-all password is kept in {password_file}", blocking, True)
    try:
        backend = _backend()
    except NoKeyringError:
        return Check(
            "password-store",
            "no password store on this machine (no keyring backend, no --password-file)",
            blocking,
            False,
            "before applying: install a keyring backend, or pass --password-file FILE (mode 0600)",
        )
    return Check(
        "password-store", f"the catch-all password is kept in the keyring ({type(backend).__name__})", blocking, True
    )


# --- password files ----------------------------------------------------------------------------

_OWNER_ONLY = {0o600, 0o400}


def _check_mode(path: Path) -> None:
    if os.name == "nt":  # POSIX modes mean nothing on NTFS; ACLs protect the profile instead
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode not in _OWNER_ONLY:
        raise PasswordFileError(
            f"{path} has mode {mode:04o}: others could read it. Run `chmod 600 {path}` (or 400) and retry."
        )


def read_password_file(path: str | os.PathLike[str]) -> str:
    """The password in `path` (trailing newline removed); refuses files others can read."""
    file = Path(path)
    try:
        _check_mode(file)
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PasswordFileError(f"{file}: no such file") from None
    value = text.rstrip("\r\n")
    if not value:
        raise PasswordFileError(f"{file} is empty")
    return value


def write_password_file(path: str | os.PathLike[str], value: str) -> None:
    """Write `value` to a new or existing file that only its owner can read (mode 0600)."""
    from m365archive.files import UnsafeTarget, write_private

    file = Path(path)
    if file.exists() and not file.is_symlink():
        _check_mode(file)
    try:
        write_private(file, value + "\n")  # a new 0600 file renamed over the old: never through a link
    except UnsafeTarget as exc:
        raise PasswordFileError(str(exc)) from None


# --- generated passwords -----------------------------------------------------------------------

# Entra ID allows A-Z a-z 0-9 and @ # $ % ^ & * - _ ! + = [ ] { } | \\ : ' , . ? / ` ~ " ( ) ; < >
# and space. A generated password travels: into a partner's web form, a shell, a Markdown packet, a
# PowerShell line. Most of those symbols mean something to one of them (| ends a Markdown table
# cell, $ and ` expand in shells, & ; < > split a command line, some web forms refuse others), so
# only `-` and `_` are used: the URL-safe base64 alphabet, 6 bits a character. The first and last
# characters are letters or digits (a leading `-` reads as an option). 28 characters keep more
# entropy than the 24 characters from 90 symbols this replaced (155.8 bits): 28 x 6 = 168 bits
# before the class rules, about 167 after.
SYMBOLS = "-_"
_CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, SYMBOLS)
ALPHABET = "".join(_CLASSES)
_EDGE = string.ascii_letters + string.digits
DEFAULT_LENGTH = 28
ENTROPY_BITS = 167  # stated in the README; test_secrets checks it against the alphabet and length


def generate_password(length: int = DEFAULT_LENGTH, avoid: str | None = None) -> str:
    """A random password with all four character classes, from Entra's allowed characters only.

    `avoid` (e.g. the account's UPN) keeps out any 3-character run of its local part, since Entra
    rejects passwords that contain the user name.
    """
    if length < 8 or length > 256:
        raise ValueError("Entra passwords are 8 to 256 characters long")
    fragments = _fragments(avoid)
    while True:
        chars = [secrets.choice(cls) for cls in _CLASSES]
        chars += [secrets.choice(ALPHABET) for _ in range(length - len(chars))]
        # shuffle with the CSPRNG (random.shuffle would use the predictable Mersenne Twister)
        for i in range(len(chars) - 1, 0, -1):
            j = secrets.randbelow(i + 1)
            chars[i], chars[j] = chars[j], chars[i]
        password = "".join(chars)
        if password[0] not in _EDGE or password[-1] not in _EDGE:
            continue
        if not any(fragment in password.lower() for fragment in fragments):
            return password


def _fragments(avoid: str | None) -> set[str]:
    if not avoid:
        return set()
    local = avoid.split("@", 1)[0].lower()
    return {local[i : i + 3] for i in range(len(local) - 2)}
