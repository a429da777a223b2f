from __future__ import annotations

import logging


class DropRequestDetails(logging.Filter):
    """Keep request objects (headers, bodies, query strings) out of log records.

    Django attaches the request to error records; formatters and handlers could print it.
    Paths carry ids only, so the message itself is safe to keep.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "request"):
            record.request = None
        return True
