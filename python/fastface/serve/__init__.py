"""``fastface serve``: face recognition over HTTP, safe by default.

One process holds one recognizer and one durable gallery (:mod:`.store`); routes
in :mod:`.app`, settings in :mod:`.config`, API keys in :mod:`.auth`, request
limits in :mod:`.limits`, Prometheus metrics in :mod:`.metrics`. Needs the
``serve`` extra: ``pip install 'fastface[serve]'``.
"""
