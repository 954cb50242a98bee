"""The one exception of the book build."""


class BookError(RuntimeError):
    """The book could not be built; the message says which step failed and why."""
