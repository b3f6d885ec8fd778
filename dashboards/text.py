"""Text that users or models wrote, made safe to put into a Markdown pane.

Panel's Markdown panes render inline HTML, so a transcript line, a model's reply
or a name containing `<img src=x onerror=...>` would run in the page. Everything
people or models wrote goes through `markdown_text` first; markup the page itself
adds (bold speaker names, links) stays outside it.
"""

from __future__ import annotations

import html
import re

# Characters Markdown gives a meaning (CommonMark's backslash-escapable punctuation).
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def markdown_text(value: object) -> str:
    """`value` as literal text inside Markdown: HTML escaped, Markdown punctuation escaped, one line."""
    text = html.escape(str(value), quote=False).replace("\n", " ").replace("\r", " ")
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
