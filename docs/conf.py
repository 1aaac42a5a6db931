"""Sphinx configuration: the docs are Markdown (MyST), built with warnings as errors in CI."""

project = "payments"
author = "the payments authors"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "conftest.py"]
myst_heading_anchors = 3
html_theme = "alabaster"
