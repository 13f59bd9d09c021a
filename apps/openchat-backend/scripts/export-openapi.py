"""Prints the backend's OpenAPI schema as JSON (the frontend generates its API client from it).

Builds the app with the real factory but never starts it: the lifespan (migrations, secret key,
model engines) does not run, and an in-memory SQLite URL keeps the database untouched.
Run from apps/openchat-backend: `.venv/bin/python scripts/export-openapi.py > openapi.json`.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import Settings
from app.main import create_app

app = create_app(Settings(database_url="sqlite://"))
json.dump(app.openapi(), sys.stdout, indent=2, sort_keys=False)
sys.stdout.write("\n")
