"""gunicorn target: `gunicorn -c config/gunicorn.conf.py wsgi:app` (each worker builds its own app after fork)."""

from app import create_app
from app.startup import settings_or_exit

app = create_app(settings_or_exit())
