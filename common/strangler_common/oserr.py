"""An operating-system error in words, without Python's ``[Errno 21]`` prefix."""

from __future__ import annotations

__all__ = ["os_reason"]


def os_reason(exc: BaseException) -> str:
    """``Is a directory`` rather than ``[Errno 21] Is a directory: 'x'`` (the file is named
    by the caller, once); a decoding error says the file is not UTF-8 text.

    >>> os_reason(IsADirectoryError(21, "Is a directory"))
    'it is a directory'
    >>> os_reason(UnicodeDecodeError("utf-8", b"\\xff", 0, 1, "invalid start byte"))
    'not UTF-8 text'
    """
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc)
