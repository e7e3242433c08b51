"""The live part of a dashboard page, rendered once per state and URL and shared by every staff
member who polls it or opens the page, in this process.

On election night every area's figures change between two polls, so a poll seldom answers 304;
but many people watch the same areas (the nation, their provinsi, their kabupaten), each polling
every 5 s. The part is the same for all of them: it shows the area's data, not the person (who
may see the area is checked before), and the page's ETag already names everything it shows
(dashboard.selectors.page_etag: the data, the language, the sort, the minute). So the rendered
part is kept under its ETag and full path (the path is in the part, as its poll URL), and a
second staff member polling the same state gets those bytes without the template being
rendered again: the queries that compute the ETag still run for each poll, the rendering (about
half of a national poll's time) once. A full page holds the same part at the same URL (its poll
URL is the page's), so opening a page renders the part only when no one has this state yet.

A bounded map, least recently used out: a few dozen parts of up to about 50 KB each.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable

KEPT = 64


class SharedParts:
    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self.parts: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.lock = threading.Lock()

    def get_or_render(self, key: tuple[str, str], render: Callable[[], str]) -> str:
        """The part kept under (ETag, full path), or render() kept there. Two polls that miss
        at once both render (the same bytes): no one waits on another's rendering."""
        with self.lock:
            if key in self.parts:
                self.parts.move_to_end(key)
                return self.parts[key]
        html = render()
        with self.lock:
            self.parts[key] = html
            self.parts.move_to_end(key)
            while len(self.parts) > self.kept:
                self.parts.popitem(last=False)
        return html

    def clear(self) -> None:
        with self.lock:
            self.parts.clear()


LIVE_PARTS = SharedParts()
