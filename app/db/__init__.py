"""Storage layer: SQLAlchemy Core only. Functions take a Connection and never open or commit one themselves."""
