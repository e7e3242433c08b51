"""A stand-in for the KPU's publication server and its public site, over real HTTP.

Our delivery workers PUT documents to it and our poller reads its public JSON exactly as they
would talk to the KPU, so the demo, the tests and the benchmarks exercise the real client code.
Everything lives in memory. Contract: docs/publication-server.md; the public JSON format:
docs/kpu-format.md.

By layer, each importing only those below it, so that the logic can be tested without sockets:
- `server`: HTTP only (framing, chunked bodies, conditional GETs, control endpoints), and `serve`;
- `catalog`: which TPS each contest covers, read from the database;
- `site`: `PublicationSite`, the state: documents, idempotency keys, publication, counters, faults;
- `documents`: the pages of a PUT (multipart, page types);
- `kpu_files`: the public JSON in the KPU's shape (contest trees, area and TPS files, region lists).
"""
