"""The walk visited every shelf of the synthesised tree: one name per shelf,
each a string, the root first."""


def check(r):
    assert isinstance(r.value, dict), r.value
    names = r.value["names"]
    assert r.value["count"] == len(names) >= 1, r.value
    assert all(isinstance(n, str) for n in names), names
