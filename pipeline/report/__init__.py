"""The analysts' report: one self-contained HTML page built from the store.

`collect` reads the store into plain figures (dataclasses in `model`); `render` turns them
into a page that opens from disk and fetches nothing: inline CSS, charts drawn here as SVG,
no script at all. Only `queries` touches the database.
"""

from pipeline.report.figures import collect
from pipeline.report.model import Figures
from pipeline.report.period import check_period
from pipeline.report.render import render

__all__ = ["Figures", "check_period", "collect", "render"]
