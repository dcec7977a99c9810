"""HTTP edge: one blueprint per area, whose views parse, authorise, call one service function and render; every wire
rule in `wire.py`, each view's contract in `operations.py`, error JSON in `errors.py`, the document in `document.py`."""
