"""Lua scripts fused into one: each body becomes a function, called in turn with its own
``KEYS`` and ``ARGV`` (the ride parts of ``core.rides``). Pure: text in, text out.

Layout of a fused call: ``ARGV[1]`` is the number of parts; then, per part, the index of
its script, its key count and its argument count; then every part's arguments in order
(``KEYS`` holds every part's keys in order). The first part runs unprotected (an error
aborts the call before any other part ran); each later part runs under ``pcall``. The
reply has one entry per part: the first part's reply, then ``{1, reply}`` or ``{0, error}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

_RUN = """
local n = tonumber(ARGV[1])
local out = {}
local k, a = 0, 1 + 3 * n
for i = 1, n do
  local f, nk, na = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local keys, argv = {}, {}
  for j = 1, nk do keys[j] = KEYS[k + j] end
  for j = 1, na do argv[j] = ARGV[a + j] end
  k, a = k + nk, a + na
  if i == 1 then
    out[1] = parts[f](keys, argv) or false
  else
    local ok, r = pcall(parts[f], keys, argv)
    if ok then
      out[i] = {1, r or false}
    else
      out[i] = {0, type(r) == 'table' and tostring(r.err) or tostring(r)}
    end
  end
end
return out
"""


@lru_cache(maxsize=16)
def fuse(scripts: tuple[str, ...]) -> tuple[str, str]:
    """The fused script of ``scripts`` (bodies of Lua scripts) and its SHA1."""
    text = "local parts = {}\n" + "".join(
        f"parts[{i}] = function(KEYS, ARGV)\n{body}\nend\n"
        for i, body in enumerate(scripts, 1)
    ) + _RUN
    return text, hashlib.sha1(text.encode()).hexdigest()


Part = tuple[str, Sequence[Any], Sequence[Any]]
"""One call of a fused script: its script body, its keys and its arguments."""


def fused_call(parts: Sequence[Part]) -> tuple[str, str, list[Any]]:
    """The fused script for ``parts`` (the first is the carrier's), its SHA1 and the
    ``EVALSHA`` arguments after the SHA: key count, keys, arguments."""
    index: dict[str, int] = {}
    for script, _, _ in parts:
        index.setdefault(script, len(index) + 1)
    text, sha = fuse(tuple(index))
    header: list[Any] = [len(parts)]
    keys: list[Any] = []
    args: list[Any] = []
    for script, k, a in parts:
        header += [index[script], len(k), len(a)]
        keys += k
        args += a
    return text, sha, [len(keys), *keys, *header, *args]
