"""Log parsing with Drain (drain3): messages become templates with stable ids.

When does the parser learn? Written here, in one place:

* **Training** (``TemplateLearner``) learns templates with Drain's ``add_log_message`` over the
  chronological *training* slice only, then freezes them into a :class:`TemplateTable`.
* **Everything after that** (validation, test, export, the streamer) uses a
  :class:`TemplateMatcher` built from the frozen table, which only *matches*
  (``Drain.match``, no new clusters, no template changes). Serving never learns: consumers of
  one group would otherwise drift apart, and a window scored online would no longer equal the
  same window scored offline. A message that matches no template gets the template made of its
  own masked tokens, with an id derived from that text: stable, never a crash.

Template ids are the first 8 hex digits of the SHA-1 of the template text, so every process,
restart and consumer agrees on them.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from drain3.drain import Drain, LogCluster
from drain3.masking import LogMasker, MaskingInstruction
from pydantic import BaseModel, ConfigDict, Field

PARAM = "<*>"
_ADJACENT_PARAMS = re.compile(r"(?:<\*>){2,}")

# Named masks; ParserConfig.masks gives the order (longer, more specific patterns first).
MASK_PATTERNS: dict[str, str] = {
    "uuid": r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    "path": r"(?<![\w<])(?:/[\w.\-]+){2,}/?",
    "hdfs_block": r"blk_-?\d+",
    "ip_port": r"/?\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b",
    "hex": r"\b0[xX][0-9a-fA-F]+\b|\b[0-9a-fA-F]{8,}\b",
    "number": r"(?<![\w<])[-+]?\d+(?:\.\d+)?(?![\w>])",
}


class ParserConfig(BaseModel):
    """Masking and Drain settings. ``preparsed``: messages are already templates (kept as is)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    masks: tuple[str, ...] = ("uuid", "path", "hdfs_block", "ip_port", "hex", "number")
    extra_masks: dict[str, str] = Field(default_factory=dict)  # name -> regex, applied last
    # Regex with a named group `content`: the part of a line Drain sees (headers dropped).
    content_regex: str | None = None
    similarity_threshold: float = 0.5
    depth: int = 4
    max_children: int = 100
    extra_delimiters: tuple[str, ...] = ()
    preparsed: bool = False

    def mask_patterns(self) -> list[str]:
        unknown = [m for m in self.masks if m not in MASK_PATTERNS]
        if unknown:
            raise ValueError(f"unknown masks {unknown}; known: {sorted(MASK_PATTERNS)}")
        return [MASK_PATTERNS[m] for m in self.masks] + list(self.extra_masks.values())


