"""Count the words and lines of a text."""


def count_words(text: str) -> int:
    """The number of words in `text`, separated by whitespace."""
    return len(text.split(" "))


def count_lines(text: str) -> int:
    """The number of lines in `text`."""
    return len(text.splitlines())
