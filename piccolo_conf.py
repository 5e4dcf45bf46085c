"""Piccolo's configuration, for the ``piccolo`` command run from the project root."""

from web.core.piccolo_conf import APP_REGISTRY, DB

__all__ = ["APP_REGISTRY", "DB"]
