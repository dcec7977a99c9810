"""Per-process runtime state attached to the Flask app: settings, engine, sequencer signer.

`current()` is how blueprints and services reach it; nothing else keeps module-level state.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from flask import current_app
from sqlalchemy import Engine

from app.config import Settings
from app.db.engine import make_engine


@dataclass
class Runtime:
    settings: Settings
    engine: Engine


def init_app(app: Flask, settings: Settings) -> Runtime:
    runtime = Runtime(settings=settings, engine=make_engine(settings))
    app.extensions["sequencer"] = runtime
    return runtime


def current() -> Runtime:
    return current_app.extensions["sequencer"]