def template_id(template: str) -> str:
    """Stable 8-hex-digit id of a template text."""
    return hashlib.sha1(template.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    template_id: str
    template: str
    matched: bool  # False: no known template matched; the template is the masked message


class TemplateTable(BaseModel):
    """The frozen templates learned in training; serialised as plain JSON in the bundle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    templates: tuple[str, ...]
    counts: tuple[int, ...] = ()

    def ids(self) -> list[str]:
        return [template_id(t) for t in self.templates]


class TokenCache(dict[str, str]):
    """Bounded map from a raw token to its masked form (lookups are plain ``dict.get``). When
    full it is emptied (O(1), no bookkeeping per hit): the few tokens that make up most lines
    are back after a line or two, and one-off tokens (block ids, addresses) cannot grow it
    without bound."""

    def __init__(self, max_size: int) -> None:
        super().__init__()
        self.max_size = max_size

    def put(self, token: str, masked: str) -> None:
        if self.max_size <= 0:
            return
        if len(self) >= self.max_size:
            self.clear()
        self[token] = masked


class _Preprocessor:
    """Content extraction and masking, shared by learner and matcher."""

    def __init__(self, config: ParserConfig, token_cache_size: int = 4096) -> None:
        self.config = config
        self._content = re.compile(config.content_regex) if config.content_regex else None
        # One alternation instead of one pass per mask: 3x faster; at each position the first
        # listed mask that matches wins, as when they are applied in order.
        combined = "|".join(f"(?:{p})" for p in config.mask_patterns())
        self._masker = LogMasker([MaskingInstruction(combined, "*")], "<", ">")
        # No built-in mask matches whitespace, and their lookarounds and \b see a space as they
        # see the end of the text; so masking each whitespace-separated token alone gives the
        # tokens of masking the whole line, and a token seen before is looked up, not re-masked
        # (most tokens of a line repeat; the line as a whole rarely does). Extra masks and
        # delimiters are user regexes/strings without that guarantee: they take the slow path.
        self._per_token = not config.extra_masks and not config.extra_delimiters
        self._token_cache = TokenCache(token_cache_size)

    def content(self, message: str) -> str:
        if self._content is not None:
            match = self._content.search(message)
            if match is not None:
                message = match.group("content")
        return message.strip()

    def masked_tokens(self, message: str) -> list[str]:
        if self._per_token:
            return self.masked_tokens_per_token(message)
        return self.masked_tokens_whole(message)

    def masked_tokens_whole(self, message: str) -> list[str]:
        """The reference: mask the whole content, merge adjacent parameters, split."""
        masked = _ADJACENT_PARAMS.sub(PARAM, self._masker.mask(self.content(message)))
        for delimiter in self.config.extra_delimiters:
            masked = masked.replace(delimiter, " ")
        return masked.split()

    def masked_tokens_per_token(self, message: str) -> list[str]:
        """Same tokens as :meth:`masked_tokens_whole` (built-in masks only), token by token."""
        cache = self._token_cache
        get = cache.get
        out: list[str] = []
        for token in self.content(message).split():
            masked = get(token)
            if masked is None:
                masked = self._mask_token(token)
                cache.put(token, masked)
            out.append(masked)
        return out

    def _mask_token(self, token: str) -> str:
        masked = self._masker.mask(token)
        return _ADJACENT_PARAMS.sub(PARAM, masked) if "<*><*>" in masked else masked

    def new_drain(self) -> Drain:
        return Drain(
            depth=self.config.depth,
            sim_th=self.config.similarity_threshold,
            max_children=self.config.max_children,
            extra_delimiters=(),  # already applied in masked_tokens
        )


class TemplateLearner:
    """Learns templates from training messages (Drain ``add_log_message``)."""

    def __init__(self, config: ParserConfig, token_cache_size: int = 4096) -> None:
        self._pre = _Preprocessor(config, token_cache_size)
        self._drain = self._pre.new_drain()
        self._preparsed: dict[str, int] = {}

    def learn(self, message: str) -> None:
        if self._pre.config.preparsed:
            template = " ".join(message.split())
            self._preparsed[template] = self._preparsed.get(template, 0) + 1
            return
        self._drain.add_log_message(" ".join(self._pre.masked_tokens(message)))

    def learn_all(self, messages: Iterable[str]) -> TemplateTable:
        for message in messages:
            self.learn(message)
        return self.table()

    def table(self) -> TemplateTable:
        if self._pre.config.preparsed:
            items = sorted(self._preparsed.items())
        else:
            by_text: dict[str, int] = {}
            for cluster in self._drain.clusters:
                text = cluster.get_template()
                by_text[text] = by_text.get(text, 0) + cluster.size
            items = sorted(by_text.items())
        return TemplateTable(templates=tuple(t for t, _ in items), counts=tuple(c for _, c in items))


class TemplateMatcher:
    """Read-only parser over a frozen :class:`TemplateTable` (Drain ``match``, never learns)."""

    def __init__(self, config: ParserConfig, table: TemplateTable, cache_size: int = 65536,
                 token_cache_size: int = 4096) -> None:
        self._pre = _Preprocessor(config, token_cache_size)
        self._drain = self._pre.new_drain()
        self.table = table
        for cluster_id, template in enumerate(table.templates, start=1):
            cluster = LogCluster(template.split(), cluster_id)
            self._drain.id_to_cluster[cluster_id] = cluster
            self._drain.add_seq_to_prefix_tree(self._drain.root_node, cluster)
        self._known = set(table.templates)
        # Masked text repeats far more than raw text; caching on it skips Drain's tree search.
        self._parse_masked = functools.lru_cache(maxsize=cache_size)(self._parse_masked_uncached)

    def parse(self, message: str) -> ParsedMessage:
        if self._pre.config.preparsed:
            template = " ".join(message.split())
            return ParsedMessage(template_id(template), template, template in self._known)
        return self._parse_masked(" ".join(self._pre.masked_tokens(message)))

    def _parse_masked_uncached(self, masked: str) -> ParsedMessage:
        cluster = self._drain.match(masked, full_search_strategy="fallback")
        if cluster is not None:
            template = cluster.get_template()
            return ParsedMessage(template_id(template), template, True)
        tokens = [PARAM if Drain.has_numbers(t) else t for t in masked.split()]
        template = " ".join(tokens) if tokens else PARAM
        return ParsedMessage(template_id(template), template, False)


def template_words(template: str) -> list[str]:
    """The semantic words of a template: alphabetic words of 2+ letters, camelCase split
    (``allocateBlock`` -> ``allocate block``), lower-cased; parameters removed."""
    words = _CAMEL_WORD.findall(template.replace(PARAM, " "))
    return [w.lower() for w in words if len(w) >= 2]


# A capitalised or lower-case run, or an all-caps acronym not followed by lower case.
_CAMEL_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
