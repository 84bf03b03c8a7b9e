"""Docstring pieces written once and filled into several docstrings."""

from __future__ import annotations


def fill_doc(pieces: dict[str, list[str]]):
    r"""A decorator that replaces each line ``{name}`` of a docstring by ``pieces[name]``.

    A piece is a parameter's (or attribute's) line, then its description.
    It takes the placeholder's indentation (its description four spaces
    more), whether or not the compiler stripped the docstring's common
    indentation (Python 3.13 does). Works on functions and classes.

    Examples
    --------
    >>> from skvqad._docstrings import fill_doc
    >>> def f(x):
    ...     pass
    >>> f.__doc__ = "Parameters\n----------\n{x}"
    >>> print(fill_doc({"x": ["x : int", "The value."]})(f).__doc__)
    Parameters
    ----------
    x : int
        The value.
    """

    def fill(obj):
        if not obj.__doc__:  # None under python -OO
            return obj
        lines = []
        for line in obj.__doc__.split("\n"):
            name = line.strip()[1:-1] if line.strip().startswith("{") else None
            if name in pieces:
                indent = line[: len(line) - len(line.lstrip())]
                head, *body = pieces[name]
                lines += [indent + head] + [indent + "    " + text for text in body]
            else:
                lines.append(line)
        obj.__doc__ = "\n".join(lines)
        return obj

    return fill
