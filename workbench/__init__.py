"""Voice Workbench core library: settings, models, data access, metrics, the local stack.

Imports neither livekit nor panel; `agent/` and `dashboards/` build on it.
"""

__version__ = "0.1.0"
