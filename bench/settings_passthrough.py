"""Settings for bench/proxy.py's pass-through baseline: the gateway with masking switched off."""

from config.settings import *  # noqa: F403

PROXY_MASKING = False
