"""Piccolo's configuration (the top-level piccolo_conf.py re-exports it; ``PICCOLO_CONF`` points here so
that the installed package finds it from any working directory)."""

from piccolo.conf.apps import AppRegistry

from web.core.database import create_engine, resolve_database_url
from web.settings import get_settings

DB = create_engine(resolve_database_url(), replica_url=get_settings().replica_database_url)

APP_REGISTRY = AppRegistry(apps=["web.piccolo_app"])
