"""The user's cache folder, and the OmegaConf resolvers conf/ uses (``persona_gen_user_cache``, ``persona_gen_help``).

The cache defaults to the user cache dir of the XDG base-directory spec, not to the current folder: the same
command run from two folders reuses one cache. ``$PERSONA_GEN_CACHE_DIR`` and ``cache.dir=...`` still win.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["register_resolvers", "user_cache_dir"]


def user_cache_dir() -> str:
    """``$XDG_CACHE_HOME/persona_gen``, else ``~/.cache/persona_gen``.

    As the spec says, an empty or relative ``$XDG_CACHE_HOME`` is ignored.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return str(base / "persona_gen")


def register_resolvers() -> None:
    """Register the resolvers conf/ interpolates; safe to call more than once."""
    import importlib

    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("persona_gen_user_cache"):
        OmegaConf.register_new_resolver("persona_gen_user_cache", user_cache_dir)
    if not OmegaConf.has_resolver("persona_gen_help"):
        # The help page (persona_gen.helppage, which lists the tasks) loads only when --help resolves it.
        OmegaConf.register_new_resolver(
            "persona_gen_help", lambda what: importlib.import_module("persona_gen.helppage")._resolve(what))
