"""Figures a tutorial drew, as HTML, for the executed tutorial pages (``gen_pages.py``).

markdown-exec runs each code cell of a tutorial while the site builds and shows what it
printed; matplotlib figures are not printed, so after each cell this turns every open
figure into an ``<img>`` with the PNG inline, and closes it.
"""

from __future__ import annotations

import base64
import io


def figures_html() -> str:
    """Return every open matplotlib figure as an inline ``<img>`` and close them."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return ""
    out = []
    for number in plt.get_fignums():
        fig = plt.figure(number)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        out.append(f'<p><img class="tutorial-figure" alt="figure" src="data:image/png;base64,{data}"></p>')
    return "\n".join(out)
