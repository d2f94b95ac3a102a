"""MkDocs hook: adds the pages docs/gen_pages.py writes from the code at build time."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).parent))

import gen_pages  # noqa: E402


def on_files(files, config):
    for path, page in gen_pages.PAGES.items():
        files.append(File.generated(config, path, content=page()))
    return files
