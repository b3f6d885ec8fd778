"""Start with the navigation folded away on a narrow screen (a phone), so pages get its width.

Panel's Bootstrap template opens its sidebar at every width, which left a phone
170 px for the page beside 220 px of links. On a window narrower than
`NARROW_PX` this closes it through the template's own menu button once the page
is drawn, so the button opens and closes it as usual afterwards.
"""

from __future__ import annotations

from panel.custom import JSComponent

NARROW_PX = 700


class FoldSidebarWhenNarrow(JSComponent):
    """Folds the template's sidebar away when the page opens in a narrow window; draws nothing."""

    _esm = f"""
export function render({{ el }}) {{
  const sidebar = document.getElementById("sidebar");
  const toggle = document.getElementById("sidebar-toggle");
  if (sidebar && toggle && window.innerWidth < {NARROW_PX} && sidebar.classList.contains("show")) {{
    toggle.click();
  }}
  return document.createElement("span");
}}
"""
