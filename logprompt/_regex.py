"""Compiled regular expressions shared by the configs that name them as strings."""

import functools
import re


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
