"""Message bodies as safe HTML.

markdown-it-py with raw HTML off escapes every tag the sender wrote; its link validation drops
`javascript:`, `vbscript:`, `file:` and `data:` URLs. We also leave images out (a remote image in a
message would tell the sender when and where it was read) and mark links `rel="noopener noreferrer
nofollow"`, so nothing a sender writes can run script in, or steer, the recipient's session.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel"})


def _link_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
    return self.renderToken(tokens, idx, options, env)


def _validate_link(url: str) -> bool:
    scheme = urlsplit(url.strip()).scheme.lower()
    return scheme == "" or scheme in _SAFE_SCHEMES


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    md.validateLink = _validate_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    return md


def render_markdown(text: str) -> str:
    """HTML for a message body; safe to insert into a page as is."""
    html: str = _md().render(text)
    return html


def is_safe_url(url: Any) -> bool:
    """Reply options and references are shown as links only when they are http(s)."""
    if not isinstance(url, str):
        return False
    return urlsplit(url.strip()).scheme.lower() in ("http", "https")
