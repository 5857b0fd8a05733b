"""A file at a fixed name in an object's folder, read as a typed attribute (lab state files)."""

from __future__ import annotations

from pathlib import Path
from typing import overload


class Under:
    """The file (or folder) `name` in the folder the owner keeps in its attribute `folder`.

    `state_file = Under("state_dir", "state.json", "The JSON plan and state.")` reads as
    `paths.state_dir / "state.json"`; `doc` is what a property's docstring would say.
    """

    def __init__(self, folder: str, name: str, doc: str) -> None:
        self._folder = folder
        self._name = name
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type[object]) -> Under: ...

    @overload
    def __get__(self, obj: object, owner: type[object]) -> Path: ...

    def __get__(self, obj: object | None, owner: type[object]) -> Under | Path:
        if obj is None:
            return self
        folder: Path = getattr(obj, self._folder)
        return folder / self._name
