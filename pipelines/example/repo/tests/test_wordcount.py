from wordcount import count_lines, count_words


def test_two_words():
    assert count_words("hello world") == 2


def test_lines():
    assert count_lines("one\ntwo\n") == 2
