"""The data home and verified downloads (private)."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from pathlib import Path


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """The folder where downloaded data sets are cached, created if missing.

    Parameters
    ----------
    data_home : str, path-like or None, default=None
        The folder. With None, the environment variable ``SKVQAD_DATA`` if
        it is set, else ``~/skvqad_data``. ``~`` is expanded.

    Returns
    -------
    data_home : pathlib.Path
        The folder, which exists.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skvqad.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     home = get_data_home(Path(tmp) / "skvqad_data")
    ...     print(home.name, home.is_dir())
    skvqad_data True
    """
    if data_home is None:
        data_home = os.environ.get("SKVQAD_DATA") or Path("~") / "skvqad_data"
    path = Path(data_home).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"data_home {path} is a file, not a folder: pass the folder to cache data sets in."
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, path: Path, md5: str) -> None:
    """Download ``url`` to ``path`` through ``<path>.<pid>.part``; keep it only if its md5 is right."""
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    saved = False
    try:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise OSError(
                f"Downloading {url} to {path} failed ({type(exc).__name__}: {exc}); nothing "
                f"was saved. Check the network connection and call again, or download the "
                f"file by hand to {path}."
            ) from exc
        if digest.hexdigest() != md5:
            raise OSError(
                f"The file downloaded from {url} has md5 {digest.hexdigest()}, not the expected "
                f"{md5}: the download was corrupted or the file on the server changed. Nothing "
                f"was saved. Call again to retry, or download the file by hand to {path} and "
                "check its md5."
            )
        os.replace(part, path)
        saved = True
    finally:
        if not saved:
            try:
                part.unlink()
            except FileNotFoundError:
                pass
