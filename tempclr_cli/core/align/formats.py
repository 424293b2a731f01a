"""The file formats of an alignment, by name (the name is also the file suffix).

`align -f NAME`, `-o x.NAME`, `-f all` and batch mode all read `FORMATS`; a new format
is one entry, `(alignment, page path or None, embed_video) -> text`, usually calling an
`Alignment.to_<name>` method. Kept free of imports so the command builds its choices
from it without loading numpy.
"""

from __future__ import annotations

from collections.abc import Callable

FORMATS: dict[str, Callable[..., str]] = {
    "json": lambda a, page, embed: a.to_json(),
    "srt": lambda a, page, embed: a.to_srt(),
    "vtt": lambda a, page, embed: a.to_vtt(),
    "csv": lambda a, page, embed: a.to_csv(),
    "html": lambda a, page, embed: a.to_html(page, embed),  # page: where it is saved (relative links)
}
