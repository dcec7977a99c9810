"""Services: orchestration that owns transactions and calls the pure `ves/` core and the `db/` layer."""
