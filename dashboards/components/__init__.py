"""Custom Panel components whose browser code is bundled offline (no CDN at run time)."""
